# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Segmentation of a significance map: islands, significant peaks and
deblending by watershed.
"""

import warnings

import numpy as np
import scipy.ndimage as ndi
from photutils.segmentation import detect_sources
from photutils.utils import NoDetectionsWarning
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

__all__ = []


def _labelled_max(values, labels, n):
    """Per label 0..n: the largest value and the flat index where it is (fast for sparse labels)."""
    flat = labels.ravel()
    idx = np.flatnonzero(flat)
    lab = flat[idx]
    val = values.ravel()[idx]
    order = np.lexsort((val, lab))
    last = np.r_[np.nonzero(np.diff(lab[order]))[0], order.size - 1]
    top = np.full(n + 1, -np.inf)
    where = np.zeros(n + 1, np.int64)
    top[lab[order][last]] = val[order][last]
    where[lab[order][last]] = idx[order][last]
    return top, where


def _local_maxima(snrmap, candidates):
    """(ys, xs) of the 8-connected local maxima among the candidate pixels (ties: first)."""
    ys, xs = np.nonzero(candidates)
    if ys.size == 0:
        return ys, xs
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
    return ys[keep], xs[keep]


def _significant_peaks(cut, inside, ys, xs, prominence):
    """The peaks (indices into ys, xs) whose prominence within the island is >= prominence."""
    floor = cut[inside].min()
    work = np.where(inside, cut, floor).astype(np.float64)
    hmax = h_maxima(work - floor, prominence) > 0
    regions, _ = ndi.label(hmax, structure=np.ones((3, 3), bool))
    reg = regions[ys, xs]
    chosen = []
    for r in np.unique(reg[reg > 0]):
        members = np.nonzero(reg == r)[0]
        chosen.append(members[np.argmax(cut[ys[members], xs[members]])])
    if not chosen:  # the island's highest peak always counts
        chosen = [int(np.argmax(cut[ys, xs]))]
    return np.sort(np.array(chosen))


def _segment(snrmap, excluded, plan):
    """Islands, significant peaks and deblended segments of a significance map."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoDetectionsWarning)
        seg = detect_sources(snrmap, plan.island_snr, n_pixels=plan.npixels, connectivity=8,
                             mask=excluded)
    if seg is None:
        return None
    labels = seg.data
    n = int(labels.max())
    top, _ = _labelled_max(snrmap, labels, n)
    keep = top[1:] >= plan.snr
    if not keep.any():
        return None
    lut = np.zeros(n + 1, np.int32)
    lut[1:][keep] = np.arange(1, np.count_nonzero(keep) + 1, dtype=np.int32)
    islands = lut[labels]
    n_islands = int(np.count_nonzero(keep))
    # local maxima above snr, then their prominence within multi-peak islands
    py, px = _local_maxima(snrmap, (snrmap >= plan.snr) & (islands > 0))
    plab = islands[py, px]
    counts = np.bincount(plab, minlength=n_islands + 1)
    n_peaks = np.ones(n_islands + 1, np.int64)
    final = islands  # deblended in place: islands are recorded in island_of
    island_of = list(range(n_islands + 1))
    multi = np.nonzero(counts > 1)[0]
    if multi.size:
        slices = ndi.find_objects(islands)
        order = np.argsort(plab, kind="stable")
        starts = np.searchsorted(plab[order], multi)
        for lab, start in zip(multi, starts):
            idx = order[start:start + counts[lab]]
            sl = slices[lab - 1]
            cut = snrmap[sl]
            inside = final[sl] == lab
            ys, xs = py[idx] - sl[0].start, px[idx] - sl[1].start
            sig = _significant_peaks(cut, inside, ys, xs, plan.prominence)
            n_peaks[lab] = sig.size
            if plan.deblend and sig.size > 1:
                markers = np.zeros(cut.shape, np.int32)
                markers[ys[sig], xs[sig]] = np.arange(1, sig.size + 1)
                parts = watershed(-cut, markers, mask=inside, connectivity=2)
                region = final[sl]
                for k in range(2, sig.size + 1):
                    region[parts == k] = len(island_of)
                    island_of.append(lab)
    return final, np.array(island_of), n_peaks
