# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Saved model folders (config JSON + safetensors weights) and training checkpoints.

The one place where `~astrofmtools.classify.Classifier` and
`~astrofmtools.detect.Detector` write and read their folders, turn settings
into JSON and fingerprint the settings of a resumable training run.
"""

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
from astropy.table import Table

from ..exceptions import InputError, MissingFileError

__all__ = ["json_value", "settings_fingerprint", "write_saved_model", "read_saved_config",
           "read_saved_tensors", "save_checkpoint", "load_checkpoint"]

# torch and safetensors are optional dependencies (the ``ml`` extra)
__doctest_requires__ = {"write_saved_model": ["torch", "safetensors"],
                        "read_saved_tensors": ["torch", "safetensors"],
                        "save_checkpoint": ["torch"], "load_checkpoint": ["torch"]}


def json_value(value):
    """
    A value as strict JSON can hold it.

    numpy scalars become Python scalars, tuples lists, paths strings, NaN and
    infinities None (strict JSON has no NaN), dict keys strings, and a table
    a list of one dict per row; containers are converted all the way down.
    Anything else is returned unchanged.

    Parameters
    ----------
    value : object

    Returns
    -------
    value : object

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.utils import json_value
    >>> json_value({"n": np.int64(3), "sizes": (1.5, np.nan), 2: "two"})
    {'n': 3, 'sizes': [1.5, None], '2': 'two'}
    """
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (tuple, list)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Table):
        return [dict(zip(value.colnames, json_value(list(row)))) for row in value]
    return value


def settings_fingerprint(settings):
    """
    A short hash of the settings (and data hashes) that define a training run.

    A checkpoint records it so that a run with other settings is refused
    rather than silently resumed (`load_checkpoint`).

    Parameters
    ----------
    settings : dict
        Converted with `json_value`; what JSON cannot hold is written as its
        ``str``.

    Returns
    -------
    fingerprint : str
        16 hexadecimal digits (the start of the SHA-256 of the sorted JSON).

    Examples
    --------
    >>> from astrofmtools.utils import settings_fingerprint
    >>> settings_fingerprint({"lr": 1e-3, "epochs": 10}) == settings_fingerprint(
    ...     {"epochs": 10, "lr": 0.001})
    True
    """
    text = json.dumps(json_value(settings), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_saved_model(path, tensors, config, overwrite=False, config_name="config.json",
                      weights_name="model.safetensors"):
    """
    Write a model folder: the config as JSON and the tensors as safetensors.

    The folder is written through a temporary one renamed into place
    (`~astrofmtools.utils.atomic_folder`); `read_saved_config` reads it back.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The folder to create.
    tensors : dict of str to `torch.Tensor`
        The weights (copied to contiguous CPU tensors before writing).
    config : dict
        Everything else; converted with `json_value`, written as strict
        JSON (no NaN).
    overwrite : bool, optional
        Replace an existing folder.
    config_name, weights_name : str, optional
        The names of the two files.

    Examples
    --------
    >>> import torch
    >>> from astrofmtools.utils import read_saved_config, write_saved_model
    >>> write_saved_model("saved", {"w": torch.ones(2)}, {"format": "x", "format_version": 1})
    >>> read_saved_config("saved", "x", 1)
    {'format': 'x', 'format_version': 1}
    """
    from safetensors.torch import save_file
    from .output import atomic_folder
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    config = json_value(config)
    with atomic_folder(path, overwrite=overwrite) as tmp:
        save_file(tensors, str(tmp / weights_name), metadata={"format": "pt"})
        with open(tmp / config_name, "w") as f:
            json.dump(config, f, indent=2, allow_nan=False)


def read_saved_config(path, fmt, format_version, config_name="config.json",
                      weights_name="model.safetensors"):
    """
    The checked config of a model folder written by a ``save`` method.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The folder.
    fmt : str
        The ``format`` the config must name (``"astrofmtools.Detector"``).
    format_version : int
        The newest format version this astrofmtools reads.
    config_name, weights_name : str, optional
        The files the folder must hold.

    Returns
    -------
    config : dict

    Raises
    ------
    astrofmtools.MissingFileError
        If a file is missing.
    astrofmtools.InputError
        If the config is not JSON, names another format or a newer version.

    Examples
    --------
    >>> import json
    >>> from pathlib import Path
    >>> from astrofmtools.utils import read_saved_config
    >>> Path("saved").mkdir()
    >>> _ = Path("saved/model.safetensors").write_bytes(b"")
    >>> _ = Path("saved/config.json").write_text(json.dumps({"format": "x", "format_version": 1}))
    >>> read_saved_config("saved", "x", 1)["format_version"]
    1
    """
    path = Path(path)
    what = fmt.rsplit(".", 1)[-1]
    if not (path / config_name).is_file() or not (path / weights_name).is_file():
        raise MissingFileError(f"{str(path)!r} is not a saved {what} folder (it needs "
                               f"{config_name} and {weights_name}).")
    try:
        config = json.loads((path / config_name).read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{str(path / config_name)!r} is not valid JSON: {exc}") from None
    if not isinstance(config, dict) or config.get("format") != fmt:
        raise InputError(f"{str(path / config_name)!r} is not a saved {what}.")
    if config.get("format_version", 0) > format_version:
        raise InputError(f"{str(path)!r} was saved by a newer astrofmtools (format "
                         f"{config['format_version']}); upgrade to load it.")
    return config


def read_saved_tensors(path):
    """
    The tensors of a safetensors file of a saved folder, on the CPU.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The file (``weights.safetensors`` of a classifier folder, for example).

    Returns
    -------
    tensors : dict of str to `torch.Tensor`

    Raises
    ------
    astrofmtools.MissingFileError
        If the file does not exist.
    astrofmtools.InputError
        If it is damaged or truncated (not a complete safetensors file): the
        message names it.

    Examples
    --------
    >>> from pathlib import Path
    >>> import torch
    >>> from astrofmtools.utils import read_saved_tensors, write_saved_model
    >>> write_saved_model("saved", {"w": torch.ones(2)}, {"format": "x"})
    >>> read_saved_tensors("saved/model.safetensors")
    {'w': tensor([1., 1.])}
    >>> data = Path("saved/model.safetensors").read_bytes()
    >>> _ = Path("saved/model.safetensors").write_bytes(data[:len(data) // 2])
    >>> read_saved_tensors("saved/model.safetensors")
    Traceback (most recent call last):
    ...
    astrofmtools.exceptions.InputError: 'saved/model.safetensors' is damaged or truncated ...
    """
    from safetensors.torch import load_file
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{str(path)!r} does not exist.")
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # noqa: BLE001 - SafetensorError, or an OSError reading it
        size = path.stat().st_size
        raise InputError(f"{str(path)!r} is damaged or truncated ({size} bytes; not a "
                         f"complete safetensors file: {exc}); save the model again or "
                         "restore the file from a copy.") from None


def save_checkpoint(path, state):
    """
    Write a training checkpoint atomically (`torch.save` to a temporary name, then rename).

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The checkpoint file; its folder is created.
    state : dict
        Tensors, state dicts, numbers and strings only, so that
        `load_checkpoint` can read it with ``weights_only=True``; by
        convention with the run's ``"fingerprint"`` (`settings_fingerprint`).

    Examples
    --------
    >>> import torch
    >>> from astrofmtools.utils import load_checkpoint, save_checkpoint
    >>> save_checkpoint("run/checkpoint.pt", {"fingerprint": "abc", "epoch": 3})
    >>> load_checkpoint("run/checkpoint.pt", "abc")["epoch"]
    3
    """
    import torch
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, fingerprint, map_location="cpu"):
    """
    Read a checkpoint written by `save_checkpoint`, refusing one of another run.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The checkpoint file.
    fingerprint : str
        The `settings_fingerprint` of the run resuming from it.
    map_location : str or `torch.device`, optional
        Where to put the tensors.

    Returns
    -------
    state : dict

    Raises
    ------
    astrofmtools.InputError
        If the checkpoint's fingerprint is not ``fingerprint``, or the file
        is damaged or truncated.

    Examples
    --------
    >>> from astrofmtools.utils import load_checkpoint, save_checkpoint
    >>> save_checkpoint("run/checkpoint.pt", {"fingerprint": "abc", "epoch": 3})
    >>> load_checkpoint("run/checkpoint.pt", "def")
    Traceback (most recent call last):
    ...
    astrofmtools.exceptions.InputError: Checkpoint 'run/checkpoint.pt' was written by a run ...
    """
    import torch
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise MissingFileError(f"Checkpoint {str(path)!r} does not exist.") from None
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, UnpicklingError, ...
        raise InputError(f"Checkpoint {str(path)!r} is damaged or truncated (torch.load: "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                         "); delete it to start the run again.") from None
    if not isinstance(state, dict) or state.get("fingerprint") != fingerprint:
        raise InputError(f"Checkpoint {str(path)!r} was written by a run with other settings "
                         "or data; delete it or choose another checkpoint_dir.")
    return state
