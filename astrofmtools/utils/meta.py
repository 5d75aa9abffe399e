# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Provenance metadata for output tables."""

import datetime
from importlib.metadata import PackageNotFoundError, version

__all__ = ["provenance"]

_PACKAGES = ("astrofmtools", "numpy", "astropy", "photutils", "regions", "scikit-image")


def provenance(packages=(), **extra):
    """
    Metadata recording when and with which package versions a result was made.

    Parameters
    ----------
    packages : tuple of str, optional
        More packages whose versions to record (e.g. ``("torch", "timm")``).
    **extra
        More keys to record (the stage's settings, the input file, ...).

    Returns
    -------
    meta : dict
        ``date`` (UTC, ISO 8601), ``versions`` (package -> version) and the
        extra keys.

    Examples
    --------
    >>> from astrofmtools.utils import provenance
    >>> meta = provenance(stage="sources", snr=5.0)
    >>> sorted(meta)
    ['date', 'snr', 'stage', 'versions']
    >>> 'astropy' in meta['versions']
    True
    """
    versions = {}
    for name in _PACKAGES + tuple(packages):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover
            versions[name] = "not installed"
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return {"date": date, "versions": versions, **extra}
