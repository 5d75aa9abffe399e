# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Scores and figures for classifiers: macro-F1, per-class tables, confusion
matrices and label-efficiency curves. Studies (a grid of backbones,
preprocessing, strategies, heads, label fractions and seeds, each cell run once
and cached) train classifiers, so they live in `astrofmtools.classify`
(`~astrofmtools.classify.run_study`).

The headline score is the macro-averaged F1, which weights rare classes as
much as common ones; micro-F1 is not reported because for single-label
multiclass data it equals the accuracy. Needs scikit-learn (the ``ml``
extra) and matplotlib, imported only when a function is called; never
imports torch.
"""

from .classification import *  # noqa: F401, F403
from .plots import *  # noqa: F401, F403
from .detection import *  # noqa: F401, F403
from .position_matching import *  # noqa: F401, F403
from .completeness import *  # noqa: F401, F403
from .completeness_plot import *  # noqa: F401, F403
