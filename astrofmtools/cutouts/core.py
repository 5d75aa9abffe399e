# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Make cutout stacks from an image and a table, or from survey cutout files."""

import warnings

import numpy as np
import astropy.units as u
from astropy.coordinates import SkyCoord
from astropy.table import QTable, Table
from astropy.utils.exceptions import AstropyUserWarning

from ..exceptions import InputError
from ..schema import BBOX_COLUMNS as _BBOX
from ..schema import parse_positions
from ..stretch import resize
from ..utils import progress, provenance
from .pixels import _gather, _gather_tiled, _image_arrays
from .stack import CUTOUT_COLUMNS, CutoutParent, CutoutStack

__all__ = ["make_cutouts", "cutouts_from_files"]


def make_cutouts(image, table, size=64, *, output_size=None, pad=0.1, min_size=None,
                 fill=np.nan, xy=None, sky=None, scheduler=None, workers=None,
                 warn_outside=None):
    """
    Cut a stamp around every source of a table, all at once.

    Parameters
    ----------
    image : `~astrofmtools.io.SkyImage` or any input of `~astrofmtools.io.load_image`
        The image. A large file is read on demand (see
        `~astrofmtools.io.load_image`): tile by tile for fixed-size
        cutouts, crop by crop for ``size="bbox"``, so memory holds the
        stack and one tile, not the mosaic. A multi-band image (``(C, H, W)`` data
        on one grid, as `~astrofmtools.io.load_bands` makes) is cut in all
        its bands at once.
    table : `~astropy.table.Table` or `~astropy.coordinates.SkyCoord`
        One row per source. Positions come from, in this order of
        preference: columns ``x``, ``y`` (0-based pixels), a SkyCoord column
        ``sky_centroid``, or columns ``ra``, ``dec`` (degrees, ICRS); or
        from the columns named by ``xy`` / ``sky``. A SkyCoord is taken as
        a table with one ``sky_centroid`` column.
    size : int, (int, int), `~astropy.units.Quantity` or ``"bbox"``, optional
        ``int`` or ``(ny, nx)``: fixed cutouts of that many pixels; an
        angle (e.g. ``2 * u.arcmin``) is converted with the image's pixel
        scale. ``"bbox"``: a close square crop around each source's
        bounding box (columns ``bbox_xmin``, ``bbox_xmax``, ``bbox_ymin``,
        ``bbox_ymax``, 0-based inclusive), padded by ``pad``, then resized
        to ``output_size``.
    output_size : int or (int, int), optional
        Resize every cutout to this size (anti-aliased, NaN-aware). Needed
        with ``size="bbox"``; with a fixed size the aspect ratio must stay
        the same.
    pad : int or float, optional
        For ``size="bbox"``: the margin added on each side of the bbox's
        longer side before it is made square. An ``int`` is a number of
        pixels; a ``float`` is a fraction of the bbox's longer side (the
        default 0.1 adds 10% on each side).
    min_size : int, optional
        For ``size="bbox"``: the smallest crop side in pixels, so that
        point sources are not blown up from a few pixels.
    fill : float, optional
        The value of cutout pixels that fall outside the image.
    xy : (str, str), optional
        Names of the pixel position columns.
    sky : str or (str, str), optional
        Name of a SkyCoord column, or names of RA and Dec columns
        (degrees, ICRS). Sky positions need an image with a WCS.

    scheduler : str or executor, optional
        Where the tiles of an image read on demand are cut (see
        `~astrofmtools.io.map_tiles`): serially (default), ``"threads"``,
        ``"dask"`` or a Dask scheduler's address or client. The stack is
        the same whichever runs them.
    workers : int, optional
        The number of threads or local Dask workers.
    warn_outside : bool or None, optional
        Warn when cutouts lie wholly outside the image (they hold only
        ``fill``): None (default) when all of them do, True when any does,
        False never.

    Returns
    -------
    stack : `~astrofmtools.cutouts.CutoutStack`
        ``data`` (N, H, W) float32, or (N, C, H, W) for a multi-band image
        (then ``bands`` and ``band_units`` name and describe the C
        channels); ``table`` = the input rows and columns
        plus ``cutout_x0``, ``cutout_y0`` (0-based parent pixel of the
        crop's first pixel), ``cutout_scale`` (parent pixels per cutout
        pixel), ``cutout_x``, ``cutout_y`` (the source position in the
        cutout, 0-based cutout pixels), ``edge`` (True when the cutout is
        partly outside the image or holds NaN pixels, in any band) and
        ``cutout_parent``;
        ``wcs`` (built on demand). An empty table gives an empty stack.

    Raises
    ------
    astrofmtools.InputError
        For a table without position (or bbox) columns (the message lists
        the columns looked for and those present), sky positions with an
        image without WCS, non-finite positions, a bad size, or a stack
        larger than the available memory (`~astrofmtools.io.available_memory`;
        the message says how much it needs).

    Warns
    -----
    astropy.utils.exceptions.AstropyUserWarning
        When no cutout overlaps the image (a table of another field, or sky
        positions in another frame), or with ``warn_outside=True`` when some
        lie wholly outside it. The warning's ``n_outside`` and ``n``
        attributes count those and all cutouts.

    Notes
    -----
    **Centre convention.** A fixed-size cutout of ``(ny, nx)`` pixels puts
    the pixel that contains the source, ``(round(y), round(x))`` (halves
    rounded up), at index ``(ny // 2, nx // 2)``: the central pixel for an
    odd size, the one just above and right of the middle for an even size.
    ``cutout_x``, ``cutout_y`` give the exact sub-pixel position of the
    source in the cutout.

    **Close crops** (``size="bbox"``) are squares of side ``max(bbox width,
    bbox height) + 2 * pad`` (at least ``min_size``), centred on the bbox,
    resized to ``output_size`` with `~astrofmtools.stretch.resize`
    (`skimage.transform.resize`: bilinear, Gaussian anti-aliasing when
    shrinking). Pixel values are interpolated,
    so a surface brightness (Jy/beam) keeps its value; NaN pixels are left
    out of the interpolation, and an output pixel that is mostly NaN is
    NaN. ``cutout_scale`` = crop side / output side.

    **WCS.** Each cutout's WCS is the parent WCS with ``CRPIX`` shifted by
    the crop origin and, for resized cutouts, ``CRPIX`` and ``CDELT`` (or
    ``CD``, and SIP coefficients) scaled by ``cutout_scale``; it is built
    only when asked for (`~astrofmtools.cutouts.CutoutStack.wcs_of`).

    **Speed.** Fixed-size cutouts are copied by plain slicing into one
    preallocated float32 array (no per-cutout WCS or image copies), so
    10,000 cutouts of a memory-mapped mosaic take about as long as the
    bare numpy loop (see ``benchmarks/cutouts.py``).

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.table import QTable
    >>> from astrofmtools.cutouts import make_cutouts
    >>> from astrofmtools.datasets import example_image_path
    >>> table = QTable({"x": [150.0, 10.0], "y": [140.0, 150.0]})
    >>> stack = make_cutouts(example_image_path(), table, size=32)
    >>> stack
    <CutoutStack: 2 cutouts of 32x32 [Jy / beam] from ...first_example.fits[0]>
    >>> stack.data.shape, stack.table["edge"].tolist()   # the second runs off the image
    ((2, 32, 32), [False, True])
    >>> int(stack.table["cutout_x0"][1]), bool(np.isnan(stack.data[1, 0, 0]))
    (-6, True)

    A multi-band image gives (N, C, H, W) cutouts, each band cut at the
    same place:

    >>> from astrofmtools.io import SkyImage
    >>> bands = SkyImage(np.zeros((3, 200, 200)), bands=["z", "r", "g"])
    >>> make_cutouts(bands, table[:1], size=16)
    <CutoutStack: 1 cutout of 16x16 x 3 bands (z, r, g) from <array>>

    Close crops around bounding boxes, resized to 24x24:

    >>> boxes = QTable({"bbox_xmin": [140], "bbox_xmax": [159],
    ...                 "bbox_ymin": [135], "bbox_ymax": [144]})
    >>> crops = make_cutouts(example_image_path(), boxes, size="bbox", output_size=24, pad=2)
    >>> crops.data.shape, float(crops.table["cutout_scale"][0])
    ((1, 24, 24), 1.0)
    """
    from ..io import load_image

    image = load_image(image)
    table = _as_table(table)
    n = len(table)
    mode, shape = _parse_size(size, image)
    out_shape = _parse_output_size(output_size, mode)
    _check_numbers(fill, pad, min_size, workers)

    if mode == "bbox":
        missing = [c for c in _BBOX if c not in table.colnames]
        if missing:
            raise InputError(f"size='bbox' needs the columns {', '.join(_BBOX)} (0-based "
                             f"inclusive pixels); the table lacks {', '.join(missing)}. Its "
                             f"columns: {', '.join(table.colnames) or 'none'}.")
        x, y = _positions(image, table, xy, sky, required=False)
        _check_memory(n, image, out_shape)
        data, x0, y0, scale, edge = _bbox_cutouts(image, table, out_shape, pad, min_size, fill)
        side = np.rint(np.asarray(scale) * out_shape[0]).astype(np.int64)
        _warn_outside(image, x0, y0, side, side, warn_outside)
        if x is None:  # no position columns: the bbox centre
            x = (np.asarray(table["bbox_xmin"], float) + np.asarray(table["bbox_xmax"])) / 2
            y = (np.asarray(table["bbox_ymin"], float) + np.asarray(table["bbox_ymax"])) / 2
    else:
        x, y = _positions(image, table, xy, sky, required=True)
        ny, nx = shape
        x0 = np.floor(x + 0.5).astype(np.int64) - nx // 2
        y0 = np.floor(y + 0.5).astype(np.int64) - ny // 2
        _check_memory(n, image, (ny, nx), out_shape)
        _warn_outside(image, x0, y0, ny, nx, warn_outside)
        if isinstance(image.data, np.ndarray):
            data, edge = _gather(_image_arrays(image), x0, y0, ny, nx, fill)
        else:
            data, edge = _gather_tiled(image, x0, y0, ny, nx, fill, scheduler, workers)
        scale = np.ones(n)
        if out_shape is not None and out_shape != (ny, nx):
            sy, sx = ny / out_shape[0], nx / out_shape[1]
            if not np.isclose(sy, sx):
                raise InputError(f"output_size {out_shape} changes the aspect ratio of the "
                                 f"{ny}x{nx} cutouts; keep ny/nx the same.")
            data = resize(data, out_shape)
            scale[:] = sx

    meta = provenance(stage="cutouts", image=str(image.source),
                      size=size if isinstance(size, str) else list(shape),
                      output_size=None if out_shape is None else list(out_shape),
                      pad=pad if mode == "bbox" else None, fill=float(fill))
    if image.bands is not None:
        meta["bands"] = list(image.bands)
    if table.meta:
        meta["input_meta"] = dict(table.meta)
    table.meta = meta
    _add_cutout_columns(table, x0, y0, scale, x, y, edge, parent=0)
    return CutoutStack(data, table, [CutoutParent.from_image(image)], image.unit,
                       bands=image.bands, band_units=image.band_units)


