# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
How pixel values are resampled onto another grid: the reproject functions
(`REPROJECT_METHODS`) and the pixel-area scaling of amounts per pixel.
"""

import numpy as np
import astropy.units as u
from astropy.wcs.utils import pixel_to_pixel

from ..exceptions import InputError

__all__ = ["REPROJECT_METHODS"]

#: The resampling methods of `load_bands` and `mosaic`, each a function of
#: the reproject package: ``interp`` (bilinear interpolation, fast),
#: ``exact`` (spherical-polygon overlaps, flux-conserving, slowest) and
#: ``adaptive`` (DeForest 2004 anti-aliased resampling).
REPROJECT_METHODS = ("interp", "exact", "adaptive")


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
