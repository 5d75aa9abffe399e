# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Several surveys or filters on one pixel grid: reproject each image onto a
reference grid (`load_bands`) or co-add tiles of one survey (`mosaic`).

The resampling itself is the `reproject <https://reproject.readthedocs.io>`_
package's; this module parses every input kind, checks WCS and overlap,
keeps each band's unit and beam and turns footprints into masks.
"""

import os
from pathlib import Path

import numpy as np
import astropy.units as u
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import pixel_to_pixel

from ..exceptions import InputError
from .image import SkyImage
from .load import load_image

__all__ = ["load_bands", "mosaic", "REPROJECT_METHODS"]

#: The resampling methods of `load_bands` and `mosaic`, each a function of
#: the reproject package: ``interp`` (bilinear interpolation, fast),
#: ``exact`` (spherical-polygon overlaps, flux-conserving, slowest) and
#: ``adaptive`` (DeForest 2004 anti-aliased resampling).
REPROJECT_METHODS = ("interp", "exact", "adaptive")

_FITS_SUFFIXES = (".gz", ".fz", ".bz2", ".fits", ".fit", ".fts")
_NAME_KEYWORDS = ("FILTER", "SURVEY", "BAND")


def _reproject_function(method):
    if method not in REPROJECT_METHODS:
        raise InputError(f"Unknown reprojection method {method!r}; the known ones are "
                         f"{', '.join(repr(m) for m in REPROJECT_METHODS)}.")
    import reproject
    return getattr(reproject, f"reproject_{method}")


#: Units whose presence makes a pixel value an amount per pixel.
_PER_PIXEL_BASES = (u.count, u.adu, u.electron, u.DN, u.photon, u.pix, u.mgy)
#: Fluxes without a per-area unit: the flux that falls in one pixel.
_FLUXES = (u.Jy, u.erg / u.s / u.cm**2 / u.AA, u.W / u.m**2)


def _is_per_pixel(unit):
    """
    Whether pixel values in ``unit`` are amounts per pixel, to be scaled by
    the pixel-area ratio: counts, ADU, electrons, DN, photons (and rates of
    them), maggies, ``x/pix``, and fluxes without an area (Jy, erg/s/cm2/Å,
    W/m2). Surface brightness (per beam, per solid angle, brightness
    temperature), magnitudes, other units and no unit are not.
    """
    if unit is None:
        return False
    unit = u.Unit(unit)
    for base, power in zip(unit.bases, unit.powers):
        if base == u.beam or base == u.mag:
            return False
        kind = base.physical_type
        if kind == "temperature" or (kind in ("angle", "solid angle") and power < 0):
            return False
    if any(base.is_equivalent(b) for base in unit.bases for b in _PER_PIXEL_BASES):
        return True
    return any(unit.is_equivalent(flux) for flux in _FLUXES)


def _stem(item):
    if not isinstance(item, (str, os.PathLike)):
        return None
    name = Path(item).name
    while True:
        lower = name.lower()
        for suffix in _FITS_SUFFIXES:
            if lower.endswith(suffix) and len(name) > len(suffix):
                name = name[: -len(suffix)]
                break
        else:
            return name or None


def _header_name(image):
    if image.header is None:
        return None
    for key in _NAME_KEYWORDS:
        value = str(image.header.get(key, "")).strip()
        if value:
            return value
    return None


def _as_list(images, what):
    single = (str, os.PathLike, SkyImage, fits.HDUList, fits.PrimaryHDU, fits.ImageHDU,
              fits.CompImageHDU)
    if isinstance(images, single) or (isinstance(images, tuple) and len(images) == 2
                                      and isinstance(images[0], np.ndarray)):
        images = [images]
    try:
        images = list(images)
    except TypeError:
        raise InputError(f"{what} takes a list of images (file names, HDUs, (array, WCS) "
                         f"pairs or SkyImages), not a {type(images).__name__}.") from None
    if not images:
        raise InputError(f"{what} needs at least one image; the list is empty.")
    return images


def _load_all(items, hdu, what):
    """Load every input as a 2-D SkyImage with a celestial WCS, naming failures."""
    loaded, no_wcs = [], []
    for i, item in enumerate(items):
        try:
            image = load_image(item, hdu=hdu) if not isinstance(item, SkyImage) else item
        except InputError as exc:
            raise type(exc)(f"{what}: images[{i}]: {exc}") from None
        if image.bands is not None:
            if image.n_bands != 1:
                raise InputError(
                    f"{what}: images[{i}] ({image.source}) is already a multi-band image "
                    f"with {image.n_bands} bands ({', '.join(image.bands)}); pass its bands "
                    "one by one, e.g. image.band(0), image.band(1).")
            image = image.band(0)
        if image.wcs is None:
            no_wcs.append(f"images[{i}] ({image.source})")
        loaded.append(image)
    if no_wcs:
        raise InputError(f"{what} needs a celestial WCS for every image, and "
                         f"{' and '.join(no_wcs)} "
                         f"{'has' if len(no_wcs) == 1 else 'have'} none (no CTYPE1/CTYPE2 "
                         "sky axes in the header).")
    return loaded


def _band_names(items, images, names):
    n = len(images)
    if names is not None:
        names = [names] if isinstance(names, str) else list(names)
        if len(names) != n:
            raise InputError(f"names has {len(names)} entries for {n} images.")
        names = [str(name) for name in names]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise InputError(f"Band names must be unique; repeated: {', '.join(duplicates)}.")
        return names
    names = []
    for i, (item, image) in enumerate(zip(items, images)):
        names.append(_stem(item) or _header_name(image) or f"band{i}")
    # Two FIRST cutouts, say: keep the first name, number the repeats.
    seen = {}
    unique = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        unique.append(name if count == 0 else f"{name}_{count + 1}")
    return unique


def _parse_reference(reference, items, images, hdu):
    """(wcs, shape, index or None, description) of the output grid."""
    if isinstance(reference, (bool, np.bool_)):
        raise InputError(f"reference must be an index, an image or a (WCS, shape) pair, "
                         f"not {reference!r}.")
    if isinstance(reference, (int, np.integer)):
        n = len(images)
        if not -n <= reference < n:
            raise InputError(f"reference={reference} is not an index into the {n} images.")
        index = int(reference) % n
        image = images[index]
        return image.wcs, image.shape[-2:], index, f"images[{index}] ({image.source})"
    for index, item in enumerate(items):
        if reference is item:
            return images[index].wcs, images[index].shape[-2:], index, \
                f"images[{index}] ({images[index].source})"
    if isinstance(reference, tuple) and len(reference) == 2 and isinstance(reference[0], WCS):
        wcs, shape = reference
        if not wcs.has_celestial:
            raise InputError("The reference WCS has no celestial axes.")
        try:
            shape = tuple(int(s) for s in shape)[-2:]
        except TypeError:
            raise InputError(f"The reference shape must be (ny, nx), not {shape!r}.") from None
        if len(shape) != 2 or min(shape) < 1:
            raise InputError(f"The reference shape must be (ny, nx), not {reference[1]!r}.")
        return wcs.celestial, shape, None, "the given (WCS, shape)"
    try:
        image = load_image(reference, hdu=hdu)
    except InputError as exc:
        raise type(exc)(f"reference: {exc}") from None
    if image.wcs is None:
        raise InputError(f"The reference image {image.source} has no celestial WCS (no "
                         "CTYPE1/CTYPE2 sky axes), so it cannot define the output grid.")
    return image.wcs, image.shape[-2:], None, image.source


def _edge_samples(shape, n_samples):
    """Pixel positions ``(x, y)`` along the outer edges of an array of ``shape``."""
    ny, nx = shape
    xs = np.linspace(-0.5, nx - 0.5, n_samples)
    ys = np.linspace(-0.5, ny - 0.5, n_samples)
    x = np.concatenate([xs, xs, np.full(n_samples, -0.5), np.full(n_samples, nx - 0.5)])
    y = np.concatenate([np.full(n_samples, -0.5), np.full(n_samples, ny - 0.5), ys, ys])
    return x, y


def _to_pixels(wcs_a, wcs_b, x, y):
    """
    Pixels of grid ``a`` on grid ``b``, and whether each transform is valid:
    finite, and back on grid ``a`` within a pixel (points on the far side of
    the sky have no place in most projections).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        bx, by = (np.asarray(v, float) for v in pixel_to_pixel(wcs_a, wcs_b, x, y))
        ax, ay = (np.asarray(v, float) for v in pixel_to_pixel(wcs_b, wcs_a, bx, by))
        ok = np.isfinite(bx) & np.isfinite(by) & (np.hypot(ax - x, ay - y) < 1)
    return bx, by, ok


