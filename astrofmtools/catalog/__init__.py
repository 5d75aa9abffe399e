# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Catalogue outputs: DS9 and CRTF region files (through the `regions`
package) and source tables in ECSV, FITS, VOTable and CSV.
"""

from .regions import *  # noqa: F401, F403
from .tables import *  # noqa: F401, F403
from .matching import *  # noqa: F401, F403
