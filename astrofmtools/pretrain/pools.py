# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Pools of unlabelled cutouts from the user's own data, for self-supervised
pretraining: the sources found in mosaics, postage stamps, cutout stacks and
arrays, all at one size, with a table saying where each cutout came from.

Torch-free: a pool is built from the torch-free stages (``io``, ``sources``,
``cutouts``) and is an ordinary `~astrofmtools.cutouts.CutoutStack`.
"""

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import astropy.units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import FITSFixedWarning, WCS
from photutils.utils import NoDetectionsWarning

from ..cutouts import CUTOUT_COLUMNS, CutoutStack, make_cutouts, parse_cutouts
from ..cutouts.stack_fits import _FILE_TYPE as _STACK_FILE_TYPE
from ..exceptions import InputError
from ..io import fits_files, load_image, map_tasks
from ..sources import find_sources
from ..stretch import resize
from ..utils import provenance

__all__ = ["build_pool", "POOL_COLUMNS", "MOSAIC_FACTOR"]

#: An image whose longer side is more than this many times the cutout size is a
#: mosaic (its sources are found and cut out); a smaller one is a postage stamp
#: (one cutout, centre-cropped or resized).
MOSAIC_FACTOR = 4

#: The columns of a pool's table (besides the cutout columns, `CUTOUT_COLUMNS`),
#: with their descriptions.
POOL_COLUMNS = {
    "file": "the input the cutout comes from: its file, or <kind k> for the k-th input "
            "given in memory",
    "kind": "how the input was read: 'mosaic' (a source found in it), 'stamp' (the whole "
            "image, one cutout) or 'stack' (a row of a cutout stack or array)",
    "index": "the source's id in the mosaic's find_sources table, the row of the input stack "
             "or array, or 0 for a stamp",
    "x": "x of the cutout's source (or centre) in its input image (0-based pixel); NaN for "
         "an array without a parent image",
    "y": "y of the cutout's source (or centre) in its input image (0-based pixel); NaN for "
         "an array without a parent image",
    "ra": "right ascension (ICRS) of x, y; NaN without a WCS",
    "dec": "declination (ICRS) of x, y; NaN without a WCS",
    "snr": "the source's peak signal-to-noise ratio (find_sources 'snr'); NaN unless found "
           "in a mosaic",
    "source_size": "the longer side of the source's bounding box (pixels); NaN unless found "
                   "in a mosaic",
    "unit": "the pixel unit of the input (empty: none)",
}

_KINDS = ("auto", "mosaic", "stamp")
_STAMP_MODES = ("crop", "resize")
_ARRAY_SUFFIXES = (".npz", ".npy")

#: Warnings that loading, source finding and cutting silence with
#: warnings.catch_warnings, which is not thread-safe: ignored around the whole map,
#: so serial and threaded runs behave alike.
_POOL_WARNINGS = (VerifyWarning, FITSFixedWarning, RuntimeWarning, AstropyUserWarning,
                  NoDetectionsWarning)


@dataclass(frozen=True)
class _Settings:
    """What each input's task needs (picklable, for a Dask cluster)."""

    size: int
    kind: str
    stamps: str
    snr: float
    min_size: float
    max_size: float
    dedupe: float
    max_per_image: int
    keep_edge: bool
    hdu: object
    plane: object
    find_options: dict = field(default_factory=dict)


