# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The box meshes of the background maps: sigma-clipped statistics of every box
(those of photutils Background2D, computed on sorted rows of boxes), holes
filled, median-filtered, and expanded to full-size maps.
"""

import numpy as np
from photutils.utils import ShepardIDWInterpolator

__all__ = []


def _nanmedian_last(values):
    """The NaN-ignoring median along the last axis, vectorised (NaN where all are NaN)."""
    ordered = np.sort(values, axis=-1)  # NaNs sort last
    n = np.count_nonzero(~np.isnan(ordered), axis=-1)
    lo = np.take_along_axis(ordered, np.maximum((n - 1) // 2, 0)[..., None], -1)[..., 0]
    hi = np.take_along_axis(ordered, np.maximum(n // 2, 0)[..., None], -1)[..., 0]
    med = 0.5 * (lo + hi)
    return np.where(n > 0, med, np.nan)


def _box_chunks(data, bad, box, max_values=1 << 22):
    """
    The pixels of the boxes, a few rows of boxes at a time: ``(rows, boxes)`` pairs.

    ``boxes`` holds one box per row (a float copy, NaN at ``bad`` pixels
    and beyond the image in a partial box at the right edge), for the rows
    of boxes ``rows`` (a slice) in raster order; a chunk holds about
    ``max_values`` pixels, and a partial row of boxes at the bottom comes
    alone.
    """
    by, bx = box
    ny, nx = data.shape
    nbx = -(-nx // bx)
    full = ny // by
    step = max(1, max_values // (by * nbx * bx))
    starts = list(range(0, full, step)) + ([full] if full * by < ny else [])
    for r0 in starts:
        r1 = min(r0 + step, full) if r0 < full else r0 + 1
        y0, y1 = r0 * by, min(r1 * by, ny)
        h = min(by, y1 - y0)
        if bad is None and nbx * bx == nx:
            chunk = data[y0:y1]  # copied once, into boxes
        else:
            chunk = np.full((y1 - y0, nbx * bx), np.nan, dtype=data.dtype)
            chunk[:, :nx] = data[y0:y1]
            if bad is not None:
                chunk[:, :nx][bad[y0:y1]] = np.nan
        boxes = np.empty(((r1 - r0) * nbx, h * bx), data.dtype)
        boxes.reshape(r1 - r0, nbx, h, bx)[...] = \
            chunk.reshape(r1 - r0, h, nbx, bx).transpose(0, 2, 1, 3)
        yield slice(r0, r1), boxes


def _rows_search(ordered, low, high, n):
    """
    For every row i of ``ordered`` (sorted in its first ``n[i]`` values):
    the index of the first value at or above ``low[i]`` and of the first
    above ``high[i]`` (`numpy.searchsorted`, left and right), by a
    binary search of all rows at once.
    """
    rows = np.tile(np.arange(ordered.shape[0]), 2)
    values = np.concatenate([low, high])
    upper = np.arange(rows.size) >= ordered.shape[0]
    lo, hi = np.zeros(rows.size, np.intp), np.tile(n, 2).astype(np.intp)
    while True:
        active = lo < hi
        if not active.any():
            return lo[:ordered.shape[0]], lo[ordered.shape[0]:]
        mid = (lo + hi) // 2
        v = ordered[rows, np.minimum(mid, ordered.shape[1] - 1)]
        right = active & ((v < values) | (upper & (v == values)))
        lo = np.where(right, mid + 1, lo)
        hi = np.where(active & ~right, mid, hi)


class _RowSums:
    """
    Sums of ``x - shift`` and its square over the first ``k[i]`` values of each row i.

    Built from block sums, so that a query reads one block per row instead
    of cumulating every row. Only ``k[i]`` up to the number of values
    (the NaN sort last) may be asked for: sums over NaN are never read.
    """

    block = 16

    def __init__(self, ordered, shift):
        rows, length = ordered.shape
        width = -(-length // self.block) * self.block
        self.values = np.empty((rows, width))
        self.values[:, length:] = np.nan
        np.subtract(ordered, shift[:, None], out=self.values[:, :length])
        blocks = self.values.reshape(rows, -1, self.block)
        self.sums = np.zeros((rows, blocks.shape[1] + 1))
        self.sums2 = np.zeros_like(self.sums)
        np.cumsum(blocks.sum(axis=2), axis=1, out=self.sums[:, 1:])
        np.cumsum(np.einsum("ijk,ijk->ij", blocks, blocks), axis=1, out=self.sums2[:, 1:])
        self.rows = np.arange(rows)[:, None]
        self.offsets = np.arange(self.block)

    def __call__(self, k):
        """The sums of the values and of their squares over ``[:k[i]]`` of each row."""
        start = k // self.block
        index = np.minimum(start[:, None] * self.block + self.offsets, self.values.shape[1] - 1)
        part = np.where(self.offsets < (k - start * self.block)[:, None],
                        self.values[self.rows, index], 0.0)
        rows = self.rows[:, 0]
        return (self.sums[rows, start] + part.sum(axis=1),
                self.sums2[rows, start] + np.einsum("ij,ij->i", part, part))


def _range_stats(ordered, row_sums, shift, lo, hi):
    """Median, mean and standard deviation of ``ordered[i, lo[i]:hi[i]]`` for every row i."""
    rows = np.arange(ordered.shape[0])
    n = hi - lo
    (s_lo, s2_lo), (s_hi, s2_hi) = row_sums(lo), row_sums(hi)
    with np.errstate(invalid="ignore", divide="ignore"):
        low = ordered[rows, np.clip(lo + (n - 1) // 2, 0, ordered.shape[1] - 1)]
        high = ordered[rows, np.clip(lo + n // 2, 0, ordered.shape[1] - 1)]
        median = 0.5 * (low.astype(np.float64) + high)
        mean = (s_hi - s_lo) / n
        var = (s2_hi - s2_lo) / n - mean * mean
        empty = n <= 0
        median[empty] = mean[empty] = var[empty] = np.nan
    return median, mean + shift, np.sqrt(np.maximum(var, 0.0))


def _clipped_box_stats(ordered, sigma, maxiters):
    """
    Sigma-clipped median, mean, standard deviation and count of each row of boxes.

    ``ordered`` holds one box per row, sorted (NaN last). The clipping is
    astropy's `~astropy.stats.SigmaClip` (median centre, standard
    deviation, bounds inclusive): each iteration keeps the values of the
    last one within ``median +- sigma * std``, until none is dropped or
    after ``maxiters`` iterations; the result is every value within the
    last bounds. On sorted rows the values kept are a range of indices,
    and block sums give each range's mean and deviation.
    """
    n_valid = np.count_nonzero(~np.isnan(ordered), axis=1)
    rows = np.arange(ordered.shape[0])
    shift = ordered[rows, np.maximum(n_valid - 1, 0) // 2].astype(np.float64)
    shift[n_valid == 0] = 0.0  # values are summed less their median, for precision
    row_sums = _RowSums(ordered, shift)
    lo, hi = np.zeros_like(n_valid), n_valid.copy()
    low = high = np.full(ordered.shape[0], np.nan)
    active = n_valid > 0
    for _ in range(maxiters):
        median, _, std = _range_stats(ordered, row_sums, shift, lo, hi)
        low = np.where(active, median - sigma * std, low)
        high = np.where(active, median + sigma * std, high)
        new_lo, new_hi = _rows_search(ordered, low, high, n_valid)
        new_lo, new_hi = np.maximum(lo, new_lo), np.minimum(hi, new_hi)
        active &= (new_hi - new_lo != hi - lo) & (new_hi > new_lo)
        lo, hi = np.where(active, new_lo, lo), np.where(active, new_hi, hi)
        if not active.any():
            break
    lo, hi = _rows_search(ordered, low, high, n_valid)
    median, mean, std = _range_stats(ordered, row_sums, shift, lo, hi)
    return median, mean, std, hi - lo


def _sextractor_mode(median, mean, std):
    """
    SourceExtractor's background estimate from a box's clipped statistics.

    ``2.5 median - 1.5 mean``, or the median where ``|mean - median| / std
    >= 0.3``, or the mean where ``std == 0`` (photutils
    `~photutils.background.SExtractorBackground`).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        use_median = (np.abs(mean - median) / std) >= 0.3
    mode = np.where(use_median, median, 2.5 * median - 1.5 * mean)
    return np.where(std == 0, mean, mode)


