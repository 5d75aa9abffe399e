# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Catalogue outputs: DS9 and CRTF region files (through the `regions`
package), source tables in ECSV, FITS, VOTable and CSV, survey-scale
catalogues as HATS (through lsdb), and sky cross-matching.

The schema of the tables (columns, positions and their frames, boxes,
labels) lives upstream of every stage in `astrofmtools.schema`.
"""

from .regions import *  # noqa: F401, F403
from .region_shapes import *  # noqa: F401, F403
from .region_table import *  # noqa: F401, F403
from .tables import *  # noqa: F401, F403
from .matching import *  # noqa: F401, F403
from .hats import *  # noqa: F401, F403
from .hats_crossmatch import *  # noqa: F401, F403