def _inside(x, y, shape):
    return (x > -0.5) & (x < shape[1] - 0.5) & (y > -0.5) & (y < shape[0] - 0.5)


def _overlap_box(wcs_in, shape_in, wcs_out, shape_out, n_samples=33, pad=2):
    """
    The output-pixel box ``(slice_y, slice_x)`` that the input image can
    reach, from its edges transformed into the output grid (as
    `reproject.mosaicking.reproject_and_coadd` does per tile), or None when
    the two do not overlap. When some edges have no valid coordinates on the
    output grid (an all-sky input, or one on the far side of the sky), the
    whole output is returned if any sample of either grid falls on the
    other, and None otherwise.
    """
    ny_out, nx_out = shape_out
    full = (slice(0, ny_out), slice(0, nx_out))
    ex, ey = _edge_samples(shape_in, n_samples)
    ox, oy, ok = _to_pixels(wcs_in, wcs_out, ex, ey)
    if ok.all():
        x0 = max(0, int(np.floor(ox.min() + 0.5)) - pad)
        x1 = min(nx_out, int(np.ceil(ox.max() + 0.5)) + pad)
        y0 = max(0, int(np.floor(oy.min() + 0.5)) - pad)
        y1 = min(ny_out, int(np.ceil(oy.max() + 0.5)) + pad)
        if x1 <= x0 or y1 <= y0:
            return None
        return slice(y0, y1), slice(x0, x1)
    if (ok & _inside(ox, oy, shape_out)).any():
        return full
    gy, gx = (g.ravel() for g in np.meshgrid(np.linspace(-0.5, ny_out - 0.5, n_samples),
                                             np.linspace(-0.5, nx_out - 0.5, n_samples),
                                             indexing="ij"))
    ix, iy, ok = _to_pixels(wcs_out, wcs_in, gx, gy)
    return full if (ok & _inside(ix, iy, shape_in)).any() else None


