# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Detection in one array with a fixed plan: filter, threshold, segment and
measure (the whole image, or one tile of it).
"""

import numpy as np

from ..background import estimate_background
from ..background.core import _image_arrays
from .filtering import gaussian_filter_fft
from .measure import _measure
from .plan import _make_plan
from .segment import _segment

__all__ = []


def _find_in_array(data, nodata, ignore, maps, plan):
    """Detect and measure in one array; a dict of columns, or None."""
    excluded = nodata if ignore is None else nodata | ignore
    rms = np.asarray(maps.rms)
    bad_rms = ~(rms > 0)
    if bad_rms.any():
        excluded = excluded | bad_rms
    if excluded.all():  # e.g. a constant image: no noise, nothing to detect
        return None
    sub = np.asarray(data - maps.background, dtype=np.float32)
    sub[excluded] = 0.0
    det = sub if plan.filter_cov is None else gaussian_filter_fft(sub, plan.filter_cov)
    with np.errstate(invalid="ignore", divide="ignore"):
        snrmap = det / (plan.filter_noise_ratio * rms)
    snrmap = snrmap.astype(np.float32, copy=False)
    snrmap[excluded] = 0.0
    found = _segment(snrmap, excluded, plan)
    if found is None:
        return None
    final, island_of, n_peaks = found
    return _measure(sub, snrmap, rms, final, island_of, n_peaks)


def _maps_for(array_image, mask, background, box_size):
    if background is not None:
        return background
    return estimate_background(array_image, box_size=box_size, mask=mask)


def _find_whole(image, mask, background, s):
    image, data, nodata, ignore = _image_arrays(image, mask, "find_sources")
    maps = _maps_for(image, mask, background, s["box_size"])
    plan = _make_plan(image, data, nodata, ignore, maps, s["snr"], s["island_snr"],
                      s["npixels"], s["prominence"], s["deblend"], s["psf_fwhm"],
                      s["matched_filter"], s["box_size"])
    return _find_in_array(data, nodata, ignore, maps, plan), plan
