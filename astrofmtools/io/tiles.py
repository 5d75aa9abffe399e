# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Iterate over large images in overlapping tiles, memory bounded by the tile."""

import copy
from typing import NamedTuple

import numpy as np

from ..exceptions import InputError

__all__ = ["Tile", "iter_tiles", "tile_grid"]


class Tile(NamedTuple):
    """
    One tile of a mosaic.

    Attributes
    ----------
    index : int
        Running number of the tile (row-major).
    slices : tuple of slice
        ``(y, x)`` slices of the tile, overlap included, in the mosaic.
    core : tuple of slice
        ``(y, x)`` slices, in the mosaic, of the part this tile owns: tiles'
        cores cover the mosaic exactly once, so an object whose centre falls
        in a tile's core is kept from that tile only.
    data : `~numpy.ndarray`
        The tile's pixels, a native-byte-order float copy.
    wcs : `~astropy.wcs.WCS` or None
        The tile's own WCS (a deep copy, safe to use from another thread).
    """

    index: int
    slices: tuple
    core: tuple
    data: np.ndarray
    wcs: object

    @property
    def origin(self):
        """``(y0, x0)``: add to tile pixel positions to get mosaic positions."""
        return self.slices[0].start, self.slices[1].start


def tile_grid(shape, tile_size=1024, overlap=64):
    """
    The ``(slices, core)`` pairs that cover an image with overlapping tiles.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the image.
    tile_size : int, optional
        Side of a tile, overlap included.
    overlap : int, optional
        Pixels shared by neighbouring tiles; make it larger than the largest
        object so that every object lies whole inside some tile.

    Returns
    -------
    grid : list of tuple
        ``(slices, core)`` for each tile, row-major.

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
    if tile_size <= 0 or overlap < 0 or overlap >= tile_size:
        raise InputError(f"tile_size must be positive and overlap in [0, tile_size); got "
                         f"tile_size={tile_size}, overlap={overlap}.")
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


def iter_tiles(image, tile_size=1024, overlap=64):
    """
    Iterate over an image in overlapping tiles.

    Only one tile is in memory at a time, so a memory-mapped mosaic larger
    than memory can be processed.

    Parameters
    ----------
    image : `~astrofmtools.io.SkyImage` or any input of `~astrofmtools.io.load_image`
        The mosaic.
    tile_size : int, optional
        Side of a tile in pixels, overlap included.
    overlap : int, optional
        Pixels shared by neighbouring tiles.

    Yields
    ------
    tile : `Tile`
        The tile's index, slices, core, pixels (float, native byte order,
        NaN where there is no data) and WCS.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.io import iter_tiles, load_image
    >>> image = load_image((np.arange(300.0 * 200).reshape(200, 300), None))
    >>> tiles = list(iter_tiles(image, tile_size=128, overlap=16))
    >>> len(tiles), tiles[1].origin, tiles[1].data.shape
    (6, (0, 112), (128, 128))
    """
    from .load import load_image
    image = load_image(image)
    for index, (slices, core) in enumerate(tile_grid(image.shape, tile_size, overlap)):
        block = np.asarray(image.data[slices])
        if block.dtype.kind != "f" or not block.dtype.isnative:
            block = block.astype(np.float32 if block.dtype.itemsize <= 4 else np.float64)
        else:
            block = block.copy()
        wcs = copy.deepcopy(image.wcs[slices]) if image.wcs is not None else None
        yield Tile(index, slices, core, block, wcs)
