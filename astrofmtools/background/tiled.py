# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Background maps of a mosaic, tile by tile: each tile's maps from its own
boxes, kept over the tile's core, the same whatever the scheduler.
"""

import numpy as np

__all__ = []

#: Working memory of the box statistics per pixel, in bytes (the pixels, the
#: sorted boxes, the two maps).
BYTES_PER_PIXEL = 24


class _TileMaps:
    """The maps of one tile over its core (picklable: no pixels of the mosaic)."""

    def __init__(self, info, mask, settings):
        self.info, self.mask, self.settings = info, mask, settings

    def __call__(self, tile):
        from ..io.tile_reader import _tile_image
        from .core import estimate_background
        sub_mask = None if self.mask is None else self.mask[tile.slices]
        maps = estimate_background(_tile_image(self.info, tile), mask=sub_mask,
                                   tile_size=0, **self.settings)
        (y0, x0), (cy, cx) = tile.origin, tile.core
        core = (slice(cy.start - y0, cy.stop - y0), slice(cx.start - x0, cx.stop - x0))
        return (np.asarray(maps.background[core], np.float32),
                np.asarray(maps.rms[core], np.float32), maps.method)


def _overlap(box, filter_size):
    """Overlap that lets each core's boxes see the neighbours their filter and interpolation use."""
    return int(2 * max(box) * (max(filter_size) // 2 + 2))


def _estimate_tiled(image, mask, tile_size, box, filter_size, settings, scheduler, workers):
    """Maps of a large image from independent tiles (float32 maps of the image's shape)."""
    from ..io import map_tiles, plan_tiles
    from ..io.tile_reader import _ImageInfo
    overlap = _overlap(box, filter_size)
    tiles = plan_tiles(image.shape, max(tile_size, 2 * overlap + max(box)), overlap)
    background = np.empty(image.shape, np.float32)
    rms = np.empty(image.shape, np.float32)
    methods = set()
    task = _TileMaps(_ImageInfo(image), mask, dict(settings, box_size=box,
                                                   filter_size=filter_size))
    for tile, (b, r, method) in zip(tiles, map_tiles(task, image, tiles, scheduler,
                                                     workers=workers, desc="background")):
        background[tile.core], rms[tile.core] = b, r
        methods.add(method)
    return background, rms, methods, overlap
