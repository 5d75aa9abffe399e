# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Write a `SkyImage` back to FITS."""

import re

import numpy as np
from astropy.io import fits
import astropy.units as u

from ..utils import atomic_output

__all__ = ["image_header", "write_image"]


def image_header(image):
    """
    A FITS header for an image: its original header's cards, then its WCS,
    ``BUNIT`` and beam (``BMAJ``/``BMIN``/``BPA``).

    Parameters
    ----------
    image : `~astrofmtools.io.SkyImage`
        The image.

    Returns
    -------
    header : `~astropy.io.fits.Header`

    Examples
    --------
    >>> from astrofmtools.datasets import example_image_path
    >>> from astrofmtools.io import image_header, load_image
    >>> header = image_header(load_image(example_image_path()))
    >>> header["CTYPE1"], header["BUNIT"], float(round(header["BMAJ"] * 3600, 2))
    ('RA---TAN', 'Jy beam-1', 5.4)
    """
    header = fits.Header()
    if image.header is not None:
        skip = {"SIMPLE", "BITPIX", "EXTEND", "XTENSION", "PCOUNT", "GCOUNT", "BSCALE",
                "BZERO", "BLANK", "CHECKSUM", "DATASUM"}
        for card in image.header.cards:
            key = card.keyword
            if key in skip or key.startswith("NAXIS") or key in ("COMMENT", "HISTORY", ""):
                continue
            if _is_wcs_key(key):
                continue  # replaced by the (2-D celestial) WCS below
            header.append(card)
    if image.wcs is not None:
        header.update(image.wcs.to_header(relax=True))
    if image.unit is not None:
        header["BUNIT"] = image.unit.to_string("fits")
    if image.beam is not None:
        header["BMAJ"] = image.beam.major.to_value(u.deg)
        header["BMIN"] = image.beam.minor.to_value(u.deg)
        header["BPA"] = image.beam.pa.to_value(u.deg)
    return header


_WCS_KEY = re.compile(r"^(CTYPE|CRVAL|CRPIX|CDELT|CUNIT|CROTA)\d+[A-Z]?$"
                      r"|^(PC|CD|PV|PS)\d+_\d+[A-Z]?$"
                      r"|^(WCSAXES|LONPOLE|LATPOLE|RADESYS|EQUINOX|EPOCH|WCSNAME)[A-Z]?$"
                      r"|^(A|B|AP|BP)_(\d+_\d+|ORDER|DMAX)$")


def _is_wcs_key(key):
    return bool(_WCS_KEY.match(key))


def write_image(image, path, overwrite=False):
    """
    Write an image to a FITS file (atomically) with its WCS, unit and beam.

    Parameters
    ----------
    image : `~astrofmtools.io.SkyImage` or any input of `~astrofmtools.io.load_image`
        The image.
    path : str or `~pathlib.Path`
        The output file.
    overwrite : bool, optional
        Replace an existing file.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.io import load_image, write_image
    >>> write_image((np.ones((4, 5), dtype=np.float32), None), "ones.fits", overwrite=True)
    >>> load_image("ones.fits").shape
    (4, 5)
    """
    from .load import load_image
    image = load_image(image)
    data = np.asarray(image.data)
    with atomic_output(path, overwrite=overwrite) as tmp:
        fits.PrimaryHDU(data, header=image_header(image)).writeto(tmp)