def _area_ratio(wcs_out, wcs_in, box, rows=256):
    """
    The pixel-area ratio (output / input) at each output pixel of ``box``:
    the Jacobian determinant of the output-to-input pixel mapping, by
    central differences, so that it holds for any projection and frame.
    Computed ``rows`` rows at a time to bound memory.
    """
    ys, xs = box
    ratio = np.empty((ys.stop - ys.start, xs.stop - xs.start), dtype=np.float32)
    x = np.arange(xs.start, xs.stop, dtype=float)
    for start in range(ys.start, ys.stop, rows):
        gx, gy = np.meshgrid(x, np.arange(start, min(start + rows, ys.stop), dtype=float))
        with np.errstate(invalid="ignore", divide="ignore"):
            x1, y1 = pixel_to_pixel(wcs_out, wcs_in, gx + 0.5, gy)
            x0, y0 = pixel_to_pixel(wcs_out, wcs_in, gx - 0.5, gy)
            x3, y3 = pixel_to_pixel(wcs_out, wcs_in, gx, gy + 0.5)
            x2, y2 = pixel_to_pixel(wcs_out, wcs_in, gx, gy - 0.5)
        det = (x1 - x0) * (y3 - y2) - (y1 - y0) * (x3 - x2)
        ratio[start - ys.start:start - ys.start + gx.shape[0]] = np.abs(det)
    return ratio


def _pixels(image):
    """The image's pixels with its no-data mask set to NaN (no copy when possible)."""
    data = image.data
    if image.mask is not None and np.any(image.mask):
        data = np.where(image.mask, np.nan, data)
    return data


