# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Co-add overlapping tiles of one survey into one image (`mosaic`), with the
`reproject <https://reproject.readthedocs.io>`_ package's mosaicking.
"""

import numpy as np
import astropy.units as u

from ..exceptions import InputError
from .band_inputs import _as_list, _load_all, _pixels, _shared
from .image import SkyImage
from .reprojection import _reproject_function

__all__ = ["mosaic"]


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
