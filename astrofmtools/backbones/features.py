# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Batched feature extraction with an on-disk cache, and feature files."""

import contextlib
import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import QTable, Table

from ..cutouts import parse_cutouts
from ..exceptions import InputError, MissingFileError
from ..utils import atomic_output, progress, provenance
from .preprocess import Preprocess

__all__ = ["extract_features", "feature_cache_dir", "write_features", "read_features"]

_CACHE_FORMAT = 1


def feature_cache_dir():
    """
    The folder of the feature cache.

    ``$ASTROFM_CACHE/features`` when ``ASTROFM_CACHE`` is set, else
    ``~/.cache/astrofmtools/features``. Delete it to clear the cache.

    Returns
    -------
    path : `~pathlib.Path`

    Examples
    --------
    >>> import os
    >>> from astrofmtools.backbones import feature_cache_dir
    >>> os.environ["ASTROFM_CACHE"] = "/scratch/astrofm"
    >>> str(feature_cache_dir())
    '/scratch/astrofm/features'
    >>> del os.environ["ASTROFM_CACHE"]
    """
    root = os.environ.get("ASTROFM_CACHE", "").strip()
    root = Path(root).expanduser() if root else Path("~/.cache/astrofmtools").expanduser()
    return root / "features"


def _weights_fingerprint(module):
    """sha256 of every parameter and buffer: the weights as they are now (trained or not)."""
    import torch
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        if t.numel():
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _precision(device):
    """The arithmetic of a forward pass: float32 on the CPU, autocast to 16 bits on CUDA."""
    import torch
    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _cache_key(data, backbone, preprocess, pooling, tta, precision):
    digest = hashlib.sha256()
    digest.update(f"{data.dtype}:{data.shape}".encode())
    digest.update(np.ascontiguousarray(data).tobytes())
    settings = {
        "format": _CACHE_FORMAT,
        "backbone": backbone.spec.to_dict(),
        "in_chans": backbone.in_chans,
        "weights": _weights_fingerprint(backbone),
        "preprocess": preprocess.to_dict(),
        "pooling": pooling,
        "tta": bool(tta),
        # features under CUDA autocast differ from float32 ones by ~1e-3 (cosine)
        "precision": str(precision).replace("torch.", ""),
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest(), settings


def _dihedral(x):
    """The 8 rotations by 90 degrees and flips of a (N, C, S, S) batch."""
    import torch
    for flip in (False, True):
        y = torch.flip(x, dims=(3,)) if flip else x
        for k in range(4):
            yield torch.rot90(y, k, dims=(2, 3))


def _device_batches(data, starts, batch_size, device):
    """
    ``(start, tensor)``: each batch of raw cutouts on the device, the next one read by a thread.

    A background thread copies batch ``i + 1`` (from memory or a memory-mapped
    file) into a buffer while batch ``i`` is preprocessed and run. On CUDA the two
    buffers are page-locked, so that the copy to the device is asynchronous
    (``non_blocking``); a buffer is refilled once its copy has finished (a CUDA
    event), not before. On the CPU the tensor is the buffer itself, valid until
    the next batch is asked for.
    """
    import torch
    from concurrent.futures import ThreadPoolExecutor
    starts = list(starts)
    if not starts:
        return
    cuda = device.type == "cuda"
    shape = (min(batch_size, len(data)),) + data.shape[1:]
    buffers = [torch.empty(shape, dtype=torch.float32, pin_memory=cuda) for _ in range(2)]
    copied = [None, None]  # per buffer: an event after its last copy to the device

    def fill(i):
        buffer, start = buffers[i % 2], starts[i]
        if copied[i % 2] is not None:
            copied[i % 2].synchronize()
        n = min(batch_size, len(data) - start)
        with torch.inference_mode():  # the buffers are inference tensors
            buffer[:n].copy_(torch.from_numpy(np.ascontiguousarray(data[start:start + n])))
        return buffer[:n]

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="astrofm-batches") as pool:
        future = pool.submit(fill, 0)
        for i, start in enumerate(starts):
            batch = future.result()
            if i + 1 < len(starts):
                future = pool.submit(fill, i + 1)  # the other buffer: batch i - 1's
            batch = batch.to(device, non_blocking=cuda)
            if cuda:
                copied[i % 2] = torch.cuda.Event()
                copied[i % 2].record()
            yield start, batch


