# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
astrofmtools: vision foundation models for astronomical images.

The analytic spine (``io``, ``background``, ``stretch``, ``sources``,
``cutouts``, ``catalog``, ``datasets``) needs only astropy, photutils,
regions and scikit-image. Importing the package never imports torch.
"""

try:  # written by setuptools_scm at build (and editable install) time
    from ._version import version as __version__
except ImportError:  # pragma: no cover - a build without the file: the installed metadata
    from importlib.metadata import PackageNotFoundError, version as _version
    try:
        __version__ = _version("astrofmtools")
    except PackageNotFoundError:  # a source tree never built or installed
        __version__ = "0.0.0"
    del PackageNotFoundError, _version

from .exceptions import InputError  # noqa: F401

__all__ = ["__version__", "InputError"]
