# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Copying cutout pixels out of an image: in memory or memory-mapped (`_gather`), read on
demand region by region, or tile by tile for a mosaic read lazily (`_gather_tiled`).
"""

import numpy as np


def _image_arrays(image):
    """The pixel array, a no-data mask worth applying (or None) and the BLANK value."""
    data = image.data
    mask = image.mask
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != data.shape or not mask.any():
            mask = None
        elif not np.isfinite(data[mask]).any():
            mask = None  # NaN already marks every masked pixel
    blank = None
    if data.dtype.kind in "iu" and image.header is not None:
        blank = image.header.get("BLANK")
    return data, mask, blank


def _gather(arrays, x0, y0, ny, nx, fill):
    """Copy (ny, nx) blocks starting at (y0, x0) into a float32 stack; flag edges.

    A 2-D image gives (n, ny, nx); a multi-band (C, H, W) image gives
    (n, C, ny, nx), every band cut at the same place, and a cutout is an
    edge cutout when any band runs off the image or holds NaN.
    """
    data, mask, blank = arrays
    n = len(x0)
    NY, NX = data.shape[-2:]
    if not isinstance(data, np.ndarray):  # read on demand: only the region the cutouts cover
        ya, xa = max(int(np.min(y0)), 0), max(int(np.min(x0)), 0)
        yb, xb = min(int(np.max(y0)) + ny, NY), min(int(np.max(x0)) + nx, NX)
        if ya >= yb or xa >= xb:  # every cutout is off the image
            shape = (n, ny, nx) if data.ndim == 2 else (n, data.shape[0], ny, nx)
            return np.full(shape, fill, dtype=np.float32), np.ones(n, dtype=bool)
        region = np.asarray(data[..., ya:yb, xa:xb])
        sub_mask = None if mask is None else np.asarray(mask[..., ya:yb, xa:xb])
        return _gather((region, sub_mask, blank), x0 - xa, y0 - ya, ny, nx, fill)
    bands = data if data.ndim == 3 else data[None]
    nb = bands.shape[0]
    out = np.empty((n, nb, ny, nx), dtype=np.float32)
    inside = (x0 >= 0) & (y0 >= 0) & (x0 + nx <= NX) & (y0 + ny <= NY)
    rows = np.flatnonzero(inside)
    if len(rows):
        # Cutouts wholly inside: fancy indexing of a strided window view of the
        # (memory-mapped) array copies them in C, a chunk at a time (a bounded
        # temporary); as fast as, or faster than, a loop of plain slices.
        chunk = max(1, (1 << 22) // (ny * nx))
        for c in range(nb):
            windows = np.lib.stride_tricks.sliding_window_view(bands[c], (ny, nx))
            for start in range(0, len(rows), chunk):
                r = rows[start:start + chunk]
                out[r, c] = windows[y0[r], x0[r]]
    for k in np.flatnonzero(~inside).tolist():
        a, b = int(y0[k]), int(x0[k])
        out[k] = fill
        ya, yb, xa, xb = max(a, 0), min(a + ny, NY), max(b, 0), min(b + nx, NX)
        if ya < yb and xa < xb:
            out[k, :, ya - a:yb - a, xa - b:xb - b] = bands[:, ya:yb, xa:xb]
    if blank is not None:
        out[out == np.float32(blank)] = np.nan
    if mask is not None:
        mask = mask if mask.ndim == 3 else mask[None]
        for k in range(n):
            a, b = int(y0[k]), int(x0[k])
            ya, yb, xa, xb = max(a, 0), min(a + ny, NY), max(b, 0), min(b + nx, NX)
            if ya < yb and xa < xb:
                view = out[k, :, ya - a:yb - a, xa - b:xb - b]
                view[mask[:, ya:yb, xa:xb]] = np.nan
    # one pass over the stack: a NaN anywhere (any band) makes the cutout's sum NaN
    nodata = ~np.isfinite(np.add.reduce(out, axis=(1, 2, 3), dtype=np.float64))
    if data.ndim == 2:
        out = out.reshape(n, ny, nx)
    return out, ~inside | nodata


class _TileCutter:
    """Cut, from one tile, the cutouts whose centre pixel its core owns."""

    def __init__(self, x0, y0, ny, nx, shape, fill):
        self.x0, self.y0, self.ny, self.nx, self.fill = x0, y0, ny, nx, fill
        # the centre pixel, clamped to the image: a cutout off the edge belongs to an edge tile
        self.cx = np.clip(x0 + nx // 2, 0, shape[1] - 1)
        self.cy = np.clip(y0 + ny // 2, 0, shape[0] - 1)

    def __call__(self, tile):
        from ..io import owned
        rows = np.flatnonzero(owned(tile, self.cx, self.cy))
        ty, tx = tile.origin
        data, edge = _gather((tile.data, tile.mask, None), self.x0[rows] - tx,
                             self.y0[rows] - ty, self.ny, self.nx, self.fill)
        return rows, data, edge


def _gather_tiled(image, x0, y0, ny, nx, fill, scheduler, workers):
    """`_gather` over an image read on demand, one tile at a time (the same cutouts)."""
    from ..io import map_tiles, owned, plan_tiles
    # a cutout centred in a core lies inside its tile: half the overlap covers half a cutout
    overlap = 2 * (max(ny, nx) // 2 + 2)
    cutter = _TileCutter(x0, y0, ny, nx, image.shape[-2:], fill)
    # only the tiles that own a cutout are read
    tiles = [t for t in plan_tiles(image.shape[-2:], max(2048, 4 * overlap), overlap)
             if owned(t, cutter.cx, cutter.cy).any()]
    out = np.empty((len(x0), ny, nx), dtype=np.float32)
    edge = np.zeros(len(x0), dtype=bool)
    for rows, data, flags in map_tiles(cutter, image, tiles, scheduler, workers=workers,
                                       desc="cutouts"):
        out[rows], edge[rows] = data, flags
    return out, edge