def extract_features(backbone, cutouts, pooling="cls", batch_size=64, device=None,
                     preprocess=None, cache=True, cache_dir=None, tta=False, source_size=None,
                     scheduler=None, workers=None):
    """
    Feature vectors of cutouts from a pretrained backbone.

    Cutouts are preprocessed batch by batch (`Preprocess`), run through the
    backbone under `torch.inference_mode` (with automatic mixed precision
    on a GPU) and pooled. When the settings allow it
    (`Preprocess.tensor_supported`), the preprocessing runs in torch on the
    device (`Preprocess.to_tensor`, the same results): on a GPU the raw
    batches go through page-locked memory, the next one read by a
    background thread while the device works. The result is cached on
    disk, keyed by the
    sha256 of the input pixels, the backbone (entry, input channels and a
    fingerprint of its current weights), the preprocessing, the pooling
    and ``tta``: running the same call again reads the file instead.

    Parameters
    ----------
    backbone : `Backbone` or str
        A loaded backbone, or a registry name (loaded with default weights).
    cutouts : array, `~astrofmtools.cutouts.CutoutStack` or list of stacks
        Raw pixels, (N, H, W) or (N, C, H, W), NaN allowed.
    pooling : str, optional
        ``'cls'``, ``'mean'`` or ``'cls+mean'`` (see `POOLINGS`); None: the
        backbone's default.
    batch_size : int, optional
        Cutouts per forward pass.
    device : str, optional
        Default: "cuda" when available, else "cpu". The backbone is moved there.
    preprocess : `Preprocess` or dict, optional
        Default: ``backbone.default_preprocess()``. With ``zoom='auto'``
        the zoom is resolved once, on all the cutouts.
    cache : bool, optional
        Read and write the on-disk cache.
    cache_dir : str or `~pathlib.Path`, optional
        Cache folder (default `feature_cache_dir`).
    tta : bool, optional
        Average the features over the 8 rotations by 90 degrees and flips
        (sky images have no preferred orientation).
    source_size : float or array, optional
        Source sizes for ``zoom='auto'`` (see `Preprocess.resolve_zoom`).
    scheduler : str or executor, optional
        Run chunks of cutouts (whole batches) as independent tasks (see
        `~astrofmtools.io.map_tasks`): ``"threads"``, ``"dask"`` (a local
        cluster of ``workers`` processes), a Dask scheduler's address or
        client. Each task gets the backbone with it and runs it on
        ``device`` as the worker sees it (give each worker one GPU, see
        :doc:`/cluster`). The features are the same as serially. By default
        every batch runs here.
    workers : int, optional
        The number of threads or local Dask workers.

    Returns
    -------
    features : `~numpy.ndarray`
        float32 (N, D), D = ``backbone.feature_dim_for(pooling)``.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.backbones import extract_features, load_backbone
    >>> backbone = load_backbone("efficientnet_lite0", device="cpu")
    >>> cutouts = np.random.default_rng(0).normal(size=(3, 32, 32))
    >>> pre = backbone.default_preprocess(input_size=64)
    >>> features = extract_features(backbone, cutouts, preprocess=pre, cache_dir="cache")
    >>> features.shape, features.dtype
    ((3, 1280), dtype('float32'))
    >>> again = extract_features(backbone, cutouts, preprocess=pre, cache_dir="cache")
    >>> bool(np.array_equal(features, again))                  # read from the cache
    True
    """
    from .load import Backbone, default_device, load_backbone
    device = default_device(device)
    if not isinstance(backbone, Backbone):
        backbone = load_backbone(backbone, device=device)
    family = backbone.family
    pooling = backbone.pooling if pooling is None else family.check_pooling(pooling,
                                                                            backbone.spec.name)
    try:
        batch_size = int(batch_size)
    except (TypeError, ValueError):
        raise InputError(f"batch_size must be a positive integer, not {batch_size!r}.") from None
    if batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, not {batch_size!r}.")
    if preprocess is None:
        preprocess = backbone.default_preprocess()
    elif isinstance(preprocess, dict):
        preprocess = Preprocess.from_dict(preprocess)
    elif not isinstance(preprocess, Preprocess):
        raise InputError(f"preprocess must be a Preprocess or a dict, not "
                         f"{type(preprocess).__name__}.")
    data, _ = parse_cutouts(cutouts, index_table=False)
    zoom = preprocess.resolve_zoom(cutouts, source_size)
    preprocess = preprocess.replace(zoom=zoom)
    _, n_channels = preprocess._plan(data)
    if n_channels != backbone.in_chans:
        raise InputError(f"The preprocessing gives {n_channels} channels but backbone "
                         f"{backbone.spec.name!r} takes {backbone.in_chans}; load it with "
                         f"in_chans={n_channels} or change channels=.")

    path = None
    if cache:
        key, settings = _cache_key(data, backbone, preprocess, pooling, tta,
                                   _precision(device))
        folder = Path(cache_dir).expanduser() if cache_dir is not None else feature_cache_dir()
        path = folder / key[:2] / f"{key}.npy"
        if path.is_file():
            try:
                features = np.load(path, allow_pickle=False)
            except (OSError, ValueError):
                features = None  # a damaged file is recomputed and replaced
            if features is not None and features.shape[0] == len(data):
                return features

    if scheduler is not None:
        features = _features_in_tasks(backbone, data, scheduler, workers, pooling=pooling,
                                      batch_size=batch_size, device=device,
                                      preprocess=preprocess, zoom=zoom, tta=tta)
    else:
        features = _features_here(backbone, data, pooling, batch_size, device, preprocess,
                                  zoom, tta)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path, overwrite=True) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, features, allow_pickle=False)
        with atomic_output(path.with_suffix(".json"), overwrite=True) as tmp:
            Path(tmp).write_text(json.dumps({**settings, "n": len(data)}, indent=1))
    return features


