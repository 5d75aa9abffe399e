# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Integrated fluxes from pixel sums, in the unit the image's pixels imply.

A pixel sum is a flux only when each pixel holds a flux. Radio images hold
a flux per beam (Jy/beam), infrared and sub-mm images a surface brightness
(MJy/sr): their sums are divided by the beam area in pixels, or multiplied
by the solid angle of a pixel, to give a flux density in Jy.
"""

import numpy as np
import astropy.units as u

__all__ = ["integrated_flux"]


def _per(unit, base):
    """Whether ``unit`` is something divided (once) by ``base``."""
    bases = getattr(unit, "bases", [unit])
    powers = getattr(unit, "powers", [1])
    return any(b == base and p == -1 for b, p in zip(bases, powers))


def _integration(unit, beam_area_pix=None, pixel_solid_angle=None):
    """
    How a pixel sum becomes a flux: ``(factor, unit, note)``.

    ``flux = pixel_sum * factor`` in ``unit``; ``note`` says how, for the
    table's meta. ``unit`` is None for images without a unit.
    """
    if unit is None:
        return 1.0, None, "sum of the pixels (the image has no unit)"
    unit = u.Unit(unit)
    if _per(unit, u.beam):
        flux_unit = unit * u.beam
        if beam_area_pix is None or not np.isfinite(beam_area_pix) or beam_area_pix <= 0:
            return 1.0, unit, (f"sum of the pixels, in the pixel unit {unit}: no beam area "
                               "to integrate with (no BMAJ/BMIN)")
        factor, to = 1.0 / float(beam_area_pix), flux_unit
        if flux_unit.is_equivalent(u.Jy):
            factor, to = factor * flux_unit.to(u.Jy), u.Jy
        return factor, to, (f"sum of the pixels divided by the beam area "
                            f"({float(beam_area_pix):.4g} pixels)")
    if _per(unit, u.pix):
        flux_unit = unit * u.pix
        if flux_unit.is_equivalent(u.Jy):
            return flux_unit.to(u.Jy), u.Jy, "sum of the pixels (a flux per pixel)"
        return 1.0, flux_unit, "sum of the pixels (a flux per pixel)"
    if unit.is_equivalent(u.Jy / u.sr):
        if pixel_solid_angle is None:
            return 1.0, unit, (f"sum of the pixels, in the pixel unit {unit}: no pixel "
                               "solid angle (no WCS) to integrate the surface brightness")
        omega = u.Quantity(pixel_solid_angle, u.sr)
        return (unit * omega).to_value(u.Jy), u.Jy, (
            f"sum of the pixels times the pixel solid angle ({omega.to(u.arcsec ** 2):.4g})")
    if unit.is_equivalent(u.Jy):  # a flux in each pixel
        return float(unit.to(u.Jy)), u.Jy, "sum of the pixels (each holds a flux)"
    return 1.0, unit, (f"sum of the pixels, in the pixel unit {unit} (not a flux unit "
                       "astrofmtools integrates: a pixel sum)")


def integrated_flux(pixel_sum, unit, beam_area_pix=None, pixel_solid_angle=None):
    """
    The flux of a sum of pixels, in the unit the image's pixel unit implies.

    - per beam (``Jy/beam``, ``mJy/beam``): the sum divided by the beam
      area in pixels, in Jy;
    - per solid angle (``MJy/sr``, ``Jy/arcsec2``): the sum times the
      pixel solid angle, in Jy;
    - per pixel (``Jy/pixel``) or a flux density (``Jy``, ``mJy``): the
      sum, in Jy;
    - anything else (counts, ``DN``, ``electron/s``, no unit): the pixel sum
      in the pixel unit (or a plain dimensionless Quantity), which ``meta``
      of a `find_sources` table then calls a pixel sum.

    Parameters
    ----------
    pixel_sum : float or array-like
        Sums of (background-subtracted) pixel values.
    unit : `~astropy.units.Unit`, str or None
        The image's pixel unit (``BUNIT``).
    beam_area_pix : float, optional
        The beam's area in pixels, ``pi * bmaj * bmin / (4 ln 2)`` for FWHM
        ``bmaj`` and ``bmin`` in pixels (needed for per-beam units; without
        it the pixel sum is returned in the pixel unit).
    pixel_solid_angle : `~astropy.units.Quantity`, optional
        The solid angle of one pixel (needed for per-solid-angle units;
        without it the pixel sum is returned in the pixel unit).

    Returns
    -------
    flux : `~astropy.units.Quantity`
        The fluxes, in Jy when the unit allows, else in the pixel unit.

    Examples
    --------
    >>> import astropy.units as u
    >>> from astrofmtools.sources import integrated_flux
    >>> integrated_flux(22.66, "Jy/beam", beam_area_pix=11.33)  # doctest: +FLOAT_CMP
    <Quantity 2. Jy>
    >>> integrated_flux(1000.0, "MJy/sr", pixel_solid_angle=(1.2 * u.arcsec) ** 2)
    ... # doctest: +FLOAT_CMP
    <Quantity 0.03384638 Jy>
    >>> integrated_flux(150.0, "electron/s")
    <Quantity 150. electron / s>
    """
    factor, to, _ = _integration(unit, beam_area_pix, pixel_solid_angle)
    values = np.asarray(pixel_sum, dtype=float) * factor
    return u.Quantity(values, to if to is not None else u.dimensionless_unscaled)
