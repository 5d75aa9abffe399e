# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Background and noise (RMS) maps of sky images.

`estimate_background` measures the sky level and its noise in boxes with
sigma clipping (the statistics of photutils
`~photutils.background.Background2D`, computed on sorted rows of boxes) and
interpolates them into full-size maps; images too small for boxes get
global sigma-clipped statistics (`global_noise`). Pixels with no data
(``image.mask``) are kept apart from the pixels the caller asks to ignore
(``mask``), as photutils does with ``coverage_mask`` and ``mask``.
"""

from .core import *  # noqa: F401, F403
