# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Work on large images in overlapping tiles: one plan, one reader, one ownership rule,
one map.

Every stage that walks a mosaic tile by tile uses these four pieces (this
module holds the plan and the ownership rule; the reader is in
``tile_reader``, the map in ``tile_map`` and its schedulers in
``schedulers``):

1. `plan_tiles` cuts the image into overlapping tiles, up front; each tile's
   *core* is the part it owns, and the cores cover the image exactly once;
2. `read_tile` reads a tile's pixels (a native-byte-order float copy, from an
   array in memory, a memory map or any lazy array) with its own copy of the
   WCS;
3. `owned` says which objects a tile keeps: those whose centre falls in its
   core, so that an object seen by several tiles is kept once;
4. `map_tiles` maps a function over the tiles, which are independent of one
   another, serially, on threads, or on any executor (a
   `concurrent.futures.Executor`, a ``dask.distributed.Client``), and returns
   the results in tile order: the same results whatever the scheduler.
"""

import numbers
from typing import NamedTuple

import numpy as np

from ..exceptions import InputError

__all__ = ["Tile", "plan_tiles", "tile_grid", "owned", "auto_tile_size"]

#: The working memory one image or tile of a stage may take; images that would
#: need more are processed in tiles of about this size (or a quarter of the
#: memory available, when that is less).
MEMORY_BUDGET = 512 << 20


class Tile(NamedTuple):
    """
    One tile of a mosaic: where it is and, once read, its pixels.

    `plan_tiles` makes tiles without pixels (``data``, ``wcs`` and ``mask``
    None); `read_tile` returns the same tile with them.

    Attributes
    ----------
    index : int
        Running number of the tile (row-major, from 0).
    slices : tuple of slice
        ``(y, x)`` slices of the tile, overlap included, in the mosaic.
    core : tuple of slice
        ``(y, x)`` slices, in the mosaic, of the part this tile owns: tiles'
        cores cover the mosaic exactly once, so an object whose centre falls
        in a tile's core is kept from that tile only (see `owned`).
    data : `~numpy.ndarray` or None
        The tile's pixels, a native-byte-order float copy (``(C, h, w)``
        for a multi-band image).
    wcs : `~astropy.wcs.WCS` or None
        The tile's own WCS: a deep copy, safe to use from another thread.
    mask : `~numpy.ndarray` or None
        The tile's no-data mask (True = no data), when the image has one.

    Examples
    --------
    >>> from astrofmtools.io import plan_tiles
    >>> tile = plan_tiles((100, 100), tile_size=64, overlap=16)[1]
    >>> tile.index, tile.origin, tile.data is None
    (1, (0, 36), True)
    """

    index: int
    slices: tuple
    core: tuple
    data: np.ndarray = None
    wcs: object = None
    mask: np.ndarray = None

    @property
    def origin(self):
        """``(y0, x0)``: add to tile pixel positions to get mosaic positions."""
        return self.slices[0].start, self.slices[1].start

    @property
    def shape(self):
        """``(ny, nx)`` of the tile, overlap included."""
        return tuple(s.stop - s.start for s in self.slices)


def tile_grid(shape, tile_size=1024, overlap=64):
    """
    The ``(slices, core)`` pairs that cover an image with overlapping tiles.

    The same grid as `plan_tiles`, as plain pairs of slices.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the image (for a longer shape, its last two axes).
    tile_size : int, optional
        Side of a tile, overlap included.
    overlap : int, optional
        Pixels shared by neighbouring tiles; make it larger than the largest
        object so that every object lies whole inside some tile.

    Returns
    -------
    grid : list of tuple
        ``(slices, core)`` for each tile, row-major.

    Raises
    ------
    astrofmtools.InputError
        For a tile size that is not positive, or an overlap outside
        ``[0, tile_size)``.

    Examples
    --------
    >>> from astrofmtools.io import tile_grid
    >>> grid = tile_grid((100, 250), tile_size=100, overlap=20)
    >>> len(grid)
    3
    >>> grid[1]  # doctest: +NORMALIZE_WHITESPACE
    ((slice(0, 100, None), slice(80, 180, None)),
     (slice(0, 100, None), slice(90, 165, None)))
    """
    if (not isinstance(tile_size, numbers.Integral) or not isinstance(overlap, numbers.Integral)
            or tile_size <= 0 or overlap < 0 or overlap >= tile_size):
        raise InputError(f"tile_size must be a positive integer and overlap an integer in "
                         f"[0, tile_size); got tile_size={tile_size!r}, overlap={overlap!r}.")
    shape = tuple(int(n) for n in shape)[-2:]
    if len(shape) != 2 or min(shape) <= 0:
        raise InputError(f"Tiles need a non-empty 2-D shape (ny, nx), not {shape}.")
    axes = []
    for n in shape:
        step = tile_size - overlap
        starts = list(range(0, max(n - tile_size, 0) + 1, step))
        if starts[-1] + tile_size < n:
            starts.append(n - tile_size)  # the last tile is full size too
        spans = [(s, min(s + tile_size, n)) for s in starts]
        # each boundary between cores lies in the middle of the overlap
        cuts = [0] + [(spans[i + 1][0] + spans[i][1]) // 2
                      for i in range(len(spans) - 1)] + [n]
        cores = list(zip(cuts[:-1], cuts[1:]))
        axes.append(list(zip(spans, cores)))
    grid = []
    for (ys, yc) in axes[0]:
        for (xs, xc) in axes[1]:
            grid.append(((slice(*ys), slice(*xs)), (slice(*yc), slice(*xc))))
    return grid


def plan_tiles(shape, tile_size=1024, overlap=64):
    """
    Plan the overlapping tiles that cover an image, up front.

    Each tile is at most ``tile_size`` pixels on a side (the last tile of a
    row or column is shifted back so that it is full size too) and shares
    ``overlap`` pixels with its neighbours. The boundary between two cores
    lies in the middle of their overlap, so an object smaller than half the
    overlap is seen whole by the tile that owns it.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the image (for a multi-band ``(C, ny, nx)`` shape,
        its last two axes).
    tile_size : int, optional
        Side of a tile in pixels, overlap included.
    overlap : int, optional
        Pixels shared by neighbouring tiles.

    Returns
    -------
    tiles : list of `Tile`
        Row-major, without pixels (read them with `read_tile` or let
        `map_tiles` read them).

    Raises
    ------
    astrofmtools.InputError
        For bad settings (see `tile_grid`).

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.io import plan_tiles
    >>> tiles = plan_tiles((200, 300), tile_size=128, overlap=16)
    >>> len(tiles), tiles[1].origin, tiles[1].shape
    (6, (0, 112), (128, 128))
    >>> tiles[1].core
    (slice(0, 100, None), slice(120, 206, None))
    >>> covered = np.zeros((200, 300), int)
    >>> for t in tiles:
    ...     covered[t.core] += 1
    >>> bool((covered == 1).all())  # the cores cover the image exactly once
    True
    """
    return [Tile(i, slices, core)
            for i, (slices, core) in enumerate(tile_grid(shape, tile_size, overlap))]


def owned(tile, x, y, margin=0):
    """
    Whether objects centred at ``(x, y)`` belong to a tile.

    The ownership rule of every tiled stage: an object belongs to the tile
    whose core holds its centre, so each position belongs to exactly one
    tile of a plan. Positions are 0-based pixels of the *mosaic* (pixel
    ``i`` spans ``[i - 0.5, i + 0.5)``).

    Parameters
    ----------
    tile : `Tile`
        The tile.
    x, y : float or array
        Centres in mosaic pixels.
    margin : int, optional
        Grow the core by this many pixels on its sides that face another
        tile (never beyond the tile): a tile then also keeps objects just
        beyond its core, so that an object whose centre two tiles measure
        slightly differently is not dropped by both. The caller removes the
        duplicates that this makes (e.g. by non-maximum suppression).

    Returns
    -------
    keep : bool or array of bool

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.io import owned, plan_tiles
    >>> tiles = plan_tiles((100, 250), tile_size=100, overlap=20)
    >>> x = np.array([10.0, 89.4, 89.5, 240.0])
    >>> np.array([owned(t, x, 50.0) for t in tiles]).astype(int)  # one owner per position
    array([[1, 1, 0, 0],
           [0, 0, 1, 0],
           [0, 0, 0, 1]])
    """
    (ylo, yhi), (xlo, xhi) = (_grown(c, s, margin) for c, s in zip(tile.core, tile.slices))
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    return (x >= xlo - 0.5) & (x < xhi - 0.5) & (y >= ylo - 0.5) & (y < yhi - 0.5)


def _grown(core, span, margin):
    """The core's [start, stop) grown by margin on the sides that face a neighbour."""
    lo = max(core.start - margin, span.start) if core.start > span.start else core.start
    hi = min(core.stop + margin, span.stop) if core.stop < span.stop else core.stop
    return lo, hi


def auto_tile_size(shape, bytes_per_pixel, budget=None):
    """
    The tile side that keeps a stage's working memory under a budget.

    Parameters
    ----------
    shape : tuple of int
        The image's ``(ny, nx)``.
    bytes_per_pixel : float
        The stage's working memory per pixel.
    budget : int, optional
        Bytes one image or tile may take (default: `MEMORY_BUDGET`, or a
        quarter of the memory available when that is less).

    Returns
    -------
    tile_size : int
        0 when the whole image fits the budget; otherwise the tile side, a
        multiple of 512 pixels (at least 1024).

    Examples
    --------
    >>> from astrofmtools.io import auto_tile_size
    >>> auto_tile_size((4096, 4096), 40, budget=1 << 30)
    0
    >>> auto_tile_size((16500, 16500), 40, budget=1 << 29)
    3584
    """
    from .lazy import available_memory
    if budget is None:
        budget = min(MEMORY_BUDGET, available_memory() // 4)
    if shape[-2] * shape[-1] * bytes_per_pixel <= budget:
        return 0
    side = int((budget / bytes_per_pixel) ** 0.5) // 512 * 512
    return max(side, 1024)
