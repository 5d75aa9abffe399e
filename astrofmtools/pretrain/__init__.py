# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Self-supervised pretraining of registry backbones on unlabelled sky cutouts.

`Pretrainer` adapts any registry backbone, CNN or ViT, to the user's sky
with a registered method (`list_methods`: BYOL, as in Radio Galaxy Zoo's
radio foundation model, and DINO), built from lightly's heads, losses and
momentum utilities, in the shared training loop
(`~astrofmtools.adapt.TrainLoop`). `SkyViews` makes the augmented views
on the device; `knn_error` monitors the features on a small labelled set.
The result is a backbone folder that every stage loads by path or name.
`build_pool` gathers the unlabelled cutouts from mosaics, postage stamps,
cutout stacks and arrays.
"""

from .methods import *  # noqa: F401, F403
from .views import *  # noqa: F401, F403
from .task import *  # noqa: F401, F403
from .core import *  # noqa: F401, F403
from .plots import *  # noqa: F401, F403
from .pools import *  # noqa: F401, F403
