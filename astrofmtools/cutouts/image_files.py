# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Cutout stacks from picture files (PNG, JPEG, TIFF) and tables joined to stamp files."""

from pathlib import Path

import numpy as np
import astropy.units as u
from astropy.coordinates import SkyCoord
from astropy.table import QTable

from ..exceptions import InputError
from ..utils import progress, provenance
from .stack import CutoutParent, CutoutStack

__all__ = ["IMAGE_SUFFIXES", "cutouts_from_images", "join_by_file"]

#: The picture files `cutouts_from_images` reads (Pillow).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def _image_files(paths):
    """The picture files that paths name: files, folders (sorted) or glob patterns."""
    from ..io import named_files
    files = named_files(paths, IMAGE_SUFFIXES, "picture")
    if not files:
        raise InputError("No picture file given.")
    return files


def _read_picture(path):
    """A picture as float32 ``(H, W)`` (grey) or ``(3, H, W)`` (colour), first row at the
    bottom (the FITS and ``origin='lower'`` convention)."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            mode = im.mode
            if mode in ("1", "L", "I", "I;16", "I;16B", "I;16L", "F"):
                data = np.asarray(im.convert("F") if mode == "1" else im, dtype=np.float32)
            else:  # RGB, RGBA, P, LA, CMYK...: three colour channels, alpha dropped
                data = np.moveaxis(np.asarray(im.convert("RGB"), dtype=np.float32), -1, 0)
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"Cannot read {str(path)!r} as a picture "
                         f"({', '.join(IMAGE_SUFFIXES)}): {exc}") from None
    return np.ascontiguousarray(data[..., ::-1, :])


def _tan_wcs(shape, centre, scale_deg):
    """A TAN WCS of an image of ``shape`` with ``centre`` (ICRS) at its central pixel."""
    from astropy.wcs import WCS
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [centre.ra.deg, centre.dec.deg]
    wcs.wcs.crpix = [(shape[-1] + 1) / 2, (shape[-2] + 1) / 2]  # 1-based centre
    wcs.wcs.cdelt = [-scale_deg, scale_deg]  # east to the left, north up
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.radesys = "ICRS"
    return wcs


def cutouts_from_images(paths, pixel_scale=None, size=None, *, sky=None, fill=np.nan):
    """
    A stack from picture files (PNG, JPEG, TIFF) that each hold one centred source.

    Survey viewers (the Legacy Survey, SDSS, Galaxy Zoo) hand out colour
    JPEG or PNG postage stamps; this reads them as cutouts, a grey picture as
    one channel and a colour one as three (``R``, ``G``, ``B``; alpha left
    out), with a sky WCS when the pixel scale and the centre of each are
    known.

    Parameters
    ----------
    paths : str, `~pathlib.Path` or list of them
        The files; or a folder (its ``.png``, ``.jpg``, ``.jpeg``,
        ``.tif``, ``.tiff`` files, sorted by name); or a glob pattern.
    pixel_scale : `~astropy.units.Quantity` or float, optional
        The side of a pixel: an angle, or a number of arcseconds. Recorded
        in the ``pixel_scale`` column; with ``sky`` it makes each picture's
        WCS.
    size : int or (int, int), optional
        Crop (or pad with ``fill``) every picture to this size around its
        centre (the centre convention of `~astrofmtools.cutouts.make_cutouts`).
        By default all pictures must have the same shape.
    sky : `~astropy.coordinates.SkyCoord`, optional
        The sky position of each picture's centre, one per file in order.
        With ``pixel_scale`` each picture gets a TAN WCS (north up, east
        left), so cutouts map back to the sky like those of a FITS image.
    fill : float, optional
        Value of padded pixels.

    Returns
    -------
    stack : `~astrofmtools.cutouts.CutoutStack`
        One cutout per file, in order: ``data`` (N, H, W) for grey
        pictures, (N, 3, H, W) for colour ones (bands ``R``, ``G``, ``B``),
        pixel values as stored (0-255 for 8-bit files), the picture's top
        row last (row 0 is the bottom, as in FITS). ``table`` columns:
        ``file``, ``x``, ``y`` (the picture centre, 0-based pixels),
        ``pixel_scale`` (arcsec, with ``pixel_scale``), ``ra``, ``dec`` and
        ``sky_centroid`` (with ``sky``), and the cutout columns of
        `~astrofmtools.cutouts.make_cutouts`. Each file is a parent of the
        stack.

    Raises
    ------
    astrofmtools.InputError
        If a file cannot be read (the message names it), grey and colour
        pictures are mixed, the shapes differ without ``size``, ``sky``
        does not hold one position per file, or ``pixel_scale`` is not a
        positive angle.

    Examples
    --------
    >>> import numpy as np
    >>> import astropy.units as u
    >>> from astropy.coordinates import SkyCoord
    >>> from PIL import Image
    >>> from astrofmtools.cutouts import cutouts_from_images
    >>> rgb = np.zeros((40, 40, 3), dtype=np.uint8)
    >>> rgb[20, 20] = 255
    >>> Image.fromarray(rgb).save("stamp.png")
    >>> stack = cutouts_from_images(["stamp.png"], pixel_scale=0.262 * u.arcsec,
    ...                             sky=SkyCoord([150.1], [2.2], unit="deg"))
    >>> stack
    <CutoutStack: 1 cutout of 40x40 x 3 bands (R, G, B) from stamp.png>
    >>> print(stack.wcs_of(0).proj_plane_pixel_scales()[0].to(u.arcsec))
    0.262 arcsec
    """
    from .core import _add_cutout_columns, _stamp_shape
    from .pixels import _gather
    from ..io import SkyImage

    files = _image_files(paths)
    n = len(files)
    scale = None
    if pixel_scale is not None:
        scale = pixel_scale if isinstance(pixel_scale, u.Quantity) else pixel_scale * u.arcsec
        try:
            scale = scale.to(u.arcsec)
        except u.UnitConversionError:
            scale = None
        if scale is None or not scale.isscalar or not (0 < scale.value < np.inf):
            raise InputError(f"pixel_scale must be a positive angle or number of arcsec, not "
                             f"{pixel_scale!r}.")
    if sky is not None:
        if not isinstance(sky, SkyCoord):
            raise InputError(f"sky must be a SkyCoord (one per file), not "
                             f"{type(sky).__name__}.")
        sky = sky.reshape(-1) if sky.ndim else sky.reshape(1)
        if len(sky) != n:
            raise InputError(f"sky holds {len(sky)} positions for {n} picture files; give one "
                             "per file, in order.")
        sky = sky.icrs
    pictures = [_read_picture(f) for f in progress(files, desc="reading pictures",
                                                   unit="file")]
    kinds = {p.ndim for p in pictures}
    if len(kinds) > 1:
        grey = [str(f) for f, p in zip(files, pictures) if p.ndim == 2][:3]
        raise InputError(f"Grey and colour pictures are mixed (grey: {', '.join(grey)} ...); "
                         "make one stack of each.")
    ny, nx = _stamp_shape(files, [p.shape for p in pictures], size, "pictures",
                          "cutouts_from_images")
    colour = kinds == {3}
    shape = (n, 3, ny, nx) if colour else (n, ny, nx)
    data = np.empty(shape, dtype=np.float32)
    x, y = np.empty(n), np.empty(n)
    x0, y0 = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    edge = np.zeros(n, dtype=bool)
    parents = []
    for k, (path, picture) in enumerate(zip(files, pictures)):
        x[k] = (picture.shape[-1] - 1) / 2
        y[k] = (picture.shape[-2] - 1) / 2
        x0[k] = int(np.floor(x[k] + 0.5)) - nx // 2
        y0[k] = int(np.floor(y[k] + 0.5)) - ny // 2
        cut, flag = _gather((picture, None, None), x0[k:k + 1], y0[k:k + 1], ny, nx, fill)
        data[k], edge[k] = cut[0], flag[0]
        wcs = None
        if sky is not None and scale is not None:
            wcs = _tan_wcs(picture.shape, sky[k], scale.to_value(u.deg))
        parents.append(CutoutParent.from_image(SkyImage(
            picture, wcs=wcs, source=str(path), bands=["R", "G", "B"] if colour else None)))
    table = QTable(meta=provenance(stage="cutouts_from_images", n_files=n,
                                   size=[int(ny), int(nx)],
                                   pixel_scale_arcsec=None if scale is None else
                                   float(scale.value)))
    table["file"] = [str(f) for f in files]
    table["file"].info.description = "the picture file the cutout comes from"
    table["x"] = x
    table["x"].info.description = "picture centre x in the file (0-based pixel, from the bottom)"
    table["y"] = y
    table["y"].info.description = "picture centre y in the file (0-based pixel, from the bottom)"
    if scale is not None:
        table["pixel_scale"] = np.full(n, scale.value) * u.arcsec
        table["pixel_scale"].info.description = "side of a picture pixel"
    if sky is not None:
        table["ra"] = sky.ra.to(u.deg)
        table["ra"].info.description = "right ascension (ICRS) of the picture centre"
        table["dec"] = sky.dec.to(u.deg)
        table["dec"].info.description = "declination (ICRS) of the picture centre"
        table["sky_centroid"] = SkyCoord(sky.ra, sky.dec, frame="icrs")
        table["sky_centroid"].info.description = "sky position (ICRS) of the picture centre"
    _add_cutout_columns(table, x0, y0, np.ones(n), x, y, edge, parent=np.arange(n))
    return CutoutStack(data, table, parents, None, bands=["R", "G", "B"] if colour else None,
                       band_units=[None] * 3 if colour else None)


def join_by_file(files, table, name="the table"):
    """
    The rows of a table that go with each stamp file: by a ``file`` column, or in order.

    Parameters
    ----------
    files : list of str or `~pathlib.Path`
        The stamp files, in the order of the stack.
    table : `~astropy.table.Table`
        One row per file: with a ``file`` column (a file name, or a path:
        matched on the name alone), or row-aligned with ``files``.
    name : str, optional
        How messages call the table (its file name).

    Returns
    -------
    rows : `~astropy.table.QTable`
        ``table``'s rows in the order of ``files``, one per file.

    Raises
    ------
    astrofmtools.InputError
        When a file has no row, or several, or (without a ``file`` column)
        the numbers of rows and files differ.

    Examples
    --------
    >>> from astropy.table import QTable
    >>> from astrofmtools.cutouts import join_by_file
    >>> table = QTable({"file": ["b.png", "a.png"], "class": ["spiral", "elliptical"]})
    >>> join_by_file(["stamps/a.png", "stamps/b.png"], table)["class"].tolist()
    ['elliptical', 'spiral']
    """
    table = QTable(table, copy=False)
    files = [Path(str(f)).name for f in files]
    if "file" not in table.colnames:
        if len(table) != len(files):
            raise InputError(f"{name} has {len(table)} rows for {len(files)} stamp files; give "
                             "it a 'file' column (the file names) or one row per file, in the "
                             "files' order (sorted by name for a folder).")
        return table
    keys = [Path(str(v).strip()).name for v in table["file"]]
    index = {}
    for row, key in enumerate(keys):
        index.setdefault(key, []).append(row)
    missing = [f for f in files if f not in index]
    twice = sorted({f for f in files if len(index.get(f, ())) > 1})
    if missing or twice:
        what = (f"no row for {len(missing)} file(s): {', '.join(missing[:5])}"
                f"{' ...' if len(missing) > 5 else ''}" if missing else
                f"several rows for {', '.join(twice[:5])}")
        raise InputError(f"{name}: its 'file' column has {what}.")
    return QTable(table[[index[f][0] for f in files]], copy=True) if files else table[:0]