def build_pool(inputs, size=64, *, kind="auto", stamps="crop", snr=5.0, min_size=None,
               max_size=None, dedupe=None, max_per_image=None, keep_edge=True, hdu=None,
               plane=None, find_options=None, scheduler=None, workers=None):
    """
    A pool of unlabelled cutouts, all ``size`` x ``size``, from the user's own data.

    Self-supervised pretraining learns from many cutouts of the sky it will
    be used on. This gathers them from whatever the user has, in one
    stack: the sources of mosaics, postage stamps from a cutout service,
    stacks made by ``astrofm cutouts`` and arrays, with a table saying
    where each came from.

    Parameters
    ----------
    inputs : input or list of inputs
        Each one of:

        - a FITS image file, a folder of them or a glob pattern
          (``"stamps/*.fits"``): a *mosaic* or a *postage stamp*, decided
          by size (see ``kind``). Cubes with length-1 axes (the FREQ and
          STOKES axes of CASA images) are squeezed, integer pixels scaled
          by ``BSCALE``/``BZERO``, ``BLANK`` pixels made NaN
          (`~astrofmtools.io.load_image`);
        - a cutout-stack FITS file written by ``astrofm cutouts`` or
          `~astrofmtools.cutouts.CutoutStack.write`, or a
          `~astrofmtools.cutouts.CutoutStack`;
        - an ``.npz`` file with an ``images`` array, an ``.npy`` file, or an
          array of cutouts, ``(N, H, W)``, ``(N, C, H, W)`` or ``(N, H, W, C)``;
        - an image in memory: a `~astrofmtools.io.SkyImage`, a 2-D array, an
          ``(array, WCS)`` tuple or anything else `~astrofmtools.io.load_image`
          takes, a mosaic or a stamp by size.
    size : int, optional
        The side of every cutout, in pixels.
    kind : {'auto', 'mosaic', 'stamp'}, optional
        How to read the images (not the stacks and arrays, which are
        cutouts already). ``'auto'``: an image whose longer side is more than
        `MOSAIC_FACTOR` (4) times ``size`` is a mosaic, any other a stamp.
    stamps : {'crop', 'resize'}, optional
        How a stamp (or the cutouts of a stack) of another size becomes
        ``size`` x ``size``: ``'crop'`` keeps the central ``size`` pixels
        (padding with NaN when smaller; the pixel scale is kept, as in the
        cutouts of mosaics); ``'resize'`` resamples the central square to
        ``size`` (`~astrofmtools.stretch.resize`, NaN-aware).
    snr : float, optional
        Mosaics: the detection threshold of `~astrofmtools.sources.find_sources`
        (the significance in the matched-filtered image).
    min_size, max_size : float, optional
        Mosaics: keep the sources whose bounding box's longer side (pixels,
        down to the island threshold) is in this range.
    dedupe : float, optional
        Mosaics: the de-duplication radius in pixels. Of the sources closer
        than this to each other, only the most significant (highest
        ``snr``) is kept, so that overlapping cutouts do not repeat the same
        sky. Default: ``size / 4``; 0 keeps every source.
    max_per_image : int, optional
        Mosaics: keep at most this many sources of each, the most
        significant first.
    keep_edge : bool, optional
        Keep the cutouts that run off their image or hold pixels without
        data (NaN); the table's ``edge`` column flags them either way.
    hdu, plane : optional
        The HDU and plane of each FITS image (see `~astrofmtools.io.load_image`).
    find_options : dict, optional
        More settings of `~astrofmtools.sources.find_sources` (``psf_fwhm``,
        ``deblend``, ``island_snr``...).
    scheduler : str or executor, optional
        Where each input is read and cut (see `~astrofmtools.io.map_tasks`):
        serially (default), ``"threads"``, ``"dask"`` (a local cluster), a
        Dask scheduler's address, or an executor such as a
        ``dask.distributed.Client`` (give files: in-memory inputs are sent
        with their task). The pool is the same whichever runs them.
    workers : int, optional
        The number of threads or local Dask workers.

    Returns
    -------
    pool : `~astrofmtools.cutouts.CutoutStack`
        ``(N, size, size)`` float32 cutouts (``(N, C, size, size)`` for
        multi-band inputs), in the order of the inputs (and of the files of
        a folder or pattern, sorted by name; mosaics' sources in raster
        order), each with the WCS of its input image when it has one. The
        ``table`` has the columns of `POOL_COLUMNS`: ``file``, ``kind``,
        ``index``, ``x``, ``y``, ``ra``, ``dec`` (and ``sky_centroid``,
        ICRS, when every cutout has a sky position), ``snr``,
        ``source_size``, ``unit``, then the cutout columns
        (`~astrofmtools.cutouts.CUTOUT_COLUMNS`). ``table.meta`` holds the
        settings and, under ``inputs``, each input's kind and its numbers of
        sources found and cutouts kept. Inputs with different pixel units
        give a pool without ``unit`` (the ``unit`` column keeps each). No
        cutout: an empty stack with the same columns.

    Raises
    ------
    astrofmtools.InputError
        For bad settings, or an input that cannot be read or cut (the
        message names the file, or the position of an input given in
        memory), or inputs whose cutouts differ in their number of bands.

    Notes
    -----
    Each input is one task of `~astrofmtools.io.map_tiles`, so the inputs
    are read and cut independently, serially or in parallel, with the
    same result. A mosaic's cutouts are centred on its sources as
    `~astrofmtools.cutouts.make_cutouts` centres them (the source's pixel
    at index ``size // 2``); a stamp's on its centre, as
    `~astrofmtools.cutouts.cutouts_from_files` does. Of a stack's cutouts
    cropped or resized, the table's cutout columns are updated so that each
    cutout's WCS stays right.

    Examples
    --------
    The sources of a synthetic optical field, and two postage stamps given
    as an array:

    >>> import numpy as np
    >>> from astrofmtools.datasets import make_optical_field
    >>> from astrofmtools.pretrain.pools import build_pool
    >>> image, truth = make_optical_field(shape=(256, 256), n_galaxies=5, n_stars=10, seed=1)
    >>> pool = build_pool(image, size=32, snr=10)
    >>> pool
    <CutoutStack: 15 cutouts of 32x32 [adu] from make_optical_field(seed=1)>
    >>> pool.table["file", "kind", "index"][:2]
    <QTable length=2>
        file      kind  index
        str12     str6  int64
    ------------ ------ -----
    <SkyImage 0> mosaic     1
    <SkyImage 0> mosaic     2
    >>> stamps = np.ones((2, 48, 48), dtype=np.float32)
    >>> both = build_pool([image, stamps], size=32, snr=10)
    >>> both.shape, str(both.table["file"][-1]), both.table.meta["inputs"][1]["kind"]
    ((17, 32, 32), '<array 1>', 'stack')

    Files work the same (a folder or a glob pattern of postage stamps too);
    the inputs can be read and cut on threads, with the same result:

    >>> from astrofmtools.io import write_image
    >>> write_image(image, "field.fits")
    >>> pool = build_pool(["field.fits", stamps], size=32, snr=10, scheduler="threads",
    ...                   workers=2)
    >>> len(pool), bool(pool.table["x"][0] == both.table["x"][0])
    (17, True)
    """
    settings = _settings(size, kind, stamps, snr, min_size, max_size, dedupe, max_per_image,
                         keep_edge, hdu, plane, find_options)
    items = _items(inputs)
    # one task per input, on any scheduler (serial, threads, Dask, an executor)
    results = map_tasks(functools.partial(_pool_task, settings), items, scheduler=scheduler,
                        workers=workers, ignore_warnings=_POOL_WARNINGS, desc="pool inputs")
    return _join(results, settings)