def cutouts_from_files(paths, size=None, *, hdu=None, plane=None, fill=np.nan):
    """
    A stack from FITS files that each hold one centred source.

    This is how survey cutout services (SkyView, the Legacy Survey viewer,
    ...) deliver images: one file per source, the source at the centre.

    Parameters
    ----------
    paths : str, `~pathlib.Path` or list of them
        The files; or one folder (all its ``.fits``/``.fit``/``.fts``
        files, ``.gz`` too, sorted by name); or a glob pattern.
    size : int or (int, int), optional
        Crop (or pad with ``fill``) every image to this size around its
        centre. By default all files must have the same shape.
    hdu : int or str, optional
        The HDU to read in every file (default: the first with an image).
    plane : int or tuple, optional
        For cubes, the plane to take (see `~astrofmtools.io.load_image`).
    fill : float, optional
        Value of padded pixels.

    Returns
    -------
    stack : `~astrofmtools.cutouts.CutoutStack`
        One cutout per file, in the order given. ``table`` columns:
        ``file`` (the path given), ``x``, ``y`` (the image centre,
        ``((nx - 1) / 2, (ny - 1) / 2)``, 0-based pixels of the file),
        ``ra``, ``dec`` (deg; NaN for a file without WCS) and
        ``sky_centroid`` (when every file has a WCS), and the cutout
        columns of `~astrofmtools.cutouts.make_cutouts`. Each file is a
        parent of the stack, so each cutout keeps its own file's WCS.

    Raises
    ------
    astrofmtools.InputError
        If a file cannot be read (the message names it), a folder holds no
        FITS file, or the images differ in shape and no ``size`` is given.

    Notes
    -----
    Cropping follows the centre convention of
    `~astrofmtools.cutouts.make_cutouts`: the pixel containing the image
    centre lands at index ``size // 2``, so a 300-pixel file cropped to 64
    keeps pixels 118..181.

    Examples
    --------
    >>> from astrofmtools.cutouts import cutouts_from_files
    >>> from astrofmtools.datasets import example_image_path
    >>> stack = cutouts_from_files([example_image_path()] * 2, size=100)
    >>> stack
    <CutoutStack: 2 cutouts of 100x100 [Jy / beam] from 2 images>
    >>> stack.table["file"][0].endswith("first_example.fits"), int(stack.table["cutout_x0"][0])
    (True, 100)
    >>> round(float(stack.table["ra"][0].value), 3)   # the image centre
    216.014
    """
    from ..io import fits_files, load_image

    files = fits_files(paths)
    images = []
    for path in progress(files, desc="reading cutout files", unit="file"):
        images.append(load_image(path, hdu=hdu, plane=plane))
    ny, nx = _stamp_shape(files, [im.shape for im in images], size, "files",
                          "cutouts_from_files")
    n = len(files)
    data = np.empty((n, ny, nx), dtype=np.float32)
    x = np.empty(n)
    y = np.empty(n)
    x0 = np.empty(n, dtype=np.int64)
    y0 = np.empty(n, dtype=np.int64)
    edge = np.zeros(n, dtype=bool)
    ra = np.full(n, np.nan)
    dec = np.full(n, np.nan)
    for k, im in enumerate(images):
        x[k] = (im.shape[1] - 1) / 2
        y[k] = (im.shape[0] - 1) / 2
        x0[k] = int(np.floor(x[k] + 0.5)) - nx // 2
        y0[k] = int(np.floor(y[k] + 0.5)) - ny // 2
        cut, flag = _gather(_image_arrays(im), x0[k:k + 1], y0[k:k + 1], ny, nx, fill)
        data[k] = cut[0]
        edge[k] = flag[0]
        if im.wcs is not None:
            c = im.wcs.pixel_to_world(x[k], y[k]).icrs
            ra[k], dec[k] = c.ra.deg, c.dec.deg
    units = {im.unit for im in images}
    if len(units) > 1:
        raise InputError(f"The files have different pixel units ({', '.join(map(str, units))}); "
                         "make one stack per unit and survey.")
    table = QTable(meta=provenance(stage="cutouts_from_files", n_files=n,
                                   size=[int(ny), int(nx)]))
    table["file"] = [str(f) for f in files]
    table["file"].info.description = "the FITS file the cutout comes from"
    table["x"] = x
    table["x"].info.description = "image centre x in the file (0-based pixel)"
    table["y"] = y
    table["y"].info.description = "image centre y in the file (0-based pixel)"
    table["ra"] = ra * u.deg
    table["ra"].info.description = "right ascension (ICRS) of the image centre; NaN without WCS"
    table["dec"] = dec * u.deg
    table["dec"].info.description = "declination (ICRS) of the image centre; NaN without WCS"
    if n and all(im.wcs is not None for im in images):
        table["sky_centroid"] = SkyCoord(ra, dec, unit="deg", frame="icrs")
        table["sky_centroid"].info.description = "sky position (ICRS) of the image centre"
    parents = [CutoutParent.from_image(im) for im in images]
    _add_cutout_columns(table, x0, y0, np.ones(n), x, y, edge, parent=np.arange(n))
    return CutoutStack(data, table, parents, units.pop() if units else None)


