# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Several surveys or filters on one pixel grid: reproject each image onto a
reference grid (`load_bands`); `mosaic` co-adds tiles of one survey.

The resampling itself is the `reproject <https://reproject.readthedocs.io>`_
package's; `load_bands` parses every input kind, checks WCS and overlap,
keeps each band's unit and beam and turns footprints into masks.
"""

import numpy as np

from ..exceptions import InputError
from .band_inputs import (_as_list, _band_names, _load_all, _parse_reference, _pixels,
                          _shared)
from .grid_overlap import _overlap_box
from .image import SkyImage
from .reprojection import _area_ratio, _conserve_list, _reproject_function

__all__ = ["load_bands"]


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
