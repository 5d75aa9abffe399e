# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Studies: choose a backbone, a preprocessing and an adaptation for your data, reproducibly.

A study (`run_study`, ``astrofm study``) trains and scores every cell of a grid of
backbones x preprocessing variants x adaptations x label fractions x seeds once, for a
task from the registry (`list_study_tasks`: classification of a cutout stack, detection
on FITS images), caches each cell's result so that it resumes and widens, and writes the
tables, the figures and a report: which setting wins, by how much and how surely (paired
by seed), at what cost, with the command that trains it.

Downstream of ``classify``, ``detect`` and ``embed``, which it drives.
"""

from .tasks import *  # noqa: F401, F403
from .config import *  # noqa: F401, F403
from .cost import *  # noqa: F401, F403
from .run import *  # noqa: F401, F403
from .compare import *  # noqa: F401, F403
from .figures import *  # noqa: F401, F403
from .report import *  # noqa: F401, F403
