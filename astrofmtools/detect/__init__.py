# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Detect sources with foundation-model backbones under a Faster R-CNN head.

Needs the ``ml`` extra; ``import astrofmtools`` never imports torch.
"""

from .boxes import *  # noqa: F401, F403
from .tiling import *  # noqa: F401, F403
from .model import *  # noqa: F401, F403
from .preprocess import *  # noqa: F401, F403
from .training_set import *  # noqa: F401, F403
from .crops import *  # noqa: F401, F403
from .detector import *  # noqa: F401, F403
