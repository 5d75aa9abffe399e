# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The segmentation of a cutout's central source and its background and noise,
as `measure_morphology` makes them by default.
"""

import dataclasses
import warnings

import numpy as np
import scipy.ndimage as ndi
from photutils.segmentation import SegmentationImage, deblend_sources, detect_sources
from photutils.utils import NoDetectionsWarning

from ..background import global_noise
from ..exceptions import InputError

__all__ = []

# 8-connected: a segment is one island of pixels touching by sides or corners
_EIGHT = np.ones((3, 3), bool)


@dataclasses.dataclass
class _CutoutSegments:
    """One cutout prepared for statmorph."""

    background: float  # the sigma-clipped median of the pixels off the sources
    rms: float  # their noise (the clipped std, corrected for the clipping)
    labels: np.ndarray  # int segmentation of every source above ``island_snr`` (0: sky)
    central: int  # the label of the central source (0: none reaches ``snr``)


def _noise(data, ignore):
    """(median, rms) of the pixels not ignored; of all valid ones if that leaves none."""
    valid = np.isfinite(data)
    keep = valid & ~ignore
    if np.count_nonzero(keep) < 16:
        keep = valid
    stats = global_noise((np.where(keep, data, np.nan), None))
    return stats.median, stats.rms


def _smooth(data, valid, fwhm):
    """``data`` smoothed with a Gaussian of ``fwhm`` pixels; no-data pixels do not count."""
    if not fwhm:
        return np.where(valid, data, np.nan)
    sigma = fwhm / np.sqrt(8.0 * np.log(2.0))
    weight = ndi.gaussian_filter(valid.astype(float), sigma, mode="constant")
    total = ndi.gaussian_filter(np.where(valid, data, 0.0), sigma, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / weight
    out[~valid] = np.nan
    return out


def _islands(signif, island_snr, npixels):
    """Labels of the 8-connected islands of ``npixels`` or more above ``island_snr``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoDetectionsWarning)
        seg = detect_sources(np.nan_to_num(signif, nan=0.0), island_snr, n_pixels=npixels,
                             connectivity=8)
    return np.zeros(signif.shape, np.int32) if seg is None else seg.data.astype(np.int32)


def _segment_cutout(data, x, y, snr, island_snr, npixels, smooth_fwhm, deblend):
    """
    The background, noise and segmentation of one cutout, and its central source.

    Two passes: sigma-clipped statistics of all valid pixels, islands in the
    smoothed significance map, then the statistics again without the
    islands (grown by a few pixels so that their faint wings do not bias the
    background) and the islands again. A source is an island whose smoothed
    significance peaks at ``snr`` or more; the central one contains pixel
    ``(x, y)`` or, if none does, has the pixel nearest to it. With
    ``deblend``, the central island is split between its peaks (photutils
    `~photutils.segmentation.deblend_sources`) and the piece chosen the same way.
    """
    valid = np.isfinite(data)
    if np.count_nonzero(valid) < max(16, npixels):
        return _CutoutSegments(np.nan, np.nan, np.zeros(data.shape, np.int32), 0)
    grow = max(2, int(round(2 * (smooth_fwhm or 1.5))))
    ignore = np.zeros(data.shape, bool)
    for _ in range(2):
        background, rms = _noise(data, ignore)
        smooth = _smooth(data - background, valid, smooth_fwhm)
        _, smooth_rms = _noise(smooth, ignore)
        if not (np.isfinite(smooth_rms) and smooth_rms > 0):
            return _CutoutSegments(background, rms, np.zeros(data.shape, np.int32), 0)
        signif = smooth / smooth_rms
        labels = _islands(signif, island_snr, npixels)
        ignore = ndi.binary_dilation(labels > 0, _EIGHT, iterations=grow)
    central = _central_label(labels, signif, x, y, snr)
    if deblend and central:
        labels, central = _deblend_central(labels, signif, central, x, y, snr, npixels)
    return _CutoutSegments(background, rms, labels, central)


def _deblend_central(labels, signif, central, x, y, snr, npixels):
    """The labels with the central island split between its peaks, and the central piece."""
    island = labels == central
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            split = deblend_sources(np.nan_to_num(signif, nan=0.0), SegmentationImage(labels),
                                    n_pixels=npixels, labels=[central], relabel=True,
                                    progress_bar=False).data.astype(np.int32)
    except Exception:  # noqa: BLE001 - deblending is a refinement; keep the island whole
        return labels, central
    pieces = np.where(island, split, 0)
    piece = _central_label(pieces, signif, x, y, snr)
    return (split, piece) if piece else (labels, central)


def _central_label(labels, signif, x, y, snr):
    """The label of the source at or nearest to pixel (x, y) among those peaking at ``snr``."""
    n = int(labels.max())
    if n == 0:
        return 0
    peaks = ndi.maximum(np.nan_to_num(signif, nan=-np.inf), labels, np.arange(1, n + 1))
    sources = np.flatnonzero(np.asarray(peaks) >= snr) + 1
    if sources.size == 0:
        return 0
    ny, nx = labels.shape
    i, j = int(round(y)), int(round(x))
    if 0 <= i < ny and 0 <= j < nx and labels[i, j] in sources:
        return int(labels[i, j])
    ys, xs = np.nonzero(np.isin(labels, sources))
    nearest = np.argmin((xs - x) ** 2 + (ys - y) ** 2)
    return int(labels[ys[nearest], xs[nearest]])


def _given_labels(segmentation, n, shape):
    """A user's segmentation as (N, H, W) integer labels, checked against the cutouts."""
    labels = np.asarray(segmentation)
    if labels.ndim == 2:
        labels = np.broadcast_to(labels, (n,) + labels.shape)
    if labels.shape != (n,) + tuple(shape):
        raise InputError(f"segmentation has shape {np.shape(segmentation)}; give one label "
                         f"map per cutout, shape ({n}, {shape[0]}, {shape[1]}), or one "
                         f"({shape[0]}, {shape[1]}) map for all.")
    if labels.dtype.kind == "b":
        labels = labels.astype(np.int32)
    if labels.dtype.kind not in "iu" or (labels < 0).any():
        raise InputError("segmentation must hold non-negative integer labels (0: sky), not "
                         f"{labels.dtype} values.")
    return labels