def _box_meshes(data, bad, box, sigma, maxiters, min_good):
    """
    The background and RMS of each box (2-D meshes; NaN for boxes with too few pixels).

    The statistics of photutils `~photutils.background.Background2D` with
    `~astropy.stats.SigmaClip`, SourceExtractor's mode and the standard
    deviation, computed on the sorted pixels of each row of boxes. A box
    with ``min_good`` or fewer pixels left after clipping is NaN.
    """
    shape = (-(-data.shape[0] // box[0]), -(-data.shape[1] // box[1]))
    bkg_mesh, rms_mesh = np.empty(shape), np.empty(shape)
    for rows, boxes in _box_chunks(data, bad, box):
        boxes.sort(axis=1)
        median, mean, std, n_good = _clipped_box_stats(boxes, sigma, maxiters)
        few = n_good <= min_good
        bkg_mesh[rows] = np.where(few, np.nan, _sextractor_mode(median, mean, std)).reshape(
            -1, shape[1])
        rms_mesh[rows] = np.where(few, np.nan, std).reshape(-1, shape[1])
    return bkg_mesh, rms_mesh


def _fill_mesh(mesh):
    """NaN boxes filled by inverse-distance weighting of the good ones (as photutils does)."""
    holes = np.isnan(mesh)
    if not holes.any():
        return mesh
    good = ~holes
    interpolate = ShepardIDWInterpolator(np.column_stack(np.nonzero(good)), mesh[good])
    filled = mesh.copy()
    filled[holes] = interpolate(np.column_stack(np.nonzero(holes)), n_neighbors=10, power=1.0,
                                eps=0.0)
    return filled


def _filter_mesh(mesh, size):
    """
    3x3 (or ``size``) NaN-median filter of a box mesh, NaN beyond the edges.

    The same as photutils' ``generic_filter(mesh, nanmedian, size,
    mode='constant', cval=nan)``, vectorised.
    """
    if tuple(size) == (1, 1):
        return mesh
    py, px = size[0] // 2, size[1] // 2
    pad = ((py, size[0] - 1 - py), (px, size[1] - 1 - px))
    padded = np.pad(np.asarray(mesh, dtype=float), pad, constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, size)
    return _nanmedian_last(windows.reshape(mesh.shape + (-1,)))


def _linear_weights(n_out, n_mesh, box):
    """
    The (n_out, n_mesh) matrix that interpolates linearly between box centres.

    Box ``j`` covers pixels ``j*box .. (j+1)*box - 1``; its value sits at
    its centre, and pixels beyond the first or last centre take the end
    value.
    """
    centres = (np.arange(n_mesh) + 0.5) * box - 0.5
    pos = np.clip(np.arange(n_out, dtype=float), centres[0], centres[-1])
    weights = np.zeros((n_out, n_mesh))
    if n_mesh == 1:
        weights[:, 0] = 1.0
        return weights
    j = np.clip(np.searchsorted(centres, pos, side="right") - 1, 0, n_mesh - 2)
    frac = (pos - centres[j]) / box
    rows = np.arange(n_out)
    weights[rows, j] = 1.0 - frac
    weights[rows, j + 1] += frac
    return weights


def _expand_rows(rows, box, out):
    """
    Fill ``out`` (ny, nx) by linear interpolation along y between the box
    centres of ``rows`` (n_mesh, nx), constant before the first and after
    the last.

    Every whole segment between two centres is ``box`` rows high and has
    the same weights, so they are all filled by one broadcast operation
    over whole image rows.
    """
    ny, n_mesh = out.shape[0], rows.shape[0]
    start = box // 2  # the first row at or after the first centre
    if n_mesh == 1 or start >= ny:
        out[:] = rows[:1]
        return
    frac = ((start + np.arange(box) - (box - 1) / 2) / box).astype(out.dtype)[:, None]
    n_seg = min(n_mesh - 1, (ny - start) // box)
    stop = start + n_seg * box
    out[:start] = rows[:1]
    segments = out[start:stop].reshape(n_seg, box, out.shape[1])
    np.multiply((rows[1:n_seg + 1] - rows[:n_seg])[:, None], frac, out=segments)
    segments += rows[:n_seg, None]
    if n_seg < n_mesh - 1:  # a segment cut by the bottom edge (a partial last box)
        out[stop:] = rows[n_seg] + (rows[n_seg + 1] - rows[n_seg]) * frac[:ny - stop]
    else:
        out[stop:] = rows[-1:]


def _expand_mesh(mesh, box_size, shape, dtype):
    """
    Bilinear expansion of a box mesh to a full-size map.

    Along x by a (small) matrix product with `_linear_weights`, then along
    y segment by segment (`_expand_rows`).
    """
    work = np.float64 if dtype == np.float64 else np.float32
    rows = np.asarray(mesh, float) @ _linear_weights(shape[1], mesh.shape[1], box_size[1]).T
    out = np.empty(shape, work)
    _expand_rows(rows.astype(work), box_size[0], out)
    return out.astype(dtype, copy=False)
