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


def _excluded(nodata, ignore, rms):
    """Pixels left out of detection: no data, ignored, or without a positive RMS."""
    excluded = np.logical_not(rms > 0)  # NaN too
    excluded |= nodata
    if ignore is not None:
        excluded |= ignore
    return excluded


def _significance(data, background, rms, excluded, plan):
    """
    The significance map (float32): the background-subtracted image,
    matched-filtered, over the filtered noise; 0 where excluded.
    """
    snrmap = np.subtract(data, background, out=np.empty(data.shape, np.float32))
    any_excluded = excluded.any()
    if plan.filter_cov is not None:
        if any_excluded:
            snrmap[excluded] = 0.0
        gaussian_filter_fft(snrmap, plan.filter_cov, out=snrmap)
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide(snrmap, rms, out=snrmap)
        if plan.filter_noise_ratio != 1.0:
            snrmap /= np.float32(plan.filter_noise_ratio)
    if any_excluded:
        snrmap[excluded] = 0.0
    return snrmap


def _find_in_array(data, nodata, ignore, maps, plan):
    """Detect and measure in one array; a dict of columns, or None."""
    rms = np.asarray(maps.rms)
    excluded = _excluded(nodata, ignore, rms)
    if excluded.all():  # e.g. a constant image: no noise, nothing to detect
        return None
    background = np.asarray(maps.background)
    segments = _segment(_significance(data, background, rms, excluded, plan), plan)
    if segments is None:
        return None
    ys, xs = segments.ys, segments.xs
    sub = np.asarray(data[ys, xs] - background[ys, xs], dtype=np.float32)
    return _measure(segments, sub, rms)


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
