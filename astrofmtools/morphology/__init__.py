# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Non-parametric morphology of cutouts with statmorph (Rodriguez-Gomez et al.
2019): concentration, asymmetry and smoothness (CAS), Gini and M20, MID,
a 2-D Sersic fit, radii and shapes, one table row per cutout, the
Gini-M20 diagram, and what the principal components of foundation-model
features track (their correlation with the morphometrics). Measuring needs
the optional ``statmorph`` package (``pip install astrofmtools[morphology]``);
no torch.
"""

from .columns import *  # noqa: F401, F403
from .core import *  # noqa: F401, F403
from .correlation import *  # noqa: F401, F403
from .plot import *  # noqa: F401, F403
