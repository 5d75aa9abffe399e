# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Segmentation of a significance map: islands, significant peaks and
deblending by watershed.

Only the pixels above the island level are kept, as a list in raster
order (`Segments`): the labelling, the measurements and the deblending
work on that list and on cutouts of the islands with several peaks, and
no image of labels is made.
"""

from typing import NamedTuple

import numpy as np
import scipy.ndimage as ndi
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from skimage.segmentation import watershed

__all__ = []

#: 8-connectivity.
_EIGHT = np.ones((3, 3), bool)


class Segments(NamedTuple):
    """
    The pixels of the segments of an image, in raster order.

    Attributes
    ----------
    ys, xs : 1-D int arrays
        The pixels.
    label : 1-D int array
        The segment of each pixel, 1..n.
    snr : 1-D float32 array
        The significance of each pixel.
    island_of : 1-D int array
        The island of each segment (index 0 unused).
    n_peaks : 1-D int array
        The number of significant peaks of each island (index 0 unused).
    """

    ys: np.ndarray
    xs: np.ndarray
    label: np.ndarray
    snr: np.ndarray
    island_of: np.ndarray
    n_peaks: np.ndarray


def _group_max(values, groups, n):
    """
    The largest value of each group 0..n-1 and the last position where it is.

    ``groups`` and ``values`` are 1-D (one entry per pixel, in raster order);
    a group without pixels gets ``-inf`` and position -1.
    """
    top = np.full(n, -np.inf, dtype=values.dtype)
    np.maximum.at(top, groups, values)
    hit = np.flatnonzero(values == top[groups])
    where = np.full(n, -1, np.intp)
    np.maximum.at(where, groups[hit], hit)
    return top, where


def _local_maxima(snrmap, ys, xs):
    """The 8-connected local maxima among the pixels ``(ys, xs)`` (a mask; ties: first)."""
    ny, nx = snrmap.shape
    v = snrmap[ys, xs]
    keep = np.ones(ys.size, bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == 0 and dx == 0:
                continue
            yy, xx = ys + dy, xs + dx
            inside = (yy >= 0) & (yy < ny) & (xx >= 0) & (xx < nx)
            nv = np.where(inside, snrmap[np.clip(yy, 0, ny - 1), np.clip(xx, 0, nx - 1)], -np.inf)
            keep &= (v > nv) if (dy, dx) < (0, 0) else (v >= nv)
    return keep


def _significant_peaks(cut, inside, ys, xs, prominence):
    """
    The peaks (sorted indices into ys, xs) whose prominence within the island is >= prominence.

    A peak's prominence is its height above the highest saddle that joins
    it to a higher pixel of the island: the peak is prominent unless the
    island's pixels above ``peak - prominence`` connect it to a higher one
    (as skimage `~skimage.morphology.h_maxima`, without reconstructing the
    whole cutout). The island's highest peak always counts, and with
    ``prominence=0`` every peak does.
    """
    values = cut[ys, xs]
    order = np.argsort(values, kind="stable")[::-1]
    chosen = [order[0]]
    for i in order[1:]:
        above = inside & (cut > values[i] - prominence)
        above[ys[i], xs[i]] = True  # with prominence 0, every peak counts
        regions, _ = ndi.label(above, structure=_EIGHT)
        if cut[regions == regions[ys[i], xs[i]]].max() <= values[i]:
            chosen.append(i)
    return np.sort(np.array(chosen))


def _label_runs(above):
    """
    The 8-connected regions of a boolean image, from its runs along rows.

    Returns the flat indices of the True pixels (raster order) and the
    region of each, 1..n numbered in raster order of their first pixels:
    the labels of `scipy.ndimage.label`, without an image of labels. Runs
    of consecutive pixels in a row are joined to the runs of the next row
    that they touch, and the regions are the connected components
    (`scipy.sparse.csgraph.connected_components`) of that graph of runs.
    """
    nx = above.shape[1]
    flat = np.flatnonzero(above)
    if flat.size == 0:
        return flat, np.zeros(0, np.intp)
    new_run = np.ones(flat.size, bool)
    new_run[1:] = (np.diff(flat) != 1) | (flat[1:] % nx == 0)
    starts = np.flatnonzero(new_run)
    lengths = np.diff(np.append(starts, flat.size))
    first = flat[starts]
    last = first + lengths - 1
    # the runs of the next row between one pixel left of the run and one right of it
    below_lo = np.searchsorted(last, first + nx - (first % nx > 0), side="left")
    below_hi = np.searchsorted(first, last + nx + (last % nx < nx - 1), side="right")
    count = np.maximum(below_hi - below_lo, 0)
    run = np.repeat(np.arange(starts.size), count)
    below = np.arange(run.size) - np.repeat(np.cumsum(count) - count - below_lo, count)
    graph = coo_matrix((np.ones(run.size, np.int8), (run, below)),
                       shape=(starts.size, starts.size))
    _, region = connected_components(graph, directed=False)
    return flat, np.repeat(region, lengths) + 1


def _islands(snrmap, plan):
    """
    The pixels of the islands that reach ``plan.snr``.

    Islands are the 8-connected regions of at least ``plan.npixels``
    pixels above ``plan.island_snr`` (as photutils
    `~photutils.segmentation.detect_sources`). Returns ``(ys, xs, island,
    snr)``: the pixels in raster order, their island (1..n, in raster
    order of the islands' first pixels) and significance; None without
    islands.
    """
    flat, region = _label_runs(snrmap > plan.island_snr)
    if flat.size == 0:
        return None
    ys, xs = np.divmod(flat, snrmap.shape[1])
    snr = snrmap[ys, xs]
    n = int(region.max()) + 1
    top, _ = _group_max(snr, region, n)
    keep = (np.bincount(region, minlength=n) >= plan.npixels) & (top >= plan.snr)
    keep[0] = False
    if not keep.any():
        return None
    lut = np.zeros(n, np.intp)
    lut[keep] = np.arange(1, np.count_nonzero(keep) + 1)
    inside = keep[region]
    return ys[inside], xs[inside], lut[region[inside]], snr[inside]


def _by_group(index, groups, wanted):
    """The entries of ``index`` in each group of ``wanted`` (sorted), as a list of arrays."""
    index = index[np.isin(groups[index], wanted)]
    index = index[np.argsort(groups[index], kind="stable")]
    return np.split(index, np.searchsorted(groups[index], wanted[1:]))


def _split_island(snrmap, ys, xs, py, px, plan):
    """
    The number of significant peaks of one island and, when it is split,
    the part (1..n) of each of its pixels ``(ys, xs)``; ``(py, px)`` are
    its peaks.
    """
    y0, x0 = ys.min(), xs.min()
    cut = snrmap[y0:ys.max() + 1, x0:xs.max() + 1]
    inside = np.zeros(cut.shape, bool)
    inside[ys - y0, xs - x0] = True
    py, px = py - y0, px - x0
    sig = _significant_peaks(cut, inside, py, px, plan.prominence)
    if not plan.deblend or sig.size < 2:
        return sig.size, None
    markers = np.zeros(cut.shape, np.int32)
    markers[py[sig], px[sig]] = np.arange(1, sig.size + 1)
    parts = watershed(-cut, markers, mask=inside, connectivity=2)
    return sig.size, parts[ys - y0, xs - x0]


def _segment(snrmap, plan):
    """
    Islands, significant peaks and deblended segments of a significance map.

    Returns the `Segments`, or None when no island reaches ``plan.snr``.
    Local maxima at or above ``plan.snr`` are peaks; in an island with
    several, those with a prominence of at least ``plan.prominence`` count
    (`_significant_peaks`) and, with ``plan.deblend``, split it by a
    watershed (the island keeps the part of its first peak).
    """
    found = _islands(snrmap, plan)
    if found is None:
        return None
    ys, xs, island, snr = found
    label = island.copy()
    island_of = list(range(int(island.max()) + 1))
    n_peaks = np.ones(len(island_of), np.int64)
    peak = np.flatnonzero(snr >= plan.snr)
    peak = peak[_local_maxima(snrmap, ys[peak], xs[peak])]
    multi = np.flatnonzero(np.bincount(island[peak], minlength=len(island_of)) > 1)
    if multi.size:
        pixels = _by_group(np.arange(island.size), island, multi)
        for lab, own, top in zip(multi, pixels, _by_group(peak, island, multi)):
            n_peaks[lab], part = _split_island(snrmap, ys[own], xs[own], ys[top], xs[top], plan)
            if part is not None:  # parts 2.. become new segments of the island
                new = np.arange(len(island_of) - 1, len(island_of) + n_peaks[lab] - 1)
                new[0] = lab
                label[own] = new[part - 1]
                island_of.extend([lab] * (n_peaks[lab] - 1))
    return Segments(ys, xs, label, snr, np.array(island_of), n_peaks)
