# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The TAN WCS and FITS header of the synthetic fields."""

import astropy.units as u
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS

from .checks import _angle, _center

__all__ = ["make_wcs"]


def make_wcs(shape, center=SkyCoord(150, 2, unit="deg"), pixel_scale=1.8 * u.arcsec):
    """
    A TAN WCS with the image centre at ``center``, north up and east left.

    The WCS of the synthetic fields; handy for tests and examples.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the image.
    center : `~astropy.coordinates.SkyCoord`, optional
        The sky position of the image centre.
    pixel_scale : `~astropy.units.Quantity`, optional
        The pixel side.

    Returns
    -------
    wcs : `~astropy.wcs.WCS`

    Examples
    --------
    >>> from astrofmtools.datasets import make_wcs
    >>> wcs = make_wcs((100, 200))
    >>> wcs.pixel_to_world(99.5, 49.5)  # the array centre (0-based pixels)
    <SkyCoord (ICRS): (ra, dec) in deg
        (150., 2.)>
    """
    scale = _angle(pixel_scale, "pixel_scale")
    center = _center(center)
    ny, nx = (int(n) for n in shape)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.crval = [center.ra.deg, center.dec.deg]
    wcs.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0]  # FITS 1-based: the array centre
    deg = scale.to_value(u.deg)
    wcs.wcs.cdelt = [-deg, deg]
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.set()
    return wcs


def _make_header(wcs, unit, beam_fwhm, **cards):
    header = wcs.to_header()
    header["BUNIT"] = (unit.to_string("fits"), "pixel unit")
    header["BMAJ"] = (beam_fwhm.to_value(u.deg), "[deg] beam / PSF major axis FWHM")
    header["BMIN"] = (beam_fwhm.to_value(u.deg), "[deg] beam / PSF minor axis FWHM")
    header["BPA"] = (0.0, "[deg] beam / PSF position angle")
    for key, value in cards.items():
        header[key] = value
    header["ORIGIN"] = "astrofmtools.datasets (synthetic)"
    return header