# ---------------------------------------------------------------------- settings
def _settings(size, kind, stamps, snr, min_size, max_size, dedupe, max_per_image, keep_edge,
              hdu, plane, find_options):
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 2:
        raise InputError(f"size must be an integer number of pixels >= 2, not {size!r}.")
    if kind not in _KINDS:
        raise InputError(f"kind must be one of {', '.join(_KINDS)}; got {kind!r}.")
    if stamps not in _STAMP_MODES:
        raise InputError(f"stamps must be one of {', '.join(_STAMP_MODES)}; got {stamps!r}.")
    for name, value in (("min_size", min_size), ("max_size", max_size), ("dedupe", dedupe)):
        if value is not None and (isinstance(value, bool) or not np.isscalar(value)
                                  or not np.isfinite(value) or value < 0):
            raise InputError(f"{name} must be a non-negative number of pixels, not {value!r}.")
    if min_size is not None and max_size is not None and min_size > max_size:
        raise InputError(f"min_size ({min_size}) is larger than max_size ({max_size}).")
    if max_per_image is not None and (isinstance(max_per_image, bool)
                                      or int(max_per_image) != max_per_image
                                      or max_per_image < 1):
        raise InputError(f"max_per_image must be a positive integer, not {max_per_image!r}.")
    find_options = dict(find_options or {})
    if "snr" in find_options:
        raise InputError("Give the detection threshold as build_pool(snr=...), not in "
                         "find_options.")
    return _Settings(size=int(size), kind=kind, stamps=stamps, snr=snr,
                     min_size=None if min_size is None else float(min_size),
                     max_size=None if max_size is None else float(max_size),
                     dedupe=size / 4 if dedupe is None else float(dedupe),
                     max_per_image=None if max_per_image is None else int(max_per_image),
                     keep_edge=bool(keep_edge), hdu=hdu, plane=plane,
                     find_options=find_options)


