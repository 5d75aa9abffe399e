# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The backbone, pooling and head of a classifier as one module, adapted by a strategy."""

import numpy as np
import torch
from torch import nn

from ..adapt import count_parameters, get_strategy

__all__ = ["ClassifierModel"]


class ClassifierModel(nn.Module):
    """
    Backbone, pooling and head as one module, fed with [0, 1] images.

    The input normalisation (the backbone's mean and std) is part of the
    forward pass, so augmentations work on [0, 1] images. The strategy
    (`~astrofmtools.adapt.Strategy`) decides what trains: `configure` sets
    ``requires_grad`` for a phase (head warm-up or main) and
    `set_train_mode` puts the fixed parts (and their batch-norm statistics)
    in evaluation mode after ``model.train()``.

    Parameters
    ----------
    backbone : `~astrofmtools.backbones.Backbone`
    head : `torch.nn.Module`
        Maps ``(N, D)`` features to ``(N, K)`` logits.
    pooling : str
        Passed to ``backbone(x, pooling=...)``.
    mean, std : sequence of float
        Per-channel normalisation.
    strategy : str or `~astrofmtools.adapt.Strategy`
        A registered strategy name or object (already prepared: LoRA
        adapters in place).
    train_norm_stats : bool, optional
        Let batch normalisation re-estimate its statistics while the
        backbone trains. False (the default, for pretrained backbones) keeps
        the pretrained running statistics (its scale and shift still
        train): re-estimated on batches of a few dozen astronomical
        cutouts, they moved a fine-tuned ImageNet EfficientNet-Lite0 to
        chance-level predictions within one epoch. True suits a backbone
        trained from random weights.

    Examples
    --------
    >>> import torch
    >>> from astrofmtools.adapt import get_strategy
    >>> from astrofmtools.backbones import BackboneSpec, load_backbone
    >>> from astrofmtools.classify import ClassifierModel, LinearHead
    >>> spec = BackboneSpec(name="vit_doc", timm_name="vit_tiny_patch16_224", patch_size=8,
    ...                     input_size=32, feature_dim=32, licence="none",
    ...                     timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 2,
    ...                                  "embed_dim": 32, "num_heads": 2})
    >>> model = ClassifierModel(load_backbone(spec, weights="random"), LinearHead(32, 2),
    ...                         "cls", spec.mean, spec.std, get_strategy("partial", n_blocks=1))
    >>> model.configure(warmup=False)
    >>> tuple(model(torch.rand(4, 3, 32, 32)).shape)
    (4, 2)
    """

    def __init__(self, backbone, head, pooling, mean, std, strategy, train_norm_stats=False):
        super().__init__()
        self.train_norm_stats = bool(train_norm_stats)
        self.backbone = backbone
        self.head = head
        self.pooling = pooling
        self.strategy = get_strategy(strategy)
        self.warmup = False
        n = int(getattr(backbone, "in_chans", len(mean)))
        mean, std = tuple(mean), tuple(std)
        if len(mean) != n:  # as Preprocess.normalize: the averages for other channel counts
            mean, std = (float(np.mean(mean)),) * n, (float(np.mean(std)),) * n
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, n, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, n, 1, 1),
                             persistent=False)

    def features(self, x):
        """Pooled backbone features of a batch of [0, 1] images."""
        return self.backbone((x - self.mean) / self.std, pooling=self.pooling)

    def forward(self, x):
        return self.head(self.features(x))

    def configure(self, warmup):
        """Set ``requires_grad``: the head always; the backbone's parts for the phase."""
        self.warmup = bool(warmup)
        self.strategy.configure(self.backbone, warmup=self.warmup)
        for p in self.head.parameters():
            p.requires_grad_(True)

    def set_train_mode(self):
        """After ``model.train()``: evaluation mode for what does not train."""
        self.strategy.set_train_mode(self.backbone, warmup=self.warmup,
                                     train_norm_stats=self.train_norm_stats)

    def n_trainable(self):
        """Parameters trained in the main phase (head included)."""
        return count_parameters(self.head) + self.strategy.n_trainable(self.backbone)
