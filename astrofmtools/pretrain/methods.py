# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Self-supervised methods as registry entries: BYOL and DINO, built from lightly's parts.

A method wraps a backbone (the *online* or *student* network, the one that
is kept) with its heads and, for the momentum methods, an exponential moving
average copy (the *target* or *teacher*). Its ``forward(views, epoch)``
returns the loss of a list of augmented views of one batch, so that one
`torch.nn.parallel.DistributedDataParallel` wrapper synchronises its
gradients; ``momentum_update(step, total)`` moves the average copy before
each step, as in lightly's examples. Adding a method is one class and one
`register_method` line.
"""

import copy
import warnings

import torch
from torch import nn

from ..exceptions import InputError
from ..utils import Registry

__all__ = ["Method", "BYOL", "DINO", "METHODS", "register_method", "get_method",
           "list_methods"]

#: The registered self-supervised methods, by name.
METHODS = Registry("pretraining method")


def register_method(cls, overwrite=False):
    """
    Add a `Method` subclass to the registry under its ``name`` (usable as a decorator).

    Examples
    --------
    >>> from astrofmtools.pretrain import BYOL, register_method, list_methods
    >>> class SlowBYOL(BYOL):
    ...     name = "slow_byol"
    ...     defaults = {**BYOL.defaults, "momentum": 0.999}
    >>> _ = register_method(SlowBYOL)
    >>> "slow_byol" in list_methods()
    True
    """
    if not (isinstance(cls, type) and issubclass(cls, Method)) or not cls.name:
        raise InputError("register_method needs a Method subclass with a name.")
    METHODS.add(cls.name, cls, overwrite=overwrite)
    return cls


def get_method(name):
    """The `Method` class registered as ``name`` (the error lists the known ones)."""
    return METHODS.lookup(name)


def list_methods():
    """
    The names of the registered methods.

    Examples
    --------
    >>> from astrofmtools.pretrain import list_methods
    >>> sorted(list_methods())[:2]
    ['byol', 'dino']
    """
    return list(METHODS)


def _momentum_copy(module):
    """A frozen copy of ``module`` for the moving average."""
    from lightly.models.utils import deactivate_requires_grad
    twin = copy.deepcopy(module)
    deactivate_requires_grad(twin)
    return twin


class Method(nn.Module):
    """
    A self-supervised method: a backbone, its heads and its loss.

    Subclasses set ``name``, ``defaults`` (the options and their default
    values, which are also the only options accepted) and ``n_views``, and
    implement `forward`. Methods with a momentum network implement
    `momentum_update`.

    Parameters
    ----------
    backbone : `~astrofmtools.backbones.Backbone`
        The network to pretrain (kept: the result of pretraining).
    pooling : str, optional
        The backbone's pooling for the method's heads (default: its own).
    **options
        The method's options (see ``defaults``).
    """

    name = None
    defaults = {}
    n_views = 2

    def __init__(self, backbone, pooling=None, **options):
        super().__init__()
        unknown = set(options) - set(self.defaults)
        if unknown:
            raise InputError(f"Unknown options {sorted(unknown)} for pretraining method "
                             f"{self.name!r}; its options are {sorted(self.defaults)}.")
        self.options = {**self.defaults, **options}
        self.backbone = backbone
        self.pooling = pooling or backbone.pooling
        self.feature_dim = backbone.feature_dim_for(self.pooling)

    def features(self, x):
        """The online backbone's pooled features."""
        return self.backbone(x, pooling=self.pooling)

    def forward(self, views, epoch=0):
        """The loss (a scalar tensor) of a list of views of one batch."""
        raise NotImplementedError

    def momentum_update(self, step, total):
        """Move the momentum network before step ``step`` of ``total`` (default: none)."""

    def after_backward(self, epoch):
        """Between the backward pass and the optimiser step (default: nothing)."""


@register_method
class BYOL(Method):
    """
    Bootstrap Your Own Latent (Grill et al. 2020), as in Radio Galaxy Zoo's radio model.

    The online network (backbone, projection, prediction) predicts the
    target network's projection of another view of the same image; the
    target is an exponential moving average of the online backbone and
    projection, with a momentum rising from ``momentum`` to 1 on a cosine
    schedule (lightly's ``cosine_schedule``). The loss is the symmetrised
    negative cosine similarity (in [-1, 1]; -1 is perfect agreement).

    Parameters
    ----------
    backbone : `~astrofmtools.backbones.Backbone`
        The network to pretrain.
    pooling : str, optional
        The backbone's pooling (default: its own).
    projection_dim, hidden_dim : int, optional
        Output and hidden sizes of the projection and prediction heads
        (lightly's ``BYOLProjectionHead`` and ``BYOLPredictionHead``).
    momentum : float, optional
        The starting momentum of the target network.

    Examples
    --------
    >>> import torch
    >>> from astrofmtools.backbones import load_backbone
    >>> from astrofmtools.pretrain import BYOL
    >>> method = BYOL(load_backbone("efficientnet_lite0", device="cpu"), hidden_dim=64,
    ...               projection_dim=32)
    >>> views = [torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)]
    >>> loss = method(views)
    >>> loss.ndim, -1 <= float(loss.detach()) <= 1
    (0, True)
    """

    name = "byol"
    defaults = {"projection_dim": 256, "hidden_dim": 4096, "momentum": 0.99}

    def __init__(self, backbone, pooling=None, **options):
        super().__init__(backbone, pooling, **options)
        from lightly.loss import NegativeCosineSimilarity
        from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead
        o = self.options
        self.projection = BYOLProjectionHead(self.feature_dim, o["hidden_dim"],
                                             o["projection_dim"])
        self.prediction = BYOLPredictionHead(o["projection_dim"], o["hidden_dim"],
                                             o["projection_dim"])
        self.target_backbone = _momentum_copy(self.backbone)
        self.target_projection = _momentum_copy(self.projection)
        self.criterion = NegativeCosineSimilarity()

    def _online(self, x):
        return self.prediction(self.projection(self.features(x)))

    def _target(self, x):
        with torch.no_grad():
            return self.target_projection(
                self.target_backbone(x, pooling=self.pooling)).detach()

    def forward(self, views, epoch=0):
        x0, x1 = views[:2]
        p0, p1 = self._online(x0), self._online(x1)
        z0, z1 = self._target(x0), self._target(x1)
        return 0.5 * (self.criterion(p0.float(), z1.float())
                      + self.criterion(p1.float(), z0.float()))

    def momentum_update(self, step, total):
        from lightly.models.utils import update_momentum
        from lightly.utils.scheduler import cosine_schedule
        m = cosine_schedule(step, max(total, 1), self.options["momentum"], 1.0)
        update_momentum(self.backbone, self.target_backbone, m=m)
        update_momentum(self.projection, self.target_projection, m=m)