def _items(inputs):
    """``(label, item)`` of every input, folders and patterns expanded into their files."""
    if isinstance(inputs, list) or (isinstance(inputs, tuple) and not _is_image_tuple(inputs)):
        given = list(inputs)
    else:
        given = [inputs]
    if not given:
        raise InputError("build_pool needs at least one input (files, stacks or arrays).")
    items = []
    for k, item in enumerate(given):
        if isinstance(item, (str, os.PathLike)):
            items += [(str(path), path) for path in fits_files(item)]
        else:
            name = ("CutoutStack" if isinstance(item, CutoutStack)
                    else "array" if isinstance(item, np.ndarray) else type(item).__name__)
            items.append((f"<{name} {k}>", item))
    return items


def _is_image_tuple(value):
    return (len(value) == 2 and isinstance(value[0], np.ndarray)
            and (value[1] is None or isinstance(value[1], (WCS, fits.Header))))


# ---------------------------------------------------------------------- one input
def _pool_task(settings, labelled):
    """The cutouts of one ``(label, input)``: ``(stack, label, kind, n_found)``."""
    label, item = labelled
    try:
        stack, kind, n_found = _cutouts_of(item, label, settings)
    except InputError as exc:
        if label in str(exc):
            raise
        raise InputError(f"{label}: {exc}") from None
    return _with_pool_table(stack, label, kind), label, kind, n_found


def _cutouts_of(item, label, s):
    if isinstance(item, CutoutStack):
        return _fit_stack(item, s), "stack", len(item)
    if isinstance(item, Path):
        name = item.name.lower()
        if name.endswith(_ARRAY_SUFFIXES):
            return _stack_of_array(_read_array_file(item), label, s)
        if _is_stack_file(item):
            stack = CutoutStack.read(item)
            return _fit_stack(stack, s), "stack", len(stack)
        image = load_image(item, hdu=s.hdu, plane=s.plane)
    elif isinstance(item, np.ndarray) and item.ndim != 2:
        return _stack_of_array(item, label, s)
    else:
        image = load_image((item, None) if isinstance(item, np.ndarray) else item,
                           plane=s.plane)
    kind = s.kind
    if kind == "auto":
        kind = "mosaic" if max(image.shape[-2:]) > MOSAIC_FACTOR * s.size else "stamp"
    if kind == "mosaic":
        return _mosaic_cutouts(image, s)
    return _stamp_cutout(image, s), "stamp", 1


def _is_stack_file(path):
    """Whether a FITS file is a CutoutStack file (its primary header says so)."""
    try:
        with fits.open(path) as hdul:  # lazily: the primary header only
            return hdul[0].header.get("ASTFMTYP") == _STACK_FILE_TYPE
    except Exception:  # noqa: BLE001 - load_image then says what is wrong with the file
        return False