def _conserve_list(conserve_flux, images):
    n = len(images)
    if conserve_flux is None or isinstance(conserve_flux, (bool, np.bool_)):
        values = [conserve_flux] * n
    else:
        try:
            values = list(conserve_flux)
        except TypeError:
            raise InputError(f"conserve_flux must be None, True, False or one of these per "
                             f"image, not {conserve_flux!r}.") from None
        if len(values) != n:
            raise InputError(f"conserve_flux has {len(values)} entries for {n} images.")
    return [_is_per_pixel(image.unit) if value is None else bool(value)
            for value, image in zip(values, images)]


def _shared(values):
    first = values[0]
    if first is None or any(v is None for v in values):
        return None
    return first if all(v == first for v in values[1:]) else None


def load_bands(images, reference=0, method="interp", names=None, hdu=None, block_size=None,
               parallel=False, conserve_flux=None):
    """
    Reproject several images of one sky region onto one grid, as bands.

    Every image is resampled onto the reference's celestial WCS and shape
    with the `reproject <https://reproject.readthedocs.io>`_ package; the
    result is one ``(C, H, W)`` image whose channels are named, each with
    its own unit, beam and footprint. Radio and infrared cutouts, or the
    g, r, i images of an optical survey, become the channels a vision
    model takes.

    Parameters
    ----------
    images : list
        The images: anything `~astrofmtools.io.load_image` takes (file
        names, HDU lists, HDUs, ``(array, WCS)`` pairs, NDData,
        `~astrofmtools.io.SkyImage`). Each needs a celestial WCS and a
        single 2-D plane.
    reference : int, image or tuple, optional
        The output grid: an index into ``images`` (default: the first),
        another image (any `~astrofmtools.io.load_image` input; its WCS and
        shape are used, its pixels are not) or a ``(WCS, (ny, nx))`` pair.
        The reference band itself is copied, not resampled.
    method : {'interp', 'exact', 'adaptive'}, optional
        `~reproject.reproject_interp` (bilinear; fast; fine when the output
        pixels are no larger than the input's), `~reproject.reproject_exact`
        (area-weighted spherical-polygon overlaps; the choice for counts and
        for coarser output pixels) or `~reproject.reproject_adaptive`
        (anti-aliased; for coarser output pixels, faster than ``exact``).
    names : list of str, optional
        The band names. By default each band is named after its file (the
        name without ``.fits``/``.gz``), else its header's ``FILTER``,
        ``SURVEY`` or ``BAND`` keyword, else ``band0``, ``band1``...;
        repeated default names get ``_2``, ``_3``... Given names must be
        unique.
    hdu : int or str, optional
        The HDU to read from each file or HDU list (default: the first with
        image data).
    block_size : tuple of int or 'auto', optional
        Reproject in blocks of this many output pixels ``(ny, nx)`` so that
        memory stays bounded for large mosaics (passed to reproject, which
        uses dask).
    parallel : bool or int, optional
        Reproject the blocks in parallel (True: all cores; an int: that
        many threads).
    conserve_flux : bool or list of bool, optional
        Scale pixel values by the pixel-area ratio (output / input) so that
        each band's total is conserved, for images whose values are amounts
        per pixel. By default (None) this is decided per band from its
        unit; see Notes. One value for all bands or one per band.

    Returns
    -------
    image : `~astrofmtools.io.SkyImage`
        ``data``: ``(C, H, W)`` float32, NaN outside each band's footprint;
        ``wcs``: the reference's celestial WCS; ``bands``: the names;
        ``band_units`` and ``band_beams``: each input's unit and beam
        (``unit`` and ``beam`` are set when all bands share them); ``mask``
        ``(C, H, W)``: True where the band has no data (footprint 0 or NaN);
        ``meta['footprint']``: ``(C, H, W)`` float32 coverage from reproject
        (0 to 1; fractional at the edges with ``exact``);
        ``meta['bands_sources']``: where each band came from;
        ``meta['method']``, ``meta['reference']`` and
        ``meta['conserve_flux']`` (bool per band).

    Raises
    ------
    astrofmtools.InputError
        For an unreadable input, an input without a celestial WCS, a
        multi-band or 3-D input, images that do not overlap the reference
        grid (each named), an unknown method or repeated band names.

    Notes
    -----
    **Surface brightness or amount per pixel.** Interpolation keeps pixel
    values, which is right for surface brightness: Jy/beam (radio), MJy/sr,
    Jy/arcsec², brightness temperature (K). A beam is an angle, so a
    Jy/beam band keeps its beam on the new pixels. Values that are amounts
    per pixel must instead be multiplied by the ratio of pixel areas; this
    is done (``conserve_flux=None``) for counts, ADU, electrons, DN,
    photons, rates of these, nanomaggies, ``x/pix`` and fluxes without an
    area (Jy, erg/s/cm²/Å, W/m²). Images without a unit are *not* scaled,
    as reproject does not scale them: a missing ``BUNIT`` says nothing
    about the values (and maps of ratios, indices or weights have none);
    pass ``conserve_flux=True`` for counts images that lack ``BUNIT``.
    Magnitudes and other units are never scaled by default.
    The ratio is computed at every output pixel (the Jacobian determinant
    of the mapping between the two pixel grids), so it holds for any pair
    of projections. With ``exact`` the counts are then conserved to
    numerical precision (a partly covered edge pixel counts only the
    covered part); with ``interp`` to the accuracy of interpolation;
    ``adaptive`` scales by its own Jacobian (reproject's
    ``conserve_flux``).

    **Resolution.** Reprojection does not match resolutions: each band keeps
    its beam (``band_beams``). Smooth the sharper bands first (for instance
    with `astropy.convolution`) when a method needs matched beams.

    Examples
    --------
    A radio image and an "infrared" image of the same sky on another,
    rotated grid with a finer pixel scale:

    >>> import numpy as np
    >>> from astropy.wcs import WCS
    >>> from astrofmtools.datasets import example_image_path
    >>> from astrofmtools.io import load_bands
    >>> ir_wcs = WCS(naxis=2)
    >>> ir_wcs.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    >>> ir_wcs.wcs.crval = [216.014, 0.499431]  # the FIRST image's centre
    >>> ir_wcs.wcs.crpix = [200.5, 200.5]
    >>> c, s = np.cos(np.radians(30)) / 3600, np.sin(np.radians(30)) / 3600  # 1"/px, 30 deg
    >>> ir_wcs.wcs.cd = [[-c, s], [s, c]]
    >>> ir = np.random.default_rng(0).normal(size=(400, 400))
    >>> stack = load_bands([example_image_path(), (ir, ir_wcs)], names=["radio", "ir"])
    >>> stack.shape, stack.bands, stack.band_units
    ((2, 300, 300), ['radio', 'ir'], [Unit("Jy / beam"), None])
    >>> stack.band("radio").beam.major.to("arcsec")
    <Quantity 5.4 arcsec>
    >>> stack.mask.mean(axis=(1, 2)).round(2)  # no data: outside the rotated "infrared" image
    array([0.  , 0.45])
    """
    what = "load_bands"
    items = _as_list(images, what)
    function = _reproject_function(method)
    loaded = _load_all(items, hdu, what)
    band_names = _band_names(items, loaded, names)
    wcs_out, shape_out, ref_index, ref_text = _parse_reference(reference, items, loaded, hdu)
    conserve = _conserve_list(conserve_flux, loaded)

    boxes, outside = [], []
    for i, image in enumerate(loaded):
        box = (slice(0, shape_out[0]), slice(0, shape_out[1])) if i == ref_index else \
            _overlap_box(image.wcs, image.shape, wcs_out, shape_out)
        if box is None:
            outside.append(f"images[{i}] ({image.source}, band {band_names[i]!r})")
        boxes.append(box)
    _raise_outside(outside, ref_text)

    n = len(loaded)
    data = np.full((n,) + tuple(shape_out), np.nan, dtype=np.float32)
    footprint = np.zeros((n,) + tuple(shape_out), dtype=np.float32)
    for i, (image, box) in enumerate(zip(loaded, boxes)):
        if i == ref_index:
            data[i] = _pixels(image)
            footprint[i] = np.isfinite(data[i])
            continue
        kwargs = {"block_size": block_size, "parallel": parallel}
        if method == "adaptive":
            kwargs["conserve_flux"] = conserve[i]
        sub_shape = (box[0].stop - box[0].start, box[1].stop - box[1].start)
        array, cover = function((_pixels(image), image.wcs), wcs_out[box], shape_out=sub_shape,
                                **kwargs)
        array = np.asarray(array)
        cover = np.asarray(cover)
        if conserve[i] and method != "adaptive":
            array = array * _area_ratio(wcs_out, image.wcs, box)
            if method == "exact":
                array = array * cover  # exact averages over the covered part only
        data[i][box] = array
        footprint[i][box] = cover
    bad = ~np.isfinite(data) | (footprint <= 0)
    data[bad] = np.nan
    outside = [f"images[{i}] ({image.source}, band {band_names[i]!r})"
               for i, image in enumerate(loaded) if bad[i].all()]
    _raise_outside(outside, ref_text, after=True)

    wcs = wcs_out.deepcopy()
    wcs.array_shape = tuple(shape_out)
    units = [image.unit for image in loaded]
    beams = [image.beam for image in loaded]
    sources = [image.source for image in loaded]
    meta = {"footprint": footprint, "bands_sources": sources, "method": method,
            "reference": ref_text, "conserve_flux": conserve}
    return SkyImage(data, wcs=wcs, unit=_shared(units), mask=bad, beam=_shared(beams),
                    source=f"load_bands({', '.join(band_names)})",
                    meta=meta, bands=band_names, band_units=units, band_beams=beams)


