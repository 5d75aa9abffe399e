# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Turn sky images into model-ready channels: astropy.visualization intervals
and stretches, a sigma-clip noise floor, multi-stretch channel stacks,
multi-band composites (per-band stretches, Lupton RGB, radio on infrared)
and resizing to a model's input size. Every output is float32 in [0, 1] (resize
keeps the range it is given) and NaN-safe.
"""

from .core import *  # noqa: F401, F403
from .composite import *  # noqa: F401, F403
from .resize import *  # noqa: F401, F403
