# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Small shared helpers: atomic output files, table metadata, progress bars, saved models
and figures."""

from .output import *  # noqa: F401, F403
from .meta import *  # noqa: F401, F403
from .progress import *  # noqa: F401, F403
from .saved import *  # noqa: F401, F403
from .figures import *  # noqa: F401, F403
from .registry import *  # noqa: F401, F403
