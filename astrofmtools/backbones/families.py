# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Architecture families of backbones (``BackboneSpec.kind``): what a model of
each family must provide, and everything the rest of the package does
differently for it (pooling, layer groups, LoRA targets, the detection
feature pyramid, attention maps).

Not to be confused with ``BackboneSpec.family`` (`FAMILIES`), which says
how the weights were pretrained.
"""

import dataclasses
import math

import torch
from torch import nn

from ..exceptions import InputError
from ..utils.registry import Registry
from .loaders import _Descriptions, _register

__all__ = ["BackboneFamily", "ViTFamily", "CNNFamily", "register_family", "get_family",
           "KINDS", "POOLINGS"]

#: Pooling of the backbone's output tokens into one vector per image.
POOLINGS = {
    "cls": "the model's own pooled embedding: the CLS token for ViTs (SigLIP: its "
           "attention-pool head), global average pooling for CNNs",
    "mean": "the mean of the patch tokens (ViTs; CNNs: global average pooling)",
    "cls+mean": "both concatenated (ViTs only; twice the feature length)",
}


def _group_module(model, names):
    """A module holding the parameters ``names`` of ``model``: whole sub-modules where possible."""
    names = set(names)
    holder = nn.Module()
    modules = dict(model.named_modules())
    owned = {}
    covered = set()
    for name in sorted(names):
        if name in covered:
            continue
        parts = name.split(".")
        for depth in range(1, len(parts)):
            prefix = ".".join(parts[:depth])
            if prefix not in owned:
                owned[prefix] = {f"{prefix}.{n}" for n, _ in modules[prefix].named_parameters()}
            if owned[prefix] <= names:
                holder.add_module(prefix.replace(".", "_"), modules[prefix])
                covered |= owned[prefix]
                break
        else:
            holder.register_parameter(name.replace(".", "_"), model.get_parameter(name))
            covered.add(name)
    return holder


class BackboneFamily:
    """
    An architecture family: the protocol its models meet, and how the package uses them.

    One instance per family is registered (`register_family`) under its
    ``kind``; a `BackboneSpec` names it in ``spec.kind`` and every part of
    the package that treats families differently asks it
    (`get_family`): `Backbone` (pooling, layer groups, LoRA targets),
    `extract_features` (memory layout), `~astrofmtools.detect.Detector`
    (feature pyramid, target box size, learning rate, input sizes) and
    `~astrofmtools.embed.attention_maps`. A new family is a subclass and
    one `register_family` line, never a new ``if`` on the kind.

    The base class describes a timm model with a pooled head and
    hierarchical stages (a CNN); override what differs.

    **The model protocol.** The loader (`BackboneLoader.create_model`)
    builds a `torch.nn.Module` with ``num_classes=0`` that provides:

    - ``forward_features(x)`` on ``(N, in_chans, H, W)`` normalised images
      and ``forward_head(features, pre_logits=True)`` giving ``(N, D)``;
    - ``num_features`` (or ``head_hidden_size`` when the head changes the
      width): D;
    - ``group_matcher(coarse=True)`` (timm's) for ``layer_groups`` (without
      it the whole model is one group);
    - ``pretrained_cfg`` with ``first_conv`` and ``classifier`` (loading:
      stem adaptation to ``in_chans``, classifier keys dropped);
    - for the detection pyramid of this base (`~astrofmtools.backbones.CNNFeaturePyramid`):
      ``feature_info`` (a stage at each of the strides 4, 8, 16, 32),
      ``forward_intermediates(x, indices=..., intermediates_only=True)``
      and ``prune_intermediate_layers``.

    `ViTFamily` needs, instead or in addition: ``forward_features``
    returning ``(N, T, D)`` tokens with ``num_prefix_tokens`` prefix
    (CLS, register) tokens first; ``blocks`` with their ``attn`` a timm
    ``Attention`` (``fused_attn``, ``attn_drop``; named linear layers
    ``qkv``, ``proj``, ``mlp.fc1``, ``mlp.fc2``); ``cls_token``;
    ``patch_embed`` (``patch_size``, ``grid_size``,
    ``dynamic_feat_size``); ``embed_dim``; ``dynamic_img_size``; and
    ``forward_intermediates(..., output_fmt="NCHW")``
    (`~astrofmtools.backbones.SimpleFeaturePyramid`).

    Attributes
    ----------
    kind : str
        The registry key (``BackboneSpec.kind``).
    description : str
        One line (`KINDS`).
    title : str
        The family in a sentence (``'a CNN'``), for error messages.
    poolings : tuple of str
        The poolings its backbones accept (keys of `POOLINGS`, or new
        ones that ``pool`` knows).
    pooling_hint : str
        Added to the error for a pooling it refuses.
    channels_last : bool
        Run feature extraction in channels-last memory layout (faster for
        convolutions).
    attention_maps : bool
        Whether `~astrofmtools.embed.attention_maps` can read its attention.
    detection_lr_factor : float
        Default ``backbone_lr_factor`` of a `~astrofmtools.detect.Detector`
        fine-tuning pretrained weights.

    Examples
    --------
    >>> from astrofmtools.backbones import get_family, get_backbone_spec
    >>> cnn = get_family(get_backbone_spec("resnet18"))
    >>> cnn.kind, cnn.poolings, cnn.channels_last, cnn.detection_lr_factor
    ('cnn', ('cls', 'mean'), True, 0.1)
    >>> get_family("vit").poolings
    ('cls', 'mean', 'cls+mean')
    """

    kind = None
    description = ""
    title = "a backbone"
    poolings = ("cls", "mean")
    pooling_hint = ""
    channels_last = False
    attention_maps = False
    detection_lr_factor = 0.1

    def __repr__(self):
        return f"<{type(self).__name__} kind={self.kind!r}: {self.description}>"

    # ------------------------------------------------------------- features
    def check_pooling(self, pooling, name=None):
        """
        ``pooling`` if this family's backbones accept it, else a clear `~astrofmtools.InputError`.

        Parameters
        ----------
        pooling : str
        name : str, optional
            The backbone's name, for the message.

        Returns
        -------
        pooling : str
        """
        if isinstance(pooling, str) and pooling in self.poolings:
            return pooling
        if isinstance(pooling, str) and pooling in POOLINGS:
            who = f"Backbone {name!r}" if name else "This backbone"
            raise InputError(f"pooling={pooling!r} is not available: {who} is {self.title} "
                             f"(kind {self.kind!r}), which pools with "
                             f"{', '.join(map(repr, self.poolings))}. {self.pooling_hint}".strip())
        raise InputError(f"Unknown pooling {pooling!r}; use one of "
                         f"{', '.join(map(repr, self.poolings))}.")

    def feature_dim(self, model, pooling):
        """Length of the feature vectors of ``model`` for ``pooling`` (checked before)."""
        return int(getattr(model, "head_hidden_size", None) or model.num_features)

    def pool(self, model, x, pooling):
        """
        Features ``(N, D)`` of normalised images ``x`` for ``pooling`` (checked before).

        Base: the model's own pooled embedding
        (``forward_head(forward_features(x), pre_logits=True)``) for every pooling.
        """
        return model.forward_head(model.forward_features(x), pre_logits=True)

    def layer_groups(self, model):
        """
        The model's parameters in groups, from the stem to the last block or stage.

        timm's coarse groups (`timm.models.group_parameters` with the
        model's ``group_matcher``), each a module holding the model's own
        sub-modules and parameters (not copies); every parameter in
        exactly one group. Without a ``group_matcher``: ``[model]``.

        Returns
        -------
        groups : list of `torch.nn.Module`
        """
        matcher = getattr(model, "group_matcher", None)
        if matcher is None:
            return [model]
        from timm.models import group_parameters
        groups = group_parameters(model, matcher(coarse=True))
        return [_group_module(model, names) for _, names in sorted(groups.items())]

    def lora_targets(self, model):
        """
        Names (relative to ``model``) of the modules LoRA adapts.

        Base: the linear layers and the convolutions of the last two layer
        groups (stages), except grouped (depthwise) convolutions, which peft
        cannot merge.

        Returns
        -------
        names : list of str
        """
        groups = self.layer_groups(model)
        wanted = set()
        for group in groups[-2:] if len(groups) > 2 else groups:
            wanted.update(id(m) for m in group.modules())
        return [name for name, m in model.named_modules() if id(m) in wanted and (
            isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.groups == 1))]

    # ------------------------------------------------------------- detection
    def detection_spec(self, spec):
        """The spec a `~astrofmtools.detect.Detector` builds (base: ``spec`` unchanged)."""
        return spec

    def detection_pyramid(self, backbone, out_channels):
        """
        The feature pyramid (strides 4-32) a Faster R-CNN runs on.

        Base: `~astrofmtools.backbones.CNNFeaturePyramid` over the stages of
        ``feature_info``.
        """
        from .pyramids import CNNFeaturePyramid
        return CNNFeaturePyramid(backbone, out_channels)

    def detection_target_size(self, spec):
        """
        Median box side (model pixels) that a detector's ``zoom='auto'`` aims for.

        Base: 16, four times the stride (4) of the finest pyramid level
        (`~astrofmtools.backbones.PYRAMID_STRIDES`).
        """
        from .pyramids import PYRAMID_STRIDES
        return 4.0 * PYRAMID_STRIDES[0]

    # ------------------------------------------------------------- attention
    def check_attention(self, name):
        """A clear `~astrofmtools.InputError` unless ``attention_maps`` (attention can be read)."""
        if not self.attention_maps:
            raise InputError(f"Attention maps need a vision transformer; backbone {name!r} is "
                             f"{self.title} (kind {self.kind!r}). Use a ViT such as "
                             "'dinov2_vits14'.")


class CNNFamily(BackboneFamily):
    """
    Convolutional networks (ResNets, EfficientNets): the `BackboneFamily` defaults.

    Examples
    --------
    >>> from astrofmtools.backbones import get_family
    >>> cnn = get_family("cnn")
    >>> cnn.poolings, cnn.detection_lr_factor
    (('cls', 'mean'), 0.1)
    """

    kind = "cnn"
    description = "convolutional network (ResNet, EfficientNet): stages at strides 2-32"
    title = "a CNN"
    pooling_hint = ("'cls+mean' needs a ViT; a CNN has no CLS token ('cls' and 'mean' both "
                    "give its global average pooling).")
    # CNNs run 1.5-2 times faster in channels-last layout (PyTorch CPU and GPU)
    channels_last = True


class ViTFamily(BackboneFamily):
    """
    Vision transformers (timm ``VisionTransformer``): tokens, blocks, attention.

    Examples
    --------
    >>> from astrofmtools.backbones import get_family
    >>> vit = get_family("vit")
    >>> "cls+mean" in vit.poolings, vit.attention_maps, vit.detection_lr_factor
    (True, True, 0.02)
    """

    kind = "vit"
    description = "vision transformer: patch tokens, CLS and register tokens, blocks"
    title = "a vision transformer"
    poolings = ("cls", "mean", "cls+mean")
    attention_maps = True
    detection_lr_factor = 0.02

    def feature_dim(self, model, pooling):
        dim = super().feature_dim(model, pooling)
        return 2 * dim if pooling == "cls+mean" else dim

    def pool(self, model, x, pooling):
        tokens = model.forward_features(x)
        if pooling == "cls":
            return model.forward_head(tokens, pre_logits=True)
        patches = tokens[:, getattr(model, "num_prefix_tokens", 0):].mean(dim=1)
        if pooling == "mean":
            return patches
        return torch.cat([model.forward_head(tokens, pre_logits=True), patches], dim=1)

    def lora_targets(self, model):
        """The attention (``qkv``, ``proj``) and MLP (``fc1``, ``fc2``) linears of every block."""
        return [name for name, m in model.named_modules()
                if isinstance(m, nn.Linear) and name.startswith("blocks.")
                and name.rsplit(".", 1)[-1] in ("qkv", "proj", "fc1", "fc2")]

    def detection_spec(self, spec):
        """The spec with ``dynamic_img_size=True``: detector inputs have any size."""
        return dataclasses.replace(spec, timm_kwargs={**spec.timm_kwargs,
                                                      "dynamic_img_size": True})

    def detection_pyramid(self, backbone, out_channels):
        """`~astrofmtools.backbones.SimpleFeaturePyramid` (ViTDet) from the last block's tokens."""
        from .pyramids import SimpleFeaturePyramid
        return SimpleFeaturePyramid(backbone, out_channels)

    def detection_target_size(self, spec):
        """One token: the patch size, or the next power of two (16 for DINOv2's 14)."""
        return float(2 ** math.ceil(math.log2(spec.patch_size)))


