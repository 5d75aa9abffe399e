# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The columns that every cutout table carries (`CUTOUT_COLUMNS`)."""

import numpy as np

__all__ = ["CUTOUT_COLUMNS"]

#: The columns a cutout table carries besides the input's own, with their
#: dtype, default (for a stack built by hand) and description.
CUTOUT_COLUMNS = {
    "cutout_x0": (np.int64, 0, "0-based pixel x, in the parent image, of the cutout's first "
                  "column (of the crop, before any resizing)"),
    "cutout_y0": (np.int64, 0, "0-based pixel y, in the parent image, of the cutout's first "
                  "row (of the crop, before any resizing)"),
    "cutout_scale": (np.float64, 1.0, "parent-image pixels per cutout pixel (1: not resized)"),
    "cutout_x": (np.float64, np.nan, "source x in the cutout (0-based cutout pixel)"),
    "cutout_y": (np.float64, np.nan, "source y in the cutout (0-based cutout pixel)"),
    "edge": (bool, False, "cutout partly outside the image, or holding pixels without data "
             "(NaN)"),
    "cutout_parent": (np.int64, -1, "row of CutoutStack.parents (the image the cutout comes "
                      "from); -1: unknown"),
}
