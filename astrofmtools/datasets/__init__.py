# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Synthetic skies with truth catalogues (optical and radio) and the example
image that ships with the package.
"""

from .examples import *  # noqa: F401, F403
from .wcs import *  # noqa: F401, F403
from .radio import *  # noqa: F401, F403
from .optical import *  # noqa: F401, F403
from .cutouts import *  # noqa: F401, F403