class _FeatureChunk:
    """
    The features of one chunk of cutouts (a task), from a backbone made ready once.

    Tasks on threads share the caller's backbone, so nothing here changes its
    state; a Dask worker gets its own copy, moved to the device if needed.
    """

    def __init__(self, settings):
        self.settings = settings

    def __call__(self, chunk, backbone):
        import torch
        s = self.settings
        device = torch.device(s["device"])
        first = next(backbone.parameters(), None)
        if first is not None and first.device != device:
            backbone.to(device)
        return _run_batches(backbone, chunk, s["pooling"], s["batch_size"], device,
                            s["preprocess"], s["zoom"], s["tta"], s["memory_format"])


#: Cutouts per task when features are computed in tasks (rounded to whole batches).
CHUNK = 2048


def _features_in_tasks(backbone, data, scheduler, workers, **settings):
    """Features of chunks of whole batches, as tasks; the batches are those of the serial run."""
    from ..io import map_tasks
    step = max(1, CHUNK // settings["batch_size"]) * settings["batch_size"]
    chunks = [data[i:i + step] for i in range(0, len(data), step)]
    with _ready(backbone, settings["device"]) as memory_format:
        task = _FeatureChunk(dict(settings, device=str(settings["device"]),
                                  memory_format=memory_format))
        parts = map_tasks(task, chunks, scheduler, workers=workers, common=backbone,
                          desc=f"features ({backbone.spec.name})")
    return np.concatenate(parts) if parts else np.empty(
        (0, backbone.feature_dim_for(settings["pooling"])), np.float32)


@contextlib.contextmanager
def _ready(backbone, device):
    """
    The backbone on the device, in eval mode and its family's memory layout; put back after.

    CNNs run 1.5-2 times faster in channels-last layout (PyTorch CPU and GPU), as their
    family says; the weights are put back in the usual layout afterwards (same Parameters).
    Gives the memory format the inputs should take.
    """
    import torch
    was_training = backbone.training
    backbone.to(device).eval()
    channels_last = backbone.family.channels_last
    if channels_last:
        backbone.to(memory_format=torch.channels_last)
    try:
        yield torch.channels_last if channels_last else torch.contiguous_format
    finally:
        if channels_last:
            backbone.to(memory_format=torch.contiguous_format)
        backbone.train(was_training)


def _features_here(backbone, data, pooling, batch_size, device, preprocess, zoom, tta):
    """Run every batch through the backbone in this process."""
    with _ready(backbone, device) as memory_format:
        return _run_batches(backbone, data, pooling, batch_size, device, preprocess, zoom, tta,
                            memory_format)


def _run_batches(backbone, data, pooling, batch_size, device, preprocess, zoom, tta,
                 memory_format):
    """The features of every batch from a backbone made ready (`_ready`)."""
    import torch
    features = np.empty((len(data), backbone.feature_dim_for(pooling)), dtype=np.float32)
    amp_dtype = _precision(device)
    amp = amp_dtype != torch.float32
    starts = range(0, len(data), batch_size)
    # the torch preprocessing (same results) runs where the model runs: on a GPU it keeps up
    # with the model, and on the CPU it is 1.2-4 times faster than the NumPy one
    on_device = preprocess.tensor_supported
    cuda = device.type == "cuda"
    # on CUDA the features go to pinned host memory without waiting for the device
    out_host = torch.empty(features.shape, dtype=torch.float32, pin_memory=True) if cuda \
        else torch.from_numpy(features)
    batches = _device_batches(data, starts, batch_size, device) if on_device \
        else ((start, data[start:start + batch_size]) for start in starts)
    with torch.inference_mode(), torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
        for start, raw in progress(batches, total=len(starts),
                                   desc=f"features ({backbone.spec.name})", unit="batch"):
            if on_device:
                x = preprocess.to_tensor(raw, zoom=zoom)
            else:
                x = preprocess(raw, zoom=zoom).to(device)
            x = x.contiguous(memory_format=memory_format)
            if tta:
                out = sum(backbone(t, pooling=pooling).float() for t in _dihedral(x)) / 8
            else:
                out = backbone(x, pooling=pooling).float()
            out_host[start:start + len(x)].copy_(out, non_blocking=cuda)
    if cuda:
        torch.cuda.synchronize(device)
        features[:] = out_host.numpy()
    return features


def _json_meta(meta):
    return json.dumps(meta or {}, default=str, sort_keys=True)


def _table_hdu(table):
    """A BinTableHDU named TABLE; mixin columns (SkyCoord) and units as astropy writes them."""
    out = Table(table, copy=False)
    out.meta = {}
    buffer = io.BytesIO()
    out.write(buffer, format="fits")
    buffer.seek(0)
    with fits.open(buffer) as hdul:
        hdu = fits.BinTableHDU(data=hdul[1].data.copy(), header=hdul[1].header.copy(),
                               name="TABLE")
    hdu.header["ASTFMETA"] = _json_meta(dict(table.meta))
    return hdu


def write_features(path, features, table=None, meta=None, overwrite=False):
    """
    Save features (and the cutouts' table) to one FITS file.

    HDU ``FEATURES``: the (N, D) float32 array; HDU ``TABLE`` (when a
    table is given): one row per feature vector, with units and sky
    columns kept. ``meta`` (backbone, weights, preprocessing...) is
    stored as JSON in the ``FEATURES`` header (``ASTFMETA``), the table's
    own ``meta`` in the ``TABLE`` header.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        Output ``.fits`` file.
    features : array-like
        (N, D).
    table : `~astropy.table.Table`, optional
        N rows (e.g. ``stack.table`` of the cutouts).
    meta : dict, optional
        JSON-serialisable settings; `~astrofmtools.utils.provenance` is
        added (date, versions).
    overwrite : bool, optional
        Replace an existing file.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.table import QTable
    >>> from astrofmtools.backbones import read_features, write_features
    >>> table = QTable({"id": [1, 2]})
    >>> write_features("f.fits", np.ones((2, 4)), table, meta={"backbone": "resnet18"})
    >>> features, table, meta = read_features("f.fits")
    >>> features.shape, table["id"].tolist(), meta["backbone"]
    ((2, 4), [1, 2], 'resnet18')
    """
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise InputError(f"features must be (N, D), not shape {features.shape}.")
    if table is not None and len(table) != len(features):
        raise InputError(f"The table has {len(table)} rows for {len(features)} feature vectors.")
    meta = provenance(**(meta or {}))
    hdus = [fits.PrimaryHDU()]
    image = fits.ImageHDU(features, name="FEATURES")
    image.header["ASTFMETA"] = _json_meta(meta)
    hdus.append(image)
    if table is not None:
        hdus.append(_table_hdu(table))
    with atomic_output(path, overwrite=overwrite) as tmp:
        fits.HDUList(hdus).writeto(tmp)


def read_features(path):
    """
    Read a file written by `write_features`.

    Parameters
    ----------
    path : str or `~pathlib.Path`

    Returns
    -------
    features : `~numpy.ndarray`
        float32 (N, D).
    table : `~astropy.table.QTable` or None
        The table, if one was written.
    meta : dict
        The settings stored with the features.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.backbones import read_features, write_features
    >>> write_features("g.fits", np.zeros((3, 2)))
    >>> features, table, meta = read_features("g.fits")
    >>> features.shape, table, sorted(meta)
    ((3, 2), None, ['date', 'versions'])
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"Features file {str(path)!r} does not exist.")
    try:
        with fits.open(path) as hdul:
            if "FEATURES" not in hdul:
                raise InputError(f"{str(path)!r} has no FEATURES HDU; it was not written by "
                                 "write_features.")
            features = np.array(hdul["FEATURES"].data, dtype=np.float32)
            meta = json.loads(hdul["FEATURES"].header.get("ASTFMETA", "{}"))
            has_table = "TABLE" in hdul
            table_meta = json.loads(hdul["TABLE"].header.get("ASTFMETA", "{}")) \
                if has_table else {}
    except OSError as exc:
        raise InputError(f"Cannot read features file {str(path)!r}: {exc}") from None
    table = None
    if has_table:
        table = QTable.read(path, hdu="TABLE", character_as_bytes=False)
        table.meta = table_meta
    return features, table, meta
