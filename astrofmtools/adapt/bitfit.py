# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
BitFit: only the biases and the normalisation layers' scales and shifts train.

Ben Zaken, Goldberg & Ravfogel (2022), "BitFit: Simple Parameter-efficient
Fine-tuning for Transformer-based Masked Language-models". About 0.1 % of a
ViT's parameters train; a saved model stores only those tensors. This file
is the worked example of `docs/extending.rst`: one class and one
`register_strategy` line, and the strategy works in
`~astrofmtools.classify.Classifier`, `~astrofmtools.detect.Detector` and
``astrofm train --strategy bitfit``.
"""

from torch import nn

from .strategies import Strategy, register_strategy

__all__ = ["BitFit"]

_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)


@register_strategy
class BitFit(Strategy):
    """
    Train the biases and the normalisation layers' affine parameters only.

    Examples
    --------
    >>> from astrofmtools.adapt import get_strategy
    >>> from astrofmtools.backbones import BackboneSpec, load_backbone
    >>> spec = BackboneSpec(name="vit_doc", timm_name="vit_tiny_patch16_224", patch_size=8,
    ...                     input_size=32, feature_dim=32, licence="none",
    ...                     timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 2,
    ...                                  "embed_dim": 32, "num_heads": 2})
    >>> backbone = load_backbone(spec, weights="random")
    >>> bitfit = get_strategy("bitfit")
    >>> bitfit.n_trainable(backbone) < 0.1 * sum(p.numel() for p in backbone.parameters())
    True
    """

    name = "bitfit"
    defaults = {"epochs": 30, "lr": 1e-3, "batch_size": 32, "patience": 8,
                "head_warmup_epochs": 1}

    def _names(self, backbone):
        norms = {name for name, m in backbone.named_modules() if isinstance(m, _NORMS)}
        return [name for name, _ in backbone.named_parameters()
                if name.endswith("bias") or name.rsplit(".", 1)[0] in norms]

    def trainable_groups(self, backbone):
        params = dict(backbone.named_parameters())
        return [(0, [params[n] for n in self._names(backbone)])]

    def learns_norm_statistics(self, train_norm_stats):
        return False

    def saved_state(self, backbone):
        state = backbone.state_dict()
        return {name: state[name] for name in self._names(backbone)}
