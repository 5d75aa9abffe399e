# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Tiled source finding for large images: one plan measured on a window
chosen from the image alone, then a finder mapped over independent tiles.
"""

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning
from photutils.utils import NoDetectionsWarning

from ..background import BackgroundMaps
from ..background.core import _image_arrays
from ..exceptions import InputError
from ..io import Tile, map_tiles, owned, plan_tiles, read_tile
from ..io.tile_reader import _ImageInfo, _tile_image
from .detection import _find_in_array, _maps_for
from .filtering import _central
from .plan import _make_plan

__all__ = []

#: Side of the window of a tiled image that the detection plan is measured on.
PLAN_WINDOW = 2048


def _plan_window(image, mask):
    """
    The window of a large image the plan is measured on (a read `Tile`).

    The central ``PLAN_WINDOW`` square when at least half its pixels hold
    data; otherwise the first such square of a grid ordered by distance
    from the image centre, or the one with the most data. The choice
    depends on the image only, never on tiles or the order they run in.
    """
    ny, nx = image.shape
    centre = _central((ny, nx), PLAN_WINDOW)
    candidates = [centre] + sorted(
        (t.slices for t in plan_tiles((ny, nx), min(PLAN_WINDOW, max(ny, nx)), 0)),
        key=lambda sl: ((sl[0].start + sl[0].stop - ny) ** 2
                        + (sl[1].start + sl[1].stop - nx) ** 2))
    best, best_count = None, 0
    for slices in candidates:
        tile = read_tile(image, Tile(-1, slices, slices))
        bad = ~np.isfinite(tile.data)
        if tile.mask is not None:
            bad |= tile.mask
        if mask is not None:
            bad |= np.asarray(mask[slices], dtype=bool)
        count = int(bad.size - np.count_nonzero(bad))
        if 2 * count >= bad.size:
            return tile
        if count > best_count:
            best, best_count = tile, count
    if best is None:
        raise InputError(f"{image.source} has no valid pixel: all are NaN, Inf or masked.")
    return best


def _tile_maps(background, slices):
    """The given background maps over a tile (without slicing the shared WCS)."""
    return BackgroundMaps(background.background[slices], background.rms[slices],
                          method=background.method, box_size=background.box_size,
                          unit=background.unit)


def _make_tiled_plan(image, mask, background, s):
    """The plan of a tiled image: measured once, on one window chosen from the image alone."""
    tile = _plan_window(image, mask)
    window = tile.slices
    sub_mask = None if mask is None else mask[window]
    timage, data, nodata, ignore = _image_arrays(_tile_image(image, tile), sub_mask,
                                                 "find_sources")
    maps = _maps_for(timage, sub_mask, None if background is None else
                     _tile_maps(background, window), s["box_size"])
    # the PSF and beam come from the whole image (the beam's angle at its centre)
    return _make_plan(image, data, nodata, ignore, maps, s["snr"], s["island_snr"],
                      s["npixels"], s["prominence"], s["deblend"], s["psf_fwhm"],
                      s["matched_filter"], s["box_size"])


class _TileFinder:
    """Find the sources of one tile with a fixed plan; keep those whose peak it owns."""

    def __init__(self, image, mask, background, plan, box_size):
        # only the image's description: the finder travels to every worker with each tile
        self.image, self.mask, self.background = image, mask, background
        self.plan, self.box_size = plan, box_size

    def __call__(self, tile):
        slices = tile.slices
        sub_mask = None if self.mask is None else self.mask[slices]
        try:
            timage, data, nodata, ignore = _image_arrays(_tile_image(self.image, tile),
                                                         sub_mask, "find_sources")
        except InputError:
            return None  # a tile without data
        maps = _maps_for(timage, sub_mask, None if self.background is None else
                         _tile_maps(self.background, slices), self.box_size)
        cols = _find_in_array(data, nodata, ignore, maps, self.plan)
        if cols is None:
            return None
        y0, x0 = tile.origin
        cols["peak_y"] = cols["peak_y"] + y0
        cols["peak_x"] = cols["peak_x"] + x0
        inside = owned(tile, cols["peak_x"], cols["peak_y"])
        cols = {k: np.asarray(v)[inside] for k, v in cols.items()}
        for key in ("x", "bbox_xmin", "bbox_xmax"):
            cols[key] = cols[key] + x0
        for key in ("y", "bbox_ymin", "bbox_ymax"):
            cols[key] = cols[key] + y0
        cols["island"] = cols["island"] + ((tile.index + 1) << 32)  # unique across tiles
        return cols


#: Warnings the per-tile work (photutils, numpy) silences with warnings.catch_warnings,
#: which is not thread-safe: map_tiles ignores them around the whole map.
_TILE_WARNINGS = (RuntimeWarning, AstropyUserWarning, NoDetectionsWarning)


def _find_tiled(image, mask, background, s, tile_size, overlap, scheduler, workers):
    # plan once, from the image, then map the finder over independent tiles
    plan = _make_tiled_plan(image, mask, background, s)
    tiles = plan_tiles(image.shape, tile_size, overlap)
    finder = _TileFinder(_ImageInfo(image), mask, background, plan, s["box_size"])
    parts = [p for p in map_tiles(finder, image, tiles, scheduler, workers=workers,
                                  ignore_warnings=_TILE_WARNINGS, desc="sources")
             if p is not None]
    if not parts:
        return None, plan
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, plan