def _read_array_file(path):
    """The cutouts of a ``.npy`` file, or the ``images`` array of a ``.npz`` file."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - numpy and zipfile raise several types
        raise InputError(f"{str(path)!r} is not a readable .npz/.npy file ({exc}).") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        return loaded
    with loaded:
        if "images" not in loaded.files:
            raise InputError(f"{str(path)!r} holds no 'images' array (its arrays: "
                             f"{', '.join(loaded.files) or 'none'}).")
        return loaded["images"]


def _stack_of_array(array, label, s):
    data, _ = parse_cutouts(array, what=label, single_image=False, index_table=False)
    return _fit_stack(CutoutStack(data), s), "stack", len(data)


def _mosaic_cutouts(image, s):
    """Find the sources, keep those the filters pass, cut them out."""
    sources = find_sources(image, snr=s.snr, **s.find_options)
    n_found = len(sources)
    extent = np.maximum(np.asarray(sources["bbox_xmax"]) - sources["bbox_xmin"],
                        np.asarray(sources["bbox_ymax"]) - sources["bbox_ymin"]) + 1.0
    keep = np.ones(n_found, dtype=bool)
    if s.min_size is not None:
        keep &= extent >= s.min_size
    if s.max_size is not None:
        keep &= extent <= s.max_size
    sources = sources[keep]
    sources["source_size"] = extent[keep]
    rank = np.argsort(-np.asarray(sources["snr"], dtype=float), kind="stable")
    rank = _dedupe(np.asarray(sources["x"], float), np.asarray(sources["y"], float), rank,
                   s.dedupe)
    stack = make_cutouts(image, sources[np.sort(rank)], size=s.size)
    if not s.keep_edge:
        stack = stack[~np.asarray(stack.table["edge"])]
    if s.max_per_image is not None and len(stack) > s.max_per_image:
        order = np.argsort(-np.asarray(stack.table["snr"], dtype=float), kind="stable")
        stack = stack[np.sort(order[:s.max_per_image])]
    stack.table["index"] = stack.table["id"]
    return stack, "mosaic", n_found


def _dedupe(x, y, order, radius):
    """The sources of ``order`` (best first) with no better one within ``radius``."""
    if radius <= 0 or len(order) < 2:
        return order
    from scipy.spatial import cKDTree
    tree = cKDTree(np.column_stack([x, y]))
    covered = np.zeros(len(x), dtype=bool)
    kept = []
    for i in order:
        if covered[i]:
            continue
        kept.append(i)
        covered[tree.query_ball_point([x[i], y[i]], radius)] = True
    return np.asarray(kept, dtype=np.int64)


def _stamp_cutout(image, s):
    """The whole image as one cutout: its centre cropped (or its central square resized)."""
    ny, nx = image.shape[-2:]
    centre = QTable({"x": [(nx - 1) / 2], "y": [(ny - 1) / 2]})
    if s.stamps == "crop":
        return make_cutouts(image, centre, size=s.size)
    side = min(ny, nx)
    return make_cutouts(image, centre, size=side, output_size=s.size)


def _fit_stack(stack, s):
    """A stack's cutouts made ``size`` x ``size`` (cropped or resized around their centre),
    with the cutout columns updated."""
    h, w = stack.cutout_shape
    if (h, w) == (s.size, s.size):
        return stack
    table = QTable(stack.table, copy=True)
    scale = np.asarray(table["cutout_scale"], dtype=float)
    side = min(h, w) if s.stamps == "resize" else s.size
    data, oy, ox, padded = _centre_crop(stack.data, side, side)
    factor = 1.0
    if s.stamps == "resize" and side != s.size:
        data = resize(data, s.size)
        factor = side / s.size
    # the crop's first pixel in the parent (rounded when the stack was itself resampled)
    table["cutout_x0"] = np.asarray(table["cutout_x0"]) + np.rint(ox * scale).astype(np.int64)
    table["cutout_y0"] = np.asarray(table["cutout_y0"]) + np.rint(oy * scale).astype(np.int64)
    table["cutout_x"] = (np.asarray(table["cutout_x"], float) - ox + 0.5) / factor - 0.5
    table["cutout_y"] = (np.asarray(table["cutout_y"], float) - oy + 0.5) / factor - 0.5
    table["cutout_scale"] = scale * factor
    nodata = ~np.isfinite(data.reshape(len(data), -1).sum(axis=1, dtype=np.float64))
    table["edge"] = np.asarray(table["edge"], dtype=bool) | padded | nodata
    for name in ("cutout_x0", "cutout_y0", "cutout_x", "cutout_y", "cutout_scale", "edge"):
        table[name].info.description = CUTOUT_COLUMNS[name][2]
    return CutoutStack(data, table, stack.parents, stack.unit, stack.bands, stack.band_units)


def _centre_crop(data, ny, nx):
    """The central (ny, nx) of every cutout (NaN where smaller), the pixel at index
    ``H // 2`` landing at ``ny // 2``; also the offsets and whether it padded."""
    H, W = data.shape[-2:]
    oy, ox = H // 2 - ny // 2, W // 2 - nx // 2
    out = np.full(data.shape[:-2] + (ny, nx), np.nan, dtype=np.float32)
    ya, yb, xa, xb = max(oy, 0), min(oy + ny, H), max(ox, 0), min(ox + nx, W)
    out[..., ya - oy:yb - oy, xa - ox:xb - ox] = data[..., ya:yb, xa:xb]
    return out, oy, ox, bool(oy < 0 or ox < 0 or oy + ny > H or ox + nx > W)


