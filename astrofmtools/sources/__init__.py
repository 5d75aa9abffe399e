# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Find sources in sky images: matched filtering, segmentation, deblending and
measurement (photutils' definitions, computed on pixel lists), with a
detection threshold that means what it says.

`find_sources` thresholds the image filtered with the beam (or PSF) in units
of the *filtered* image's own noise, so ``snr=5`` finds true 5-sigma
sources, and returns a `~astropy.table.QTable` with pixel and sky
positions, bounding boxes, fluxes, SNRs, peak counts and shapes.
"""

from .filtering import *  # noqa: F401, F403
from .measure import *  # noqa: F401, F403
from .core import *  # noqa: F401, F403
