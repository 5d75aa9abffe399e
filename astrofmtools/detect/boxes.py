# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Boxes between tables and detectors.

The conversions live in `astrofmtools.schema.boxes` (torch-free, so the
stages upstream of detection read boxes without importing this package);
they are re-exported here under their old names.
"""

from ..schema.boxes import box_centres, boxes_from_table, boxes_to_columns
from ..schema.columns import BBOX_COLUMNS

__all__ = ["BBOX_COLUMNS", "boxes_from_table", "boxes_to_columns", "box_centres"]
