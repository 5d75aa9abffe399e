# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Load FITS images of any origin into one image type, `SkyImage`, and work on
large mosaics in overlapping tiles: plan them (`plan_tiles`), read one
(`read_tile`), keep each object once (`owned`) and map a function over them,
serially, on threads or on a cluster (`map_tiles`).
"""

from .image import *  # noqa: F401, F403
from .lazy import *  # noqa: F401, F403
from .load import *  # noqa: F401, F403
from .tiles import *  # noqa: F401, F403
from .tile_reader import *  # noqa: F401, F403
from .tile_map import *  # noqa: F401, F403
from .schedulers import *  # noqa: F401, F403
from .write import *  # noqa: F401, F403
from .bands import *  # noqa: F401, F403
from .mosaicking import *  # noqa: F401, F403
from .reprojection import *  # noqa: F401, F403
from .files import *  # noqa: F401, F403
