# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Predictions a scientist can trust: calibration (expected and maximum
calibration error, reliability diagrams, temperature scaling), conformal
prediction sets with guaranteed coverage, predictive uncertainty (entropy,
mutual information of stochastic passes or ensembles) and out-of-distribution
scores. Everything here works on plain arrays (probabilities, logits,
features) and needs no torch; `~astrofmtools.classify.Classifier` applies it
to its predictions.
"""

from .calibration import *  # noqa: F401, F403
from .conformal import *  # noqa: F401, F403
from .uncertainty import *  # noqa: F401, F403
from .ood import *  # noqa: F401, F403
