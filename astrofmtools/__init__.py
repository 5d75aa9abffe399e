# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
astrofmtools: vision foundation models for astronomical images.

The analytic spine (``io``, ``background``, ``stretch``, ``sources``,
``cutouts``, ``catalog``, ``datasets``) needs only astropy, photutils,
regions and scikit-image. Importing the package never imports torch.
"""

try:
    from ._version import version as __version__
except ImportError:  # pragma: no cover - source tree without a build
    __version__ = "0.0.0"

from .exceptions import InputError  # noqa: F401

__all__ = ["__version__", "InputError"]
