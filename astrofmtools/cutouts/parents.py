# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""`CutoutParent`: an image that cutouts were cut from, with its header and WCS."""

import warnings
from typing import NamedTuple

import astropy.wcs as astropy_wcs
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.wcs import WCS, FITSFixedWarning

__all__ = ["CutoutParent"]

# WCS headers written with 17 significant digits, SIP included: reading them
# back gives bit-identical pixel <-> sky transformations.
_WCS_RELAX = astropy_wcs.WCSHDO_all | astropy_wcs.WCSHDO_P17 | astropy_wcs.wcs.WCSHDO_SIP


class CutoutParent(NamedTuple):
    """
    An image that cutouts of a `CutoutStack` were cut from.

    Attributes
    ----------
    source : str
        Where the image came from (file and HDU), for messages.
    header : `~astropy.io.fits.Header`
        Its header: celestial WCS (written at full precision), ``BUNIT``,
        beam and the other cards of the original header.
    wcs : `~astropy.wcs.WCS` or None
        Its 2-D celestial WCS.

    Examples
    --------
    >>> from astrofmtools.cutouts import CutoutParent
    >>> from astrofmtools.datasets import example_image_path
    >>> from astrofmtools.io import load_image
    >>> parent = CutoutParent.from_image(load_image(example_image_path()))
    >>> parent.source.endswith("first_example.fits[0]"), parent.header["SURVEY"]
    (True, 'FIRST')
    >>> text = parent.header.tostring()
    >>> CutoutParent.from_header_string(parent.source, text).wcs.wcs.ctype[0]
    'RA---TAN'
    """

    source: str
    header: fits.Header
    wcs: object

    @classmethod
    def from_image(cls, image):
        """The parent record of a `~astrofmtools.io.SkyImage`."""
        from ..io import image_header
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", VerifyWarning)
            header = image_header(image)
            if image.wcs is not None:
                # the cards as wcslib writes them, at full precision (Header.update
                # would reformat the values to 20 characters)
                cards = image.wcs.to_header(relax=_WCS_RELAX)
                for key in set(cards.keys()):
                    header.remove(key, ignore_missing=True, remove_all=True)
                header.extend(cards.cards)
        return cls(str(image.source), header, image.wcs)

    @classmethod
    def from_header_string(cls, source, text):
        """Rebuild a parent from its source name and header text (as stored in files)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", VerifyWarning)
            header = fits.Header.fromstring(text) if text.strip() else fits.Header()
        wcs = None
        if any(str(header.get(f"CTYPE{k}", "")).strip() for k in (1, 2)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FITSFixedWarning)
                wcs = WCS(header, relax=True)
            if not wcs.has_celestial:
                wcs = None
        return cls(source, header, wcs)