@register_method
class DINO(Method):
    """
    Self-distillation with no labels (Caron et al. 2021), suited to vision transformers.

    A student (backbone and lightly's ``DINOProjectionHead``) matches the
    centred, sharpened output distribution of a teacher (its moving
    average, momentum rising from ``momentum`` to 1) on other views of the
    same image; lightly's ``DINOLoss`` keeps the centre (averaged over the
    processes under distributed training) and warms the teacher
    temperature up over ``warmup_teacher_temp_epochs``. Two global views;
    the last layer is frozen for ``freeze_last_layer`` epochs.

    Parameters
    ----------
    backbone : `~astrofmtools.backbones.Backbone`
        The network to pretrain.
    pooling : str, optional
        The backbone's pooling (default: its own).
    output_dim, hidden_dim, bottleneck_dim : int, optional
        The DINO head's sizes.
    momentum : float, optional
        The starting momentum of the teacher.
    teacher_temp, warmup_teacher_temp, student_temp : float, optional
        Temperatures of lightly's ``DINOLoss``.
    warmup_teacher_temp_epochs, freeze_last_layer : int, optional
        Epochs of teacher-temperature warm-up, and of a fixed last layer.

    Examples
    --------
    >>> import torch
    >>> from astrofmtools.backbones import load_backbone
    >>> from astrofmtools.pretrain import DINO
    >>> method = DINO(load_backbone("efficientnet_lite0", device="cpu"), output_dim=64,
    ...               hidden_dim=64, bottleneck_dim=16)
    >>> float(method([torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)]).detach()) > 0
    True
    """

    name = "dino"
    defaults = {"output_dim": 2048, "hidden_dim": 1024, "bottleneck_dim": 256,
                "momentum": 0.996, "teacher_temp": 0.04, "warmup_teacher_temp": 0.04,
                "student_temp": 0.1, "warmup_teacher_temp_epochs": 0, "freeze_last_layer": 1}

    def __init__(self, backbone, pooling=None, **options):
        super().__init__(backbone, pooling, **options)
        from lightly.loss import DINOLoss
        from lightly.models.modules import DINOProjectionHead
        o = self.options
        # batch norm in the head where the backbone has it (CNNs), as lightly advises
        batch_norm = any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                         for m in backbone.modules())

        def head():
            with warnings.catch_warnings():  # lightly's head uses torch's older weight_norm
                warnings.simplefilter("ignore", FutureWarning)
                return DINOProjectionHead(self.feature_dim, o["hidden_dim"],
                                          o["bottleneck_dim"], o["output_dim"],
                                          batch_norm=batch_norm,
                                          freeze_last_layer=o["freeze_last_layer"])

        self.head = head()
        self.teacher_backbone = _momentum_copy(self.backbone)
        # a weight-normalised layer cannot be deep-copied: a second head with the same state
        self.teacher_head = head()
        self.teacher_head.load_state_dict(self.head.state_dict())
        for p in self.teacher_head.parameters():
            p.requires_grad = False
        self.criterion = DINOLoss(output_dim=o["output_dim"],
                                  warmup_teacher_temp=o["warmup_teacher_temp"],
                                  teacher_temp=o["teacher_temp"],
                                  warmup_teacher_temp_epochs=o["warmup_teacher_temp_epochs"],
                                  student_temp=o["student_temp"])

    def forward(self, views, epoch=0):
        with torch.no_grad():
            teacher = [self.teacher_head(self.teacher_backbone(v, pooling=self.pooling))
                       .float() for v in views[:2]]
        student = [self.head(self.features(v)).float() for v in views]
        return self.criterion(teacher, student, epoch=epoch)

    def momentum_update(self, step, total):
        from lightly.models.utils import update_momentum
        from lightly.utils.scheduler import cosine_schedule
        m = cosine_schedule(step, max(total, 1), self.options["momentum"], 1.0)
        update_momentum(self.backbone, self.teacher_backbone, m=m)
        update_momentum(self.head, self.teacher_head, m=m)

    def after_backward(self, epoch):
        self.head.cancel_last_layer_gradients(epoch)