def _raise_outside(outside, ref_text, after=False):
    if not outside:
        return
    why = (" (no reference pixel got data from them: the overlap holds only NaN pixels, "
           "or is smaller than the reference pixels; method='exact' resamples such "
           "small images)") if after else ""
    raise InputError(f"{' and '.join(outside)} {'does' if len(outside) == 1 else 'do'} not "
                     f"overlap the reference grid, {ref_text}{why}. Check their WCS, or "
                     "choose another reference.")


def _angle_arcsec(value, name):
    if value is None:
        return None
    try:
        value = u.Quantity(value, u.arcsec)
    except (TypeError, u.UnitsError):
        raise InputError(f"{name} must be an angle (a Quantity, or a number of arcsec), "
                         f"not {value!r}.") from None
    if not value.isscalar or not np.isfinite(value) or value <= 0:
        raise InputError(f"{name} must be one positive angle, not {value!r}.")
    return value


_COMBINE = ("mean", "sum", "first", "last", "min", "max")


def mosaic(images, resolution=None, projection="TAN", frame=None, combine_function="mean",
           match_background=False, method="interp", hdu=None, block_size=None,
           parallel=False):
    """
    Co-add overlapping tiles of one survey into one 2-D image.

    The output grid is the smallest that covers every tile
    (`reproject.mosaicking.find_optimal_celestial_wcs`, north up); each
    tile is reprojected onto it and combined where tiles overlap
    (`reproject.mosaicking.reproject_and_coadd`).

    Parameters
    ----------
    images : list
        The tiles: anything `~astrofmtools.io.load_image` takes, each with
        a celestial WCS.
    resolution : `~astropy.units.Quantity` or float, optional
        Output pixel size (a plain number is in arcsec). By default the
        finest of the tiles'.
    projection : str, optional
        Three-letter WCS projection code of the output (``TAN``, ``SIN``...).
    frame : str or `~astropy.coordinates.BaseCoordinateFrame`, optional
        Output sky frame (``'icrs'``, ``'galactic'``...); by default the
        first tile's.
    combine_function : {'mean', 'sum', 'first', 'last', 'min', 'max'}, optional
        How overlapping tiles are combined (``mean`` is weighted by each
        tile's footprint).
    match_background : bool, optional
        Offset the tiles' backgrounds to agree in their overlaps first.
    method : {'interp', 'exact', 'adaptive'}, optional
        The reproject function used per tile; see `load_bands`.
    hdu : int or str, optional
        The HDU to read from each file.
    block_size, parallel : optional
        Passed to the reproject function (see `load_bands`), to bound memory
        on large mosaics.

    Returns
    -------
    image : `~astrofmtools.io.SkyImage`
        2-D float32 ``data`` (NaN where no tile covers), ``wcs`` of the
        mosaic, ``unit`` (the tiles' common unit), ``beam`` (the tiles'
        beam when they share one, else None), ``mask`` (True where no tile
        covers), ``meta['footprint']`` (summed tile coverage) and
        ``meta['mosaic_sources']``.

    Raises
    ------
    astrofmtools.InputError
        For an unreadable tile, a tile without celestial WCS or with several
        bands, tiles in different units, an unknown method or combine
        function.

    Notes
    -----
    Pixel values are resampled as surface brightness; mosaic tiles of a
    per-pixel unit (counts) at their own resolution, or scale them by the
    pixel-area ratio afterwards.

    Examples
    --------
    Two overlapping 200x200 tiles cut from the FIRST example image:

    >>> from astropy.nddata import Cutout2D
    >>> from astrofmtools.datasets import example_image_path
    >>> from astrofmtools.io import load_image, mosaic
    >>> image = load_image(example_image_path())
    >>> left = Cutout2D(image.data, (99.5, 149.5), (200, 200), wcs=image.wcs)
    >>> right = Cutout2D(image.data, (199.5, 149.5), (200, 200), wcs=image.wcs)
    >>> both = mosaic([(left.data, left.wcs), (right.data, right.wcs)])
    >>> both.shape, int(both.meta["footprint"].max())
    ((200, 300), 2)
    """
    what = "mosaic"
    items = _as_list(images, what)
    function = _reproject_function(method)
    if combine_function not in _COMBINE:
        raise InputError(f"Unknown combine_function {combine_function!r}; the known ones are "
                         f"{', '.join(repr(c) for c in _COMBINE)}.")
    resolution = _angle_arcsec(resolution, "resolution")
    loaded = _load_all(items, hdu, what)
    units = {str(image.unit): image.unit for image in loaded if image.unit is not None}
    if len(units) > 1:
        listing = ", ".join(f"images[{i}] ({image.source}): {image.unit}"
                            for i, image in enumerate(loaded))
        raise InputError(f"mosaic needs tiles in one unit; they have {listing}.")
    inputs = [(_pixels(image), image.wcs) for image in loaded]

    from reproject.mosaicking import find_optimal_celestial_wcs, reproject_and_coadd
    from ..utils import progress
    kwargs = {"projection": projection}
    if frame is not None:
        kwargs["frame"] = frame
    if resolution is not None:
        kwargs["resolution"] = resolution
    try:
        wcs_out, shape_out = find_optimal_celestial_wcs(
            [(image.shape, image.wcs) for image in loaded], **kwargs)
    except ValueError as exc:
        raise InputError(f"mosaic cannot build the output grid ({exc}).") from None
    extra = {"conserve_flux": False} if method == "adaptive" else {}
    if block_size is not None:  # reproject_and_coadd passes None on itself
        extra["block_size"] = block_size
    array, footprint = reproject_and_coadd(
        inputs, wcs_out, shape_out=shape_out, reproject_function=function,
        combine_function=combine_function, match_background=match_background,
        blank_pixel_value=np.nan, parallel=parallel,
        progress_bar=lambda it: progress(it, desc="mosaic", unit="tile"), **extra)
    array = np.asarray(array, dtype=np.float32)
    footprint = np.asarray(footprint, dtype=np.float32)
    mask = ~np.isfinite(array) | (footprint <= 0)
    array[mask] = np.nan
    wcs_out.array_shape = tuple(shape_out)
    unit = next(iter(units.values())) if units else None
    meta = {"footprint": footprint, "mosaic_sources": [image.source for image in loaded],
            "method": method, "combine_function": combine_function}
    return SkyImage(array, wcs=wcs_out, unit=unit, mask=mask,
                    beam=_shared([image.beam for image in loaded]),
                    source=f"mosaic of {len(loaded)} tiles", meta=meta)
