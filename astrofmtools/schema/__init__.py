# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
One schema for tables: the columns the stages write (name, unit,
description), where a table keeps its positions and in which frame,
bounding boxes, and class labels.

Every stage reads and writes tables through this package, which sits
upstream of all of them: it imports numpy and astropy only (no torch, no
other stage), so `~astrofmtools.io`, `~astrofmtools.sources`,
`~astrofmtools.catalog`, `~astrofmtools.evaluate` and the torch stages
share one reading of a table. `~astrofmtools.catalog` re-exports it.
"""

from .columns import *  # noqa: F401, F403
from .frames import *  # noqa: F401, F403
from .positions import *  # noqa: F401, F403
from .boxes import *  # noqa: F401, F403
from .labels import *  # noqa: F401, F403
