# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""One registry type behind every plug-in point (strategies, heads, loaders, families...)."""

from collections.abc import Mapping

from ..exceptions import InputError

__all__ = ["Registry"]


class Registry(Mapping):
    """
    Named entries of one kind: what every ``register_*`` function of astrofmtools adds to.

    A read-only mapping (``name in registry``, ``registry[name]``, iteration
    in registration order) with one way to add (`add`: a taken name is
    refused unless ``overwrite=True``) and one way to look up (`lookup`: an
    unknown name raises an `~astrofmtools.InputError` that lists the known
    ones).

    Parameters
    ----------
    what : str
        What an entry is, for messages (``"strategy"``, ``"backbone kind"``).

    Examples
    --------
    >>> from astrofmtools.utils import Registry
    >>> colours = Registry("colour")
    >>> colours.add("red", "#f00")
    '#f00'
    >>> list(colours), colours.lookup("red")
    (['red'], '#f00')
    >>> colours.lookup("blue")
    Traceback (most recent call last):
    ...
    astrofmtools.exceptions.InputError: Unknown colour 'blue'; choose one of red.
    >>> colours.add("red", "#e00")
    Traceback (most recent call last):
    ...
    astrofmtools.exceptions.InputError: A colour 'red' is already registered; pass overwrite=True to replace it.
    """

    def __init__(self, what):
        self.what = str(what)
        self._entries = {}

    def add(self, name, entry, overwrite=False):
        """Register ``entry`` as ``name`` and return it."""
        if not isinstance(name, str) or not name:
            raise InputError(f"A {self.what} needs a name (a non-empty string), not {name!r}.")
        if name in self._entries and not overwrite:
            raise InputError(f"A {self.what} {name!r} is already registered; pass "
                             "overwrite=True to replace it.")
        self._entries[name] = entry
        return entry

    def remove(self, name):
        """Take ``name`` out of the registry (plug-ins made for a test, say)."""
        self.lookup(name)
        del self._entries[name]

    def restore(self, entries):
        """Replace every entry with ``entries`` (a mapping, e.g. ``dict(registry)`` saved
        before a test registered plug-ins)."""
        self._entries = dict(entries)

    def lookup(self, name):
        """The entry registered as ``name`` (an `~astrofmtools.InputError` listing the
        registered names if there is none; ``get`` is the mapping's, returning None)."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise InputError(f"Unknown {self.what} {name!r}; choose one of "
                             f"{', '.join(self._entries)}.") from None

    def names(self):
        """The registered names, in registration order."""
        return list(self._entries)

    def __getitem__(self, name):
        return self._entries[name]

    def __iter__(self):
        return iter(self._entries)

    def __len__(self):
        return len(self._entries)

    def __repr__(self):
        return f"<Registry of {len(self)} {self.what} entries: {', '.join(self._entries)}>"