# ---------------------------------------------------------------------- the table
def _with_pool_table(stack, label, kind):
    """The stack with the pool's columns: where each cutout came from, then the cutout
    columns."""
    t = stack.table
    n = len(stack)
    h, w = stack.cutout_shape
    cx = np.asarray(t["cutout_x"], dtype=float)
    cy = np.asarray(t["cutout_y"], dtype=float)
    cx = np.where(np.isfinite(cx), cx, (w - 1) / 2)
    cy = np.where(np.isfinite(cy), cy, (h - 1) / 2)
    x, y = stack.cutout_to_image(np.arange(n), cx, cy)
    parent = np.asarray(t["cutout_parent"], dtype=np.int64)
    has_parent = (parent >= 0) & (parent < len(stack.parents))
    x = np.where(has_parent, x, np.nan)
    y = np.where(has_parent, y, np.nan)
    ra = np.full(n, np.nan)
    dec = np.full(n, np.nan)
    for p in np.unique(parent[has_parent]):
        wcs = stack.parents[p].wcs
        if wcs is not None:
            sel = parent == p
            sky = wcs.pixel_to_world(x[sel], y[sel]).icrs
            ra[sel], dec[sel] = sky.ra.deg, sky.dec.deg

    def column(name, default):
        return np.asarray(t[name], dtype=float) if name in t.colnames else np.full(n, default)

    out = QTable(meta=t.meta)
    out["file"] = np.full(n, label, dtype=f"U{max(len(label), 1)}")
    out["kind"] = np.full(n, kind, dtype="U6")
    out["index"] = (np.asarray(t["index"], dtype=np.int64) if "index" in t.colnames
                    else np.arange(n, dtype=np.int64))
    out["x"], out["y"] = x, y
    out["ra"], out["dec"] = ra * u.deg, dec * u.deg
    out["snr"] = column("snr", np.nan)
    out["source_size"] = column("source_size", np.nan)
    unit = _unit_text(stack.unit)
    out["unit"] = np.full(n, unit, dtype=f"U{max(len(unit), 1)}")
    for name in POOL_COLUMNS:
        out[name].info.description = POOL_COLUMNS[name]
    for name in CUTOUT_COLUMNS:
        out[name] = t[name]
    return CutoutStack(stack.data, out, stack.parents, stack.unit, stack.bands,
                       stack.band_units)


def _unit_text(unit):
    return "" if unit is None else unit.to_string()


def _join(results, s):
    """One stack of every input's cutouts, in input order, with the pool's meta."""
    stacks = [r[0] for r in results]
    shapes = {st.data.shape[1:] for st in stacks if len(st)}
    if len(shapes) > 1:
        listing = "; ".join(f"{label}: {'x'.join(map(str, st.data.shape[1:]))}"
                            for st, label, _, _ in results if len(st))
        raise InputError(f"The inputs' cutouts differ in their bands ({listing}); make one "
                         "pool per set of bands.")
    if len({st.unit for st in stacks}) > 1:  # the unit column keeps each input's
        stacks = [CutoutStack(st.data, st.table, st.parents, None, st.bands,
                              None if st.bands is None else [None] * len(st.bands))
                  for st in stacks]
    stacks = [st for st in stacks if len(st)] or stacks[:1]
    pool = CutoutStack.concatenate(stacks)
    if len(pool) and np.all(np.isfinite(pool.table["ra"].value)
                            & np.isfinite(pool.table["dec"].value)):
        pool.table.add_column(SkyCoord(pool.table["ra"], pool.table["dec"], frame="icrs"),
                              name="sky_centroid", index=pool.table.colnames.index("dec") + 1)
        pool.table["sky_centroid"].info.description = "sky position (ICRS) of x, y"
    pool.table.meta = provenance(
        stage="pool", size=s.size, kind=s.kind, stamps=s.stamps, snr=float(s.snr),
        min_size=s.min_size, max_size=s.max_size, dedupe=s.dedupe,
        max_per_image=s.max_per_image, keep_edge=s.keep_edge,
        inputs=[{"file": label, "kind": kind, "found": int(n_found), "kept": len(st)}
                for st, label, kind, n_found in results])
    return pool
