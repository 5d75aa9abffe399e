# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Read the config of a saved model folder (config JSON + safetensors weights)."""

import json
from pathlib import Path

from ..exceptions import InputError, MissingFileError

__all__ = ["read_saved_config"]


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
