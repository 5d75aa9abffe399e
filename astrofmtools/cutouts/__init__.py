# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Cutouts of many sources at once: fixed-size stamps or close crops around
each source's bounding box, from one image (pixel or sky positions) or from
a folder of survey cutout files, as one `CutoutStack` (an N×H×W array, the
source table and a WCS per cutout) that round-trips through one FITS file.
"""

from .stack import *  # noqa: F401, F403
from .parents import *  # noqa: F401, F403
from .columns import *  # noqa: F401, F403
from .core import *  # noqa: F401, F403
from .inputs import *  # noqa: F401, F403
from .image_files import *  # noqa: F401, F403
