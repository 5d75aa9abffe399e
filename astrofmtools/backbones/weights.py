# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Find a backbone's weights offline-first: a local file, the weights packaged
with its loader, the Hugging Face cache, then the Hub only when it answers
within two seconds; otherwise an error that names the file to fetch.
"""

import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

from ..exceptions import InputError, MissingFileError
from .loaders import get_loader

__all__ = ["WeightsNotFoundError", "default_weights_dir", "hub_is_online", "weights_status"]

_TRUE = {"1", "true", "yes", "on"}


class WeightsNotFoundError(InputError):
    """No weights for a backbone on this machine, and the Hub cannot be reached."""


def default_weights_dir():
    """
    The folder where backbone weight files are looked for first.

    ``$ASTROFM_WEIGHTS`` when set, else ``~/.cache/astrofmtools/weights``.
    A file named as the registry entry's ``local_file`` there is used
    before any cache or download.

    Returns
    -------
    path : `~pathlib.Path`
        The folder (it may not exist yet).

    Examples
    --------
    >>> import os
    >>> from astrofmtools.backbones import default_weights_dir
    >>> os.environ["ASTROFM_WEIGHTS"] = "/data/weights"
    >>> str(default_weights_dir())
    '/data/weights'
    >>> del os.environ["ASTROFM_WEIGHTS"]
    >>> default_weights_dir().parts[-3:]
    ('.cache', 'astrofmtools', 'weights')
    """
    env = os.environ.get("ASTROFM_WEIGHTS", "").strip()
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/astrofmtools/weights").expanduser()


def _weights_dirs():
    dirs = [default_weights_dir(), Path("~/.cache/astrofmtools/weights").expanduser()]
    return list(dict.fromkeys(dirs))


def _hub_endpoint():
    endpoint = os.environ.get("HF_ENDPOINT", "").strip() or "https://huggingface.co"
    parsed = urlparse(endpoint)
    return parsed.hostname or "huggingface.co", parsed.port or 443


def _offline_variable():
    """The environment variable that declares this machine offline, or None."""
    for var in ("ASTROFM_OFFLINE", "HF_HUB_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return var
    return None


def _probe(host, port, timeout):
    """True if a TCP connection to host:port opens within ``timeout`` seconds (DNS included)."""
    result = []

    def connect():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    # a thread bounds the DNS lookup too, which create_connection's timeout does not
    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def hub_is_online(timeout=2.0):
    """
    Whether the Hugging Face Hub can be reached, decided in at most ``timeout`` seconds.

    ``ASTROFM_OFFLINE`` or ``HF_HUB_OFFLINE`` set to 1/true: offline at
    once. Otherwise a TCP connection to the Hub (``$HF_ENDPOINT``, default
    huggingface.co:443; through ``$HTTPS_PROXY`` when set) must open within
    ``timeout`` seconds.

    Parameters
    ----------
    timeout : float, optional
        Seconds to wait for the connection.

    Returns
    -------
    online : bool

    Examples
    --------
    >>> import os
    >>> from astrofmtools.backbones import hub_is_online
    >>> os.environ["ASTROFM_OFFLINE"] = "1"
    >>> hub_is_online()
    False
    >>> del os.environ["ASTROFM_OFFLINE"]
    """
    if _offline_variable():
        return False
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    if proxy:
        parsed = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        host, port = parsed.hostname, parsed.port or 3128
    else:
        host, port = _hub_endpoint()
    return _probe(host, port, timeout)


def _hf_cache_dir():
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return os.path.expanduser(os.environ[var])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    from huggingface_hub import constants
    return constants.HF_HUB_CACHE


def _from_hf_cache(spec):
    """A cached file of the spec's Hub repository, without touching the network."""
    if not spec.hf_hub_id:
        return None
    from huggingface_hub import try_to_load_from_cache
    for filename in spec.hf_filenames:
        path = try_to_load_from_cache(spec.hf_hub_id, filename, cache_dir=_hf_cache_dir())
        if isinstance(path, str) and os.path.isfile(path):
            return path
    return None


