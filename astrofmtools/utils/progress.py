# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Progress bars: tqdm, shown on a terminal, hidden when quiet or piped."""

__all__ = ["progress", "set_progress"]

_ENABLED = {"value": True}


def set_progress(enabled):
    """
    Turn progress bars on or off for this process (``astrofm -q`` turns them off).

    Examples
    --------
    >>> from astrofmtools.utils import set_progress
    >>> set_progress(True)
    """
    _ENABLED["value"] = bool(enabled)


def progress(iterable=None, **kwargs):
    """
    A tqdm progress bar that shows only on a terminal and when not quiet.

    Parameters
    ----------
    iterable : iterable, optional
        What to iterate over.
    **kwargs
        Passed to `tqdm.tqdm` (``total``, ``desc``, ``unit``...).

    Examples
    --------
    >>> from astrofmtools.utils import progress
    >>> sum(progress(range(5), desc="adding"))
    10
    """
    from tqdm.auto import tqdm
    asked = kwargs.pop("disable", None)
    disable = None if _ENABLED["value"] and not asked else True  # None: off when not a TTY
    return tqdm(iterable, disable=disable, **kwargs)
