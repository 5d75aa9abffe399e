# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Backbones saved as folders (self-supervised pretraining's output), found by path or name.

A backbone folder holds ``backbone.safetensors`` (the model's own state
dict) and ``backbone.json`` (its registry entry and how it was made).
`register_backbone_folder` adds it to the registry; `get_backbone_spec`
does so by itself for a folder path, or for a name that is a folder in the
local weights folder (``$ASTROFM_WEIGHTS/<name>/``), so that
``--model my_radio_byol`` and ``--model path/to/my_radio_byol/`` work on
every command.
"""

import json
from pathlib import Path

from ..exceptions import InputError, MissingFileError

__all__ = ["BACKBONE_FORMAT", "register_backbone_folder", "find_backbone_folder"]

#: The ``format`` of ``backbone.json`` and its newest version.
BACKBONE_FORMAT = ("astrofmtools.Backbone", 1)

CONFIG, WEIGHTS = "backbone.json", "backbone.safetensors"


def find_backbone_folder(name):
    """
    The backbone folder that ``name`` refers to, or None.

    Parameters
    ----------
    name : str or `~pathlib.Path`
        A folder path, or a name looked for as a folder of the local weights
        folders (``$ASTROFM_WEIGHTS``, ``~/.cache/astrofmtools/weights``).

    Returns
    -------
    folder : `~pathlib.Path` or None
    """
    from .weights import _weights_dirs
    candidates = [Path(name).expanduser()]
    if isinstance(name, str) and "/" not in name and "\\" not in name:
        candidates += [folder / name for folder in _weights_dirs()]
    for folder in candidates:
        if (folder / CONFIG).is_file():
            return folder
    return None


def register_backbone_folder(folder, name=None, overwrite=True):
    """
    Register the backbone saved in ``folder`` (by `~astrofmtools.pretrain.Pretrainer.save`).

    Parameters
    ----------
    folder : str or `~pathlib.Path`
        The folder with ``backbone.json`` and ``backbone.safetensors``.
    name : str, optional
        Register under this name instead of the saved one.
    overwrite : bool, optional
        Replace an entry of the same name.

    Returns
    -------
    spec : `BackboneSpec`
        The registered entry; its ``local_file`` is the folder's weights
        file, so `load_backbone` loads them with no further argument.

    Raises
    ------
    astrofmtools.MissingFileError
        If a file is missing.
    astrofmtools.InputError
        If ``backbone.json`` is not a backbone folder's.
    """
    from .registry import BackboneSpec, register_backbone
    folder = Path(folder).expanduser().resolve()
    config_path, weights = folder / CONFIG, folder / WEIGHTS
    for path in (config_path, weights):
        if not path.is_file():
            raise MissingFileError(f"{str(folder)!r} is not a backbone folder: {path.name} "
                                   "is missing.")
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{str(config_path)!r} is not valid JSON: {exc}") from None
    fmt, version = BACKBONE_FORMAT
    if not isinstance(config, dict) or config.get("format") != fmt:
        raise InputError(f"{str(config_path)!r} does not describe a backbone.")
    if config.get("format_version", 0) > version:
        raise InputError(f"{str(folder)!r} was saved by a newer astrofmtools (format "
                         f"{config['format_version']}); upgrade to load it.")
    entry = config.get("spec")
    if not isinstance(entry, dict):
        raise InputError(f"{str(config_path)!r} holds no valid backbone entry ('spec').")
    spec = BackboneSpec.from_saved({**entry, "local_file": str(weights),
                                    **({"name": name} if name else {})}, config_path)
    return register_backbone(spec, overwrite=overwrite)
