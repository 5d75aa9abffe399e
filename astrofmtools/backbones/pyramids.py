# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Feature pyramids of registry backbones for detection: four maps at strides
4, 8, 16 and 32 input pixels, named ``'0'`` to ``'3'``. A backbone family
names its pyramid (`~astrofmtools.backbones.BackboneFamily.detection_pyramid`);
`~astrofmtools.detect` puts a Faster R-CNN on top.
"""

import math
from collections import OrderedDict

from torch import nn
import torch.nn.functional as F

from ..exceptions import InputError

__all__ = ["PYRAMID_STRIDES", "CNNFeaturePyramid", "SimpleFeaturePyramid"]

#: Strides (input pixels) of the four pyramid levels.
PYRAMID_STRIDES = (4, 8, 16, 32)


def _freeze(module, frozen):
    for p in module.parameters():
        p.requires_grad_(not frozen)


class CNNFeaturePyramid(nn.Module):
    """
    A registry CNN's stages at strides 4-32 under a feature pyramid network.

    The stages come from timm's ``forward_intermediates`` (the model's
    ``feature_info`` says which stage has which stride); the CNN's pooling
    and classifier are pruned. `torchvision.ops.FeaturePyramidNetwork`
    turns them into ``out_channels`` maps with top-down connections.

    Parameters
    ----------
    backbone : `~astrofmtools.backbones.Backbone`
        A CNN (ResNet, EfficientNet).
    out_channels : int, optional
        Channels of every pyramid level.

    Attributes
    ----------
    out_channels : int
        As given (torchvision's `~torchvision.models.detection.FasterRCNN`
        reads it).
    strides : tuple of int
        `PYRAMID_STRIDES`.

    Examples
    --------
    >>> import torch
    >>> from astrofmtools.backbones import load_backbone
    >>> from astrofmtools.detect import CNNFeaturePyramid
    >>> fpn = CNNFeaturePyramid(load_backbone("resnet18", weights="random"), out_channels=32)
    >>> {k: tuple(v.shape) for k, v in fpn(torch.zeros(1, 3, 64, 96)).items()}
    {'0': (1, 32, 16, 24), '1': (1, 32, 8, 12), '2': (1, 32, 4, 6), '3': (1, 32, 2, 3)}
    """

    def __init__(self, backbone, out_channels=256):
        super().__init__()
        from torchvision.ops import FeaturePyramidNetwork
        model = backbone.model
        info = getattr(model, "feature_info", None)
        if not info or not hasattr(model, "forward_intermediates"):
            raise InputError(f"Backbone {backbone.spec.name!r} ({backbone.spec.timm_name}) "
                             "does not expose timm's feature_info / forward_intermediates.")
        info = list(info)
        reductions = [int(f["reduction"]) for f in info]
        missing = [s for s in PYRAMID_STRIDES if s not in reductions]
        if missing:
            raise InputError(f"Backbone {backbone.spec.name!r} has no stage at stride(s) "
                             f"{missing}; its stages have strides {reductions}.")
        self.indices = [reductions.index(s) for s in PYRAMID_STRIDES]
        in_channels = [int(info[i]["num_chs"]) for i in self.indices]
        model.prune_intermediate_layers(self.indices, prune_head=True)
        self.body = backbone
        self.fpn = FeaturePyramidNetwork(in_channels, int(out_channels))
        self.out_channels = int(out_channels)
        self.strides = PYRAMID_STRIDES

    def forward(self, x):
        feats = self.body.model.forward_intermediates(x, indices=self.indices,
                                                      intermediates_only=True)
        return self.fpn(OrderedDict((str(i), f) for i, f in enumerate(feats)))


def _layer_norm_2d(channels):
    from timm.layers import LayerNorm2d
    return LayerNorm2d(channels)


class SimpleFeaturePyramid(nn.Module):
    """
    A ViT's last feature map turned into four levels, as ViTDet does.

    The last block's patch tokens, as an image at the token stride ``s``
    (the patch size, or the next power of two when the patch size is not
    one: the input is then resampled by ``patch / s``), become levels at
    strides 4, 8, 16 and 32 by transposed convolutions (up-sampling),
    identity or max pooling (down-sampling), each followed by a 1x1 and a
    3x3 convolution with layer norms (Li et al. 2022, "Exploring plain
    vision transformer backbones for object detection").

    Parameters
    ----------
    backbone : `~astrofmtools.backbones.Backbone`
        A ViT built with ``dynamic_img_size=True`` (any input size).
    out_channels : int, optional
        Channels of every level.

    Attributes
    ----------
    token_stride : int
        Input pixels per token after resampling (16 for DINOv2's patch 14).
    input_scale : float
        ``patch_size / token_stride``: the factor the input is resampled by.

    Examples
    --------
    >>> import torch
    >>> from astrofmtools.backbones import BackboneSpec, load_backbone
    >>> from astrofmtools.detect import SimpleFeaturePyramid
    >>> spec = BackboneSpec(name="vit14_doc", timm_name="vit_tiny_patch16_224", patch_size=14,
    ...                     input_size=56, feature_dim=32, licence="none",
    ...                     timm_kwargs={"img_size": 56, "patch_size": 14, "depth": 1,
    ...                                  "embed_dim": 32, "num_heads": 2,
    ...                                  "dynamic_img_size": True})
    >>> pyramid = SimpleFeaturePyramid(load_backbone(spec, weights="random"), out_channels=16)
    >>> pyramid.token_stride, pyramid.input_scale
    (16, 0.875)
    >>> {k: tuple(v.shape[-2:]) for k, v in pyramid(torch.zeros(1, 3, 64, 96)).items()}
    {'0': (16, 24), '1': (8, 12), '2': (4, 6), '3': (2, 3)}
    """

    def __init__(self, backbone, out_channels=256):
        super().__init__()
        model = backbone.model
        if not getattr(model, "dynamic_img_size", False):
            raise InputError(f"ViT backbone {backbone.spec.name!r} must be built with "
                             "timm_kwargs={'dynamic_img_size': True} to take detector inputs "
                             "of any size.")
        patch = model.patch_embed.patch_size
        patch = int(patch[0] if isinstance(patch, (tuple, list)) else patch)
        self.patch_size = patch
        self.token_stride = 2 ** int(math.ceil(math.log2(patch)))
        self.input_scale = patch / self.token_stride
        n_blocks = len(model.blocks)
        model.prune_intermediate_layers([n_blocks - 1], prune_norm=True, prune_head=True)
        self.body = backbone
        dim = int(model.embed_dim)
        out_channels = int(out_channels)
        self.levels = nn.ModuleList()
        for stride in PYRAMID_STRIDES:
            layers, channels = [], dim
            factor = self.token_stride / stride
            if factor > 1:  # transposed convolutions: x2 each, layer norm and GELU between
                n_up = int(round(math.log2(factor)))
                for k in range(n_up):
                    layers.append(nn.ConvTranspose2d(channels, channels // 2, 2, stride=2))
                    channels //= 2
                    if k < n_up - 1:
                        layers += [_layer_norm_2d(channels), nn.GELU()]
            elif factor < 1:
                step = int(round(1 / factor))
                layers.append(nn.MaxPool2d(step, stride=step))
            layers += [nn.Conv2d(channels, out_channels, 1, bias=False),
                       _layer_norm_2d(out_channels),
                       nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
                       _layer_norm_2d(out_channels)]
            self.levels.append(nn.Sequential(*layers))
        self.out_channels = out_channels
        self.strides = PYRAMID_STRIDES

    def tokens(self, x):
        """
        The last block's tokens as an image, ``(N, D, H / s, W / s)`` for a
        ``(N, C, H, W)`` input (H, W multiples of ``s = token_stride``).
        """
        h, w = x.shape[-2:]
        if h % self.token_stride or w % self.token_stride:
            raise InputError(f"Input sides must be multiples of {self.token_stride}; got "
                             f"{h} x {w}.")
        if self.input_scale != 1:
            size = (h // self.token_stride * self.patch_size,
                    w // self.token_stride * self.patch_size)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False,
                              antialias=True)
        return self.body.model.forward_intermediates(x, indices=1, intermediates_only=True,
                                                     output_fmt="NCHW")[-1]

    def forward(self, x):
        feat = self.tokens(x)
        return OrderedDict((str(i), level(feat)) for i, level in enumerate(self.levels))
