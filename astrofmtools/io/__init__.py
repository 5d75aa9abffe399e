# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Load FITS images of any origin into one image type, `SkyImage`, and iterate
over large mosaics in overlapping tiles.
"""

from .image import *  # noqa: F401, F403
from .load import *  # noqa: F401, F403
from .tiles import *  # noqa: F401, F403
from .write import *  # noqa: F401, F403
from .bands import *  # noqa: F401, F403
from .files import *  # noqa: F401, F403
