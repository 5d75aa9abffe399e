# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Plug-ins: modules that register strategies, heads, backbones, families, loaders,
schedulers or columns when imported.

A plug-in is any importable module whose import calls the ``register_*``
functions. `load_plugins` imports the modules a package declares in its
metadata under the entry-point group ``astrofmtools.plugins`` (in
``pyproject.toml``: ``[project.entry-points."astrofmtools.plugins"]``,
``my_strategy = "my_package.strategies"``) and those named in the
environment variable ``ASTROFM_PLUGINS`` (comma-separated module names, for
a module of one's own on the Python path). ``astrofm`` loads them before
it reads its arguments, so that ``--strategy`` and ``--head`` accept what
they register and saved models that use them load.
"""

import importlib
import os

from .exceptions import InputError

__all__ = ["ENTRY_POINT_GROUP", "load_plugins"]

#: The entry-point group of plug-in modules.
ENTRY_POINT_GROUP = "astrofmtools.plugins"

_LOADED = set()


def load_plugins():
    """
    Import the plug-in modules (entry points and ``$ASTROFM_PLUGINS``), each once.

    Returns
    -------
    names : list of str
        The modules imported by this call.

    Raises
    ------
    astrofmtools.InputError
        When a plug-in cannot be imported (the message names it and where
        it was declared).

    Examples
    --------
    >>> import os
    >>> from astrofmtools.plugins import load_plugins
    >>> os.environ["ASTROFM_PLUGINS"] = "astrofmtools.adapt.bitfit"
    >>> load_plugins()
    ['astrofmtools.adapt.bitfit']
    >>> load_plugins()  # once only
    []
    >>> del os.environ["ASTROFM_PLUGINS"]
    """
    from importlib.metadata import entry_points
    declared = [(ep.value.split(":")[0], f"entry point {ep.name!r} of group "
                 f"{ENTRY_POINT_GROUP!r}") for ep in entry_points(group=ENTRY_POINT_GROUP)]
    declared += [(name.strip(), "$ASTROFM_PLUGINS")
                 for name in os.environ.get("ASTROFM_PLUGINS", "").split(",") if name.strip()]
    loaded = []
    for module, where in declared:
        if module in _LOADED:
            continue
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - any failure of a plug-in is reported as such
            raise InputError(f"Plug-in module {module!r} (from {where}) cannot be imported: "
                             f"{type(exc).__name__}: {exc}") from None
        _LOADED.add(module)
        loaded.append(module)
    return loaded
