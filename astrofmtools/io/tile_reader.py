# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Read the tiles of a mosaic: one tile's pixels, WCS and no-data mask
(`read_tile`), or every tile in turn (`iter_tiles`), from an image or any
array that can be sliced (in memory, memory-mapped, lazy).
"""

import os
from typing import NamedTuple

import numpy as np

from ..exceptions import InputError
from .tiles import plan_tiles

__all__ = ["read_tile", "iter_tiles"]


class _Source(NamedTuple):
    """What tiles are read from: pixels, WCS, no-data mask and a name."""

    data: object
    wcs: object
    mask: object
    name: str


def _as_source(image):
    """Parse an image, or a plain (memory-mapped, lazy) array, once."""
    from .image import SkyImage
    from .load import load_image
    if isinstance(image, _Source):
        return image
    if isinstance(image, SkyImage):
        return _Source(image.data, image.wcs, image.mask, image.source)
    if isinstance(image, (str, os.PathLike)):
        image = load_image(image)
        return _Source(image.data, image.wcs, image.mask, image.source)
    if hasattr(image, "shape") and hasattr(image, "__getitem__") and not isinstance(image,
                                                                                  tuple):
        if len(image.shape) not in (2, 3):
            raise InputError(f"Tiles are cut from 2-D (ny, nx) or (C, ny, nx) arrays; this "
                             f"array has shape {tuple(image.shape)}.")
        return _Source(image, None, None, f"<{type(image).__name__}>")
    image = load_image(image)
    return _Source(image.data, image.wcs, image.mask, image.source)


class _ImageInfo:
    """What a tile needs of its mosaic besides pixels: unit, beam, header, name (picklable)."""

    def __init__(self, image):
        self.unit, self.beam, self.header, self.source = (image.unit, image.beam, image.header,
                                                          image.source)


def _tile_image(image, tile):
    """A `SkyImage` of a read tile (its pixels, WCS and no-data mask)."""
    from .image import SkyImage
    return SkyImage(tile.data, wcs=tile.wcs, unit=image.unit, mask=tile.mask, beam=image.beam,
                    header=image.header, source=f"{image.source} tile {tile.index}")


def _read(source, tile, dtype=None):
    sl = (Ellipsis,) + tuple(tile.slices)
    block = np.asarray(source.data[sl])  # a memory map or lazy array is read here only
    if dtype is not None:
        block = np.array(block, dtype=dtype)
    elif block.dtype.kind != "f" or not block.dtype.isnative:
        block = block.astype(np.float32 if block.dtype.itemsize <= 4 else np.float64)
    else:
        block = block.copy()
    # slicing a WCS deep-copies it: each tile gets its own (astropy WCS is not thread-safe)
    wcs = source.wcs[tuple(tile.slices)] if source.wcs is not None else None
    mask = None if source.mask is None else np.array(np.asarray(source.mask)[sl], dtype=bool)
    return tile._replace(data=block, wcs=wcs, mask=mask)


def read_tile(image, tile, dtype=None):
    """
    Read one tile's pixels, WCS and no-data mask.

    Parameters
    ----------
    image : `~astrofmtools.io.SkyImage`, array or any input of `~astrofmtools.io.load_image`
        The mosaic: an image, or a 2-D (or ``(C, ny, nx)``) array of any
        kind that can be sliced: in memory, memory-mapped (``np.memmap``, the
        data of a FITS file opened with ``memmap=True``), an
        ``astropy.io.fits`` section, an HDF5 dataset, a Dask array. A file
        name is opened memory-mapped.
    tile : `Tile`
        The tile, from `plan_tiles`.
    dtype : dtype, optional
        The float type of the pixels. By default the image's float type
        (float32 for integer pixels of up to 4 bytes, float64 for longer
        ones), in native byte order.

    Returns
    -------
    tile : `Tile`
        The same tile with ``data`` (a copy: writing to it leaves the image
        alone), ``wcs`` (a deep copy shifted to the tile's origin, or None)
        and ``mask`` (or None) filled in.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.io import plan_tiles, read_tile
    >>> data = np.arange(200.0 * 300).reshape(200, 300).astype(">f4")  # big-endian, as FITS
    >>> tile = read_tile(data, plan_tiles(data.shape, 128, 16)[1])
    >>> tile.data.shape, tile.data.dtype.isnative, float(tile.data[0, 0] - data[0, 112])
    ((128, 128), True, 0.0)
    """
    return _read(_as_source(image), tile, dtype)


def iter_tiles(image, tile_size=1024, overlap=64):
    """
    Iterate over an image in overlapping tiles.

    Only one tile is in memory at a time, so a memory-mapped mosaic larger
    than memory can be processed. The tiles are those of `plan_tiles`, read
    with `read_tile`; `map_tiles` maps a function over them, on threads or a
    cluster if asked.

    Parameters
    ----------
    image : `~astrofmtools.io.SkyImage`, array or any input of `~astrofmtools.io.load_image`
        The mosaic. A file name is opened memory-mapped.
    tile_size : int, optional
        Side of a tile in pixels, overlap included.
    overlap : int, optional
        Pixels shared by neighbouring tiles.

    Yields
    ------
    tile : `Tile`
        The tile's index, slices, core, pixels (float, native byte order,
        NaN where there is no data), WCS and no-data mask.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.io import iter_tiles, load_image
    >>> image = load_image((np.arange(300.0 * 200).reshape(200, 300), None))
    >>> tiles = list(iter_tiles(image, tile_size=128, overlap=16))
    >>> len(tiles), tiles[1].origin, tiles[1].data.shape
    (6, (0, 112), (128, 128))
    """
    source = _as_source(image)
    for tile in plan_tiles(np.shape(source.data), tile_size, overlap):
        yield _read(source, tile)