_KIND_REGISTRY = Registry("backbone kind")


def register_family(family=None, *, overwrite=False):
    """
    Add an architecture family to the registry (a function, or a class decorator).

    Parameters
    ----------
    family : `BackboneFamily` subclass or instance, optional
        Registered under its ``kind``; a class is instantiated without
        arguments. Omitted: a decorator is returned.
    overwrite : bool, optional
        Replace a family of the same kind.

    Returns
    -------
    family
        What was given (the decorator leaves the class as it is), or the decorator.

    Raises
    ------
    astrofmtools.InputError
        Not a `BackboneFamily`, no kind, or a kind taken (without ``overwrite``).

    Examples
    --------
    A family of CNNs without a detection pyramid:

    >>> from astrofmtools.backbones import CNNFamily, KINDS, register_family
    >>> @register_family(overwrite=True)
    ... class PlainCNN(CNNFamily):
    ...     kind = "plain_cnn"
    ...     description = "a CNN without intermediate stages"
    ...
    ...     def detection_pyramid(self, backbone, out_channels):
    ...         raise NotImplementedError("no pyramid")
    >>> KINDS["plain_cnn"]
    'a CNN without intermediate stages'
    """
    return _register(_KIND_REGISTRY, "family", BackboneFamily, "kind", family, overwrite)


def get_family(kind):
    """
    The registered family of a kind, spec or backbone.

    Parameters
    ----------
    kind : str, `BackboneSpec` or `Backbone`
        A ``BackboneSpec.kind`` value, or an object with ``kind`` or ``spec.kind``.

    Returns
    -------
    family : `BackboneFamily`

    Raises
    ------
    astrofmtools.InputError
        For an unknown kind; the message lists the known ones.

    Examples
    --------
    >>> from astrofmtools.backbones import get_family
    >>> get_family("vit").detection_lr_factor
    0.02
    >>> get_family("rnn")
    Traceback (most recent call last):
    ...
    astrofmtools.exceptions.InputError: Unknown backbone kind 'rnn'; choose one of ...
    """
    if not isinstance(kind, str):
        spec = getattr(kind, "spec", kind)
        kind = getattr(spec, "kind", kind)
    return _KIND_REGISTRY.lookup(kind)


#: The architecture families: kind -> description (a live view of the family registry, see
#: `register_family`).
KINDS = _Descriptions(_KIND_REGISTRY)

register_family(ViTFamily)
register_family(CNNFamily)