# ---------------------------------------------------------------------- helpers
def _bytes_text(nbytes):
    """``2.18 TiB``: a number of bytes for people."""
    for power, unit in ((40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")):
        if nbytes >= 1 << power:
            return f"{nbytes / (1 << power):.3g} {unit}"
    return f"{int(nbytes)} bytes"


def _check_memory(n, image, *shapes):
    """Refuse, before allocating, float32 stacks of ``n`` cutouts of ``shapes`` that do not fit."""
    from ..io import available_memory
    bands = int(image.data.shape[0]) if image.data.ndim == 3 else 1
    needed = sum(n * bands * int(np.prod(shape)) * 4 for shape in shapes if shape is not None)
    available = available_memory()
    if needed > available:
        shape = next(s for s in shapes if s is not None)
        raise InputError(
            f"{n} cutouts of {shape[1]}x{shape[0]} pixels"
            f"{f' in {bands} bands' if bands > 1 else ''} of {image.source} need "
            f"{_bytes_text(needed)} of memory and {_bytes_text(available)} is available: "
            "use a smaller size or fewer rows.")


def _warn_outside(image, x0, y0, ny, nx, when):
    """Warn when cutouts starting at (y0, x0), (ny, nx) pixels, lie wholly outside the image:
    all of them (``when`` None), any (True) or never (False)."""
    NY, NX = image.shape[-2:]
    outside = (x0 + nx <= 0) | (x0 >= NX) | (y0 + ny <= 0) | (y0 >= NY)
    if when is not False and outside.any() and (when or outside.all()):
        k = int(outside.sum())
        rows = ", ".join(str(r) for r in np.flatnonzero(outside)[:10]) + (" ..." * (k > 10))
        warning = AstropyUserWarning(
            f"{k} of {len(x0)} cutouts lie wholly outside {image.source} ({NX}x{NY} pixels) "
            f"and hold only the fill value: rows {rows}.")
        warning.n_outside, warning.n = k, len(x0)
        warnings.warn(warning, stacklevel=3)


def _stamp_shape(files, shapes, size, what, function):
    """
    The ``(ny, nx)`` of a stack of stamps: ``size`` when given (a fixed size), else the one
    shape all stamps share (an InputError listing them when they differ).
    """
    if size is not None:
        mode, shape = _parse_size(size, None)
        if mode == "bbox":
            raise InputError(f"{function} takes a fixed size (int or (ny, nx)), not 'bbox'.")
        return shape
    groups = {}
    for f, shape in zip(files, shapes):
        groups.setdefault(tuple(shape[-2:]), []).append(str(f))
    if len(groups) > 1:
        listing = "; ".join(f"{s[1]}x{s[0]}: {', '.join(fs[:3])}"
                            f"{' ...' if len(fs) > 3 else ''}" for s, fs in groups.items())
        raise InputError(f"The {what} differ in shape ({listing}); pass size=... to crop or pad "
                         "them to one size.")
    return next(iter(groups)) if groups else (0, 0)


def _as_table(table):
    if isinstance(table, SkyCoord):
        out = QTable()
        out["sky_centroid"] = table.reshape(-1) if table.ndim else table.reshape(1)
        return out
    if not isinstance(table, Table):
        raise InputError(f"make_cutouts needs an astropy Table (or a SkyCoord) of sources, "
                         f"not a {type(table).__name__}.")
    return QTable(table, copy=True)


def _parse_size(size, image):
    if isinstance(size, str):
        if size != "bbox":
            raise InputError(f"size must be an int, (ny, nx), an angle or 'bbox'; got {size!r}.")
        return "bbox", None
    if isinstance(size, u.Quantity):
        if image is None or image.wcs is None:
            raise InputError("An angular size needs an image with a WCS; give the size in "
                             "pixels.")
        try:
            pix = (size / image.pixel_scale).to_value(u.dimensionless_unscaled)
        except u.UnitConversionError:
            raise InputError(f"size {size} is neither pixels nor an angle.") from None
        pix = np.atleast_1d(np.ceil(pix - 1e-9).astype(int))
        size = tuple(int(p) for p in pix) if pix.size == 2 else int(pix[0])
    if np.ndim(size) == 0:
        size = (size, size)
    try:
        ny, nx = (int(s) for s in size)
        ok = all(float(s) == int(s) and not isinstance(s, (bool, np.bool_)) for s in size)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok or ny <= 0 or nx <= 0:
        raise InputError(f"size must be a positive int or (ny, nx) pair of them; got {size!r}.")
    return "fixed", (ny, nx)


def _check_numbers(fill, pad, min_size, workers):
    """InputErrors naming the argument for numbers of the wrong type or range."""
    from ..utils.checks import check_number
    check_number(fill, "fill", "a number (NaN by default)", lambda v: True)
    check_number(pad, "pad", "a non-negative int (pixels) or float (fraction of the bbox side)",
                 lambda v: 0 <= v < np.inf)
    check_number(min_size, "min_size", "None or a positive whole number of pixels",
                 lambda v: v >= 1, integer=True, none=True)
    check_number(workers, "workers", "None or a positive integer", lambda v: v >= 1, integer=True,
                 none=True)


def _parse_output_size(output_size, mode):
    if output_size is None:
        if mode == "bbox":
            raise InputError("size='bbox' makes crops of different sizes: give output_size "
                             "(e.g. output_size=64) to resize them to one.")
        return None
    mode_out, shape = _parse_size(output_size, None)
    if mode_out != "fixed":
        raise InputError(f"output_size must be an int or (ny, nx); got {output_size!r}.")
    if mode == "bbox" and shape[0] != shape[1]:
        raise InputError(f"Close crops are square: output_size must be square, not {shape}.")
    return shape


def _column_values(table, name):
    col = table[name]
    if hasattr(col, "filled"):
        col = col.filled(np.nan) if col.dtype.kind == "f" else col
    return col


def _positions(image, table, xy, sky, required):
    """Pixel positions (x, y) of the table's sources, or (None, None)."""
    if xy is not None:
        pos = parse_positions(table, xy, kind="pixel", argument="xy")
    elif sky is not None:
        pos = parse_positions(table, sky, kind="sky", argument="sky")
    else:  # x, y first, then sky positions
        pos = parse_positions(table, kind="any", argument="xy= or sky", required=required)
        if pos is None:
            return None, None
    if pos.kind == "sky":
        return _sky_columns(image, table, pos)
    _check_finite(table, pos.x, pos.y, what=pos.describe())
    return pos.x, pos.y


def _sky_columns(image, table, pos):
    """Pixel positions of sky positions (a `~astrofmtools.schema.Positions`), through the WCS."""
    wcs = image.require_wcs(f"Sky positions ({pos.describe()})")
    if len(table) == 0:
        return np.empty(0), np.empty(0)
    x, y = pos.pixels(wcs)
    _check_finite(table, x, y, what=f"the positions from {pos.describe()} converted with the "
                  f"WCS of {image.source}")
    return x, y


def _check_finite(table, x, y, what):
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        rows = np.flatnonzero(bad)
        shown = ", ".join(str(r) for r in rows[:10]) + (" ..." if len(rows) > 10 else "")
        raise InputError(f"{len(rows)} row(s) have no finite pixel position in {what}: rows "
                         f"{shown}. Remove them (or fill them) before cutting.")


def _bbox_cutouts(image, table, out_shape, pad, min_size, fill):
    n = len(table)
    xmin, xmax, ymin, ymax = (np.asarray(_column_values(table, c)) for c in _BBOX)
    for name, col in zip(_BBOX, (xmin, xmax, ymin, ymax)):
        if n and (col.dtype.kind not in "iuf" or not np.isfinite(col.astype(float)).all()):
            raise InputError(f"Column {name!r} must hold finite pixel indices.")
    xmin, xmax, ymin, ymax = (np.rint(c).astype(np.int64) for c in (xmin, xmax, ymin, ymax))
    w = xmax - xmin + 1
    h = ymax - ymin + 1
    if n and ((w <= 0).any() or (h <= 0).any()):
        rows = np.flatnonzero((w <= 0) | (h <= 0))[:10]
        raise InputError(f"bbox_xmax < bbox_xmin or bbox_ymax < bbox_ymin in rows "
                         f"{', '.join(map(str, rows))}.")
    side = np.maximum(w, h)
    if isinstance(pad, (bool, np.bool_)) or not np.isscalar(pad) or pad < 0:
        raise InputError(f"pad must be a non-negative int (pixels) or float (fraction of the "
                         f"bbox side); got {pad!r}.")
    if isinstance(pad, (int, np.integer)):
        margin = np.full(n, int(pad), dtype=np.int64)
    else:
        margin = np.ceil(side * float(pad) - 1e-9).astype(np.int64)
    crop = side + 2 * margin
    if min_size is not None:
        crop = np.maximum(crop, int(min_size))
    x0 = xmin - (crop - w) // 2
    y0 = ymin - (crop - h) // 2
    oy, ox = out_shape
    arrays = _image_arrays(image)
    data = np.empty((n,) + image.shape[:-2] + (oy, ox), dtype=np.float32)
    edge = np.zeros(n, dtype=bool)
    for k in progress(range(n), desc="cropping", unit="source", total=n):
        L = int(crop[k])
        cut, flag = _gather(arrays, x0[k:k + 1], y0[k:k + 1], L, L, fill)
        edge[k] = flag[0]
        data[k] = cut[0] if (L, L) == (oy, ox) else resize(cut[0], (oy, ox))
    return data, x0, y0, crop / oy, edge


def _add_cutout_columns(table, x0, y0, scale, x, y, edge, parent):
    n = len(table)
    scale = np.asarray(scale, dtype=float)
    values = {
        "cutout_x0": np.asarray(x0, dtype=np.int64),
        "cutout_y0": np.asarray(y0, dtype=np.int64),
        "cutout_scale": scale,
        "cutout_x": (np.asarray(x, float) - x0 + 0.5) / scale - 0.5,
        "cutout_y": (np.asarray(y, float) - y0 + 0.5) / scale - 0.5,
        "edge": np.asarray(edge, dtype=bool),
        "cutout_parent": np.broadcast_to(np.asarray(parent, dtype=np.int64), (n,)).copy(),
    }
    for name, value in values.items():
        table[name] = value
        table[name].info.description = CUTOUT_COLUMNS[name][2]