def _download(spec):
    """Download the first of the spec's files the Hub has (only called when online)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError
    last = None
    for filename in spec.hf_filenames:
        try:
            return hf_hub_download(spec.hf_hub_id, filename, cache_dir=_hf_cache_dir(),
                                   etag_timeout=5)
        except EntryNotFoundError as exc:
            last = exc
    raise WeightsNotFoundError(f"The Hub repository {spec.hf_hub_id!r} has none of "
                               f"{', '.join(spec.hf_filenames)}.") from last


def _not_found_message(spec, reason):
    local = default_weights_dir() / spec.local_file
    files = " (or ".join(spec.hf_filenames[:2]) + (")" if len(spec.hf_filenames) > 1 else "")
    return (f"No weights for backbone {spec.name!r} on this machine, and {reason}. "
            f"Fetch {files} of the Hugging Face repository {spec.hf_hub_id} "
            f"({spec.hf_url}) and save it as {local} (the folder is $ASTROFM_WEIGHTS when "
            f"set, else ~/.cache/astrofmtools/weights), or pass weights='path/to/file' "
            f"(or weights='random' for an untrained model).")


def _on_this_machine(spec):
    """
    The spec's default weights already on this machine, looked for in order: the local
    weights folders, the weights packaged with its loader, the Hugging Face cache.

    Returns ``(path, description, where, hint)``: ``where`` is 'local', 'embedded' or
    'cache' (path None and where 'missing' when none is here); ``hint`` the packaged
    loader's error, if any, to add to a not-found message.
    """
    for folder in _weights_dirs():
        path = folder / spec.local_file
        if path.is_file():
            return str(path), str(path), "local", ""
    hint = ""
    try:
        packaged = get_loader(spec.loader).default_weights(spec)
    except WeightsNotFoundError as exc:  # e.g. its package not installed: try the Hub's copy
        packaged, hint = None, f" {exc}"
    if packaged is not None:
        return packaged[0], packaged[1], "embedded", hint
    cached = _from_hf_cache(spec)
    if cached:
        return cached, f"{spec.hf_hub_id} (Hugging Face cache): {cached}", "cache", hint
    return None, None, "missing", hint


def weights_status(name):
    """
    Whether a backbone's default weights are on this machine, and where missing ones go.

    Looks where `~astrofmtools.backbones.load_backbone` looks, in the same
    order (local weights folder, weights packaged with the loader, Hugging
    Face cache), without touching the network.

    Parameters
    ----------
    name : str or `BackboneSpec`
        A registry name (or a backbone folder, see `get_backbone_spec`).

    Returns
    -------
    status : dict
        ``name``; ``status``: ``'embedded'`` (shipped with an installed
        package), ``'local'`` (in the local weights folder), ``'cache'``
        (Hugging Face cache) or ``'missing'``; ``path``: the file found, or
        for a missing one the path to save it at (None without a file
        name); ``download``: the address to fetch a missing file from
        (None when found or unknown); ``message``: one line for people.

    Examples
    --------
    >>> from astrofmtools.backbones import weights_status
    >>> weights_status("efficientnet_lite0")["status"]
    'embedded'
    >>> import os
    >>> saved = dict(os.environ)
    >>> os.environ.update(ASTROFM_WEIGHTS="/nowhere/weights", HF_HUB_CACHE="empty_cache")
    >>> status = weights_status("dinov2_vits14")
    >>> status["status"], status["path"]
    ('missing', '/nowhere/weights/vit_small_patch14_dinov2.lvd142m.safetensors')
    >>> status["download"]
    'https://huggingface.co/timm/vit_small_patch14_dinov2.lvd142m/resolve/main/model.safetensors'
    >>> os.environ.clear()
    >>> os.environ.update(saved)
    """
    from .registry import get_backbone_spec
    spec = get_backbone_spec(name)
    path, _, where, hint = _on_this_machine(spec)
    out = {"name": spec.name, "status": where, "path": path, "download": None}
    if where == "embedded":
        out["message"] = f"embedded: {path}"
    elif where in ("local", "cache"):
        out["message"] = f"found locally at {path}"
    else:
        local = default_weights_dir() / spec.local_file
        out["path"] = str(local)
        out["download"] = spec.hf_url
        if spec.hf_url:
            out["message"] = (f"missing: download {spec.hf_url} and save it as {local} "
                              "(or run once online)")
        else:
            out["message"] = (f"missing: no download known; put a weights file at {local} or "
                              "pass weights='path/to/file'" + hint)
    return out


def _resolve_weights(spec, weights):
    """(path or None, description) of the weights to load."""
    if isinstance(weights, str) and weights == "random":
        return None, "random"
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise MissingFileError(f"Weights file {str(path)!r} for backbone {spec.name!r} "
                                   "does not exist.")
        return str(path), str(path)
    path, description, where, hint = _on_this_machine(spec)
    if path is not None:
        return path, description
    if not spec.hf_hub_id:
        raise WeightsNotFoundError(
            f"Backbone {spec.name!r} has no default weights (no Hugging Face id) and no file "
            f"{spec.local_file!r} in {default_weights_dir()}; pass weights='path/to/file' or "
            "weights='random'.")
    variable = _offline_variable()
    if variable:
        raise WeightsNotFoundError(_not_found_message(spec, f"{variable} is set (offline)")
                                   + hint)
    if not hub_is_online():
        host, port = _hub_endpoint()
        raise WeightsNotFoundError(_not_found_message(
            spec, f"the Hugging Face Hub ({host}:{port}) cannot be reached") + hint)
    path = _download(spec)
    return path, f"{spec.hf_hub_id} (downloaded): {path}"
