# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Adapt a backbone to the data: strategies, the training schedule and one training loop.

A `Strategy` (``frozen``, ``partial``, ``finetune``, ``lora``, ``bitfit``,
or one registered with `register_strategy`) says which parameters of a
backbone train, at what learning rate and in which mode, and what a saved
model stores. `TrainSettings` holds the schedule. `TrainLoop` runs any
task's loss (classification, detection, self-supervised pretraining) with
seeded batches, mixed precision on CUDA, early stopping, checkpoints that
resume and a progress bar. `~astrofmtools.classify.Classifier` and
`~astrofmtools.detect.Detector` both build on these.

Needs the ``ml`` extra (torch).
"""

from .settings import *  # noqa: F401, F403
from .strategies import *  # noqa: F401, F403
from .bitfit import *  # noqa: F401, F403
from .loop import *  # noqa: F401, F403
