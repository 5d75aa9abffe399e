# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Classify sky cutouts with foundation-model backbones.

`Classifier` puts a head (from the heads registry: linear, MLP, whitening +
linear, kNN, logistic regression, or one added with `register_head`) on a
backbone from `astrofmtools.backbones` and adapts it with a strategy from
`astrofmtools.adapt` (``frozen``, ``partial``, ``finetune``, ``lora``,
``bitfit``, or one added with `~astrofmtools.adapt.register_strategy`).
Training weights classes by inverse frequency, can use a fraction of the
labels (label-efficiency curves), stops early on a validation split,
augments with free rotations, flips and small crops, uses mixed precision on
GPU, checkpoints every epoch so that a run resumes, and predicts with
test-time augmentation over the eight flips and quarter turns.

Needs the ``ml`` extra (torch, torchvision, timm, peft, safetensors,
scikit-learn); ``import astrofmtools`` itself never imports torch.
"""

from .augment import *  # noqa: F401, F403
from .head_modules import *  # noqa: F401, F403
from .head_fits import *  # noqa: F401, F403
from .heads import *  # noqa: F401, F403
from .train import *  # noqa: F401, F403
from .model import *  # noqa: F401, F403
from .classifier import *  # noqa: F401, F403
from .ensemble import *  # noqa: F401, F403
from .label_curves import *  # noqa: F401, F403
