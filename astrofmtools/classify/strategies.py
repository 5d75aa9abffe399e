# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
How much of the backbone trains: the four adaptation strategies.

``frozen``
    The backbone never changes: features are extracted once and only the
    head trains (seconds on a CPU).
``partial``
    The last ``n_blocks`` of the backbone's layer groups
    (`~astrofmtools.backbones.Backbone.layer_groups`: ViT blocks, CNN
    stages) train together with the head; the rest, batch-norm statistics
    included, stay fixed.
``finetune``
    Every parameter trains, after a head warm-up with the backbone frozen,
    with layer-wise learning-rate decay (each group from the top down
    trains ``layer_decay`` times slower than the one above).
``lora``
    Low-rank adapters (`peft`) on the backbone's attention and MLP
    projections (ViTs) or convolutions of the last stages (CNNs)
    (`~astrofmtools.backbones.Backbone.lora_targets`) train with the head;
    the base weights and batch-norm statistics stay bit-identical.
"""

import numpy as np
import torch
from torch import nn

from ..exceptions import InputError

__all__ = ["STRATEGIES", "ClassifierModel", "apply_lora", "count_parameters"]

#: The adaptation strategies.
STRATEGIES = ("frozen", "partial", "finetune", "lora")

_NORM_TYPES = (nn.modules.batchnorm._BatchNorm,)


def count_parameters(module, trainable=None):
    """
    Number of parameters of a module.

    Parameters
    ----------
    module : `torch.nn.Module`
    trainable : bool or None, optional
        True: only those with ``requires_grad``; False: only those without;
        None: all.

    Returns
    -------
    n : int

    Examples
    --------
    >>> import torch
    >>> from astrofmtools.classify import count_parameters
    >>> layer = torch.nn.Linear(3, 2)
    >>> count_parameters(layer)
    8
    >>> _ = layer.bias.requires_grad_(False)
    >>> count_parameters(layer, trainable=True)
    6
    """
    return int(sum(p.numel() for p in module.parameters()
                   if trainable is None or p.requires_grad == trainable))


def apply_lora(backbone, r=8, alpha=16, dropout=0.0, target_modules=None):
    """
    Inject LoRA adapters into a backbone, in place, and freeze everything else.

    Parameters
    ----------
    backbone : `~astrofmtools.backbones.Backbone`
        The backbone; adapters go into ``backbone.model``.
    r : int, optional
        Rank of the adapters.
    alpha : float, optional
        LoRA scaling numerator (the update is scaled by ``alpha / r``).
    dropout : float, optional
        Dropout on the adapters' input.
    target_modules : list of str, optional
        Module-name patterns (default: ``backbone.lora_targets()``).

    Returns
    -------
    targets : list of str
        The patterns used.

    Examples
    --------
    >>> import torch
    >>> from astrofmtools.backbones import BackboneSpec, load_backbone
    >>> from astrofmtools.classify import apply_lora, count_parameters
    >>> spec = BackboneSpec(name="vit_doc", timm_name="vit_tiny_patch16_224", patch_size=8,
    ...                     input_size=32, feature_dim=32, licence="none",
    ...                     timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 2,
    ...                                  "embed_dim": 32, "num_heads": 2})
    >>> backbone = load_backbone(spec, weights="random")
    >>> targets = apply_lora(backbone, r=1)
    >>> count_parameters(backbone, trainable=True) < 0.05 * count_parameters(backbone)
    True
    """
    from peft import LoraConfig, inject_adapter_in_model

    targets = list(target_modules if target_modules is not None else backbone.lora_targets())
    if not targets:
        raise InputError(f"Backbone {backbone.spec.name!r} names no LoRA target modules.")
    config = LoraConfig(r=int(r), lora_alpha=alpha, lora_dropout=float(dropout),
                        target_modules=targets, bias="none")
    for p in backbone.parameters():
        p.requires_grad_(False)
    inject_adapter_in_model(config, backbone.model)
    n_lora = 0
    for name, p in backbone.named_parameters():
        is_lora = "lora_" in name
        p.requires_grad_(is_lora)
        n_lora += is_lora
    if n_lora == 0:
        raise InputError(f"No module of backbone {backbone.spec.name!r} matched the LoRA "
                         f"targets {targets}.")
    return targets


class ClassifierModel(nn.Module):
    """
    Backbone, pooling and head as one module, fed with [0, 1] images.

    The input normalisation (the backbone's mean and std) is part of the
    forward pass, so augmentations work on [0, 1] images. `configure` sets
    which parameters train for a strategy and a phase, and
    `set_train_mode` puts the frozen parts (and their batch-norm
    statistics) in evaluation mode after ``model.train()``.

    Parameters
    ----------
    backbone : `~astrofmtools.backbones.Backbone`
    head : `torch.nn.Module`
        Maps ``(N, D)`` features to ``(N, K)`` logits.
    pooling : str
        Passed to ``backbone(x, pooling=...)``.
    mean, std : sequence of float
        Per-channel normalisation.
    strategy : str
        One of `STRATEGIES`.
    n_blocks : int, optional
        For ``'partial'``: how many of the last layer groups train.
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
    >>> from astrofmtools.backbones import BackboneSpec, load_backbone
    >>> from astrofmtools.classify import ClassifierModel, LinearHead
    >>> spec = BackboneSpec(name="vit_doc", timm_name="vit_tiny_patch16_224", patch_size=8,
    ...                     input_size=32, feature_dim=32, licence="none",
    ...                     timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 2,
    ...                                  "embed_dim": 32, "num_heads": 2})
    >>> model = ClassifierModel(load_backbone(spec, weights="random"), LinearHead(32, 2),
    ...                         "cls", spec.mean, spec.std, "partial", n_blocks=1)
    >>> model.configure(warmup=False)
    >>> tuple(model(torch.rand(4, 3, 32, 32)).shape)
    (4, 2)
    """

    def __init__(self, backbone, head, pooling, mean, std, strategy, n_blocks=2,
                 train_norm_stats=False):
        super().__init__()
        self.train_norm_stats = bool(train_norm_stats)
        if strategy not in STRATEGIES:
            raise InputError(f"Unknown strategy {strategy!r}; choose one of "
                             f"{', '.join(STRATEGIES)}.")
        self.backbone = backbone
        self.head = head
        self.pooling = pooling
        self.strategy = strategy
        self.n_blocks = int(n_blocks)
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

    # ----------------------------------------------------------------- which parts train
    def trainable_groups(self):
        """
        The backbone's parameters that train in the main phase, as
        ``[(depth, [params])]`` with depth 0 for the top (last) group.
        """
        if self.strategy == "frozen":
            return []
        if self.strategy == "lora":
            params = [p for n, p in self.backbone.named_parameters() if "lora_" in n]
            return [(0, params)]
        groups = list(self.backbone.layer_groups())
        if self.strategy == "partial":
            if not 1 <= self.n_blocks <= len(groups):
                raise InputError(f"n_blocks must be between 1 and {len(groups)} (the layer "
                                 f"groups of {self.backbone.spec.name!r}); got {self.n_blocks}.")
        out, seen = [], set()
        for depth, group in enumerate(reversed(groups)):
            params = [p for p in group.parameters() if id(p) not in seen]
            seen.update(id(p) for p in params)
            out.append((depth, params))
        if self.strategy == "partial":
            out = out[:self.n_blocks]
        else:
            # parameters outside every group (e.g. a class token) train with the first group
            rest = [p for p in self.backbone.parameters() if id(p) not in seen]
            if rest:
                out[-1] = (out[-1][0], out[-1][1] + rest)
        return out

    def _frozen_modules(self):
        """Backbone modules that stay fixed in the main phase (for eval mode)."""
        if self.strategy in ("frozen",):
            return [self.backbone]
        if self.strategy == "partial":
            groups = list(self.backbone.layer_groups())
            return groups[:len(groups) - self.n_blocks]
        return []

    def configure(self, warmup):
        """Set ``requires_grad``: the head always; the backbone's parts for the phase."""
        self.warmup = bool(warmup)
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        for p in self.head.parameters():
            p.requires_grad_(True)
        if not self.warmup:
            for _, params in self.trainable_groups():
                for p in params:
                    p.requires_grad_(True)

    def set_train_mode(self):
        """After ``model.train()``: evaluation mode for what does not train."""
        if self.warmup or self.strategy == "frozen":
            self.backbone.eval()
            return
        for module in self._frozen_modules():
            module.eval()
        if self.strategy == "lora" or not self.train_norm_stats:
            for module in self.backbone.modules():
                if isinstance(module, _NORM_TYPES):
                    module.eval()

    def n_trainable(self):
        """Parameters trained in the main phase (head included)."""
        head = count_parameters(self.head)
        return head + int(sum(p.numel() for _, params in self.trainable_groups()
                              for p in params))


def _lora_state_dict(backbone):
    """The adapter tensors of a backbone with LoRA (keys of ``backbone.state_dict()``)."""
    return {k: v for k, v in backbone.state_dict().items() if "lora_" in k}


def _check_keys(expected, got, what):
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    if missing or unexpected:
        raise InputError(f"The saved {what} do not match the model: missing "
                         f"{missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected "
                         f"{unexpected[:5]}{'...' if len(unexpected) > 5 else ''}.")


def _as_numpy(x):
    return np.asarray(x.detach().cpu().numpy())
