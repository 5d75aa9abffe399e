# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The image type every stage takes: data, celestial WCS, unit, beam, mask."""

from typing import NamedTuple

import numpy as np
import astropy.units as u
from astropy.nddata import NDData
from astropy.wcs.utils import proj_plane_pixel_scales

__all__ = ["Beam", "SkyImage"]


class Beam(NamedTuple):
    """
    An elliptical Gaussian beam or PSF (FWHM axes and position angle).

    Read from the FITS keywords ``BMAJ``, ``BMIN`` (degrees, FWHM) and
    ``BPA`` (degrees east of north), as radio imagers write them.

    Examples
    --------
    >>> import astropy.units as u
    >>> from astrofmtools.io import Beam
    >>> beam = Beam(5.4 * u.arcsec, 5.4 * u.arcsec, 0 * u.deg)
    >>> beam.area.to(u.arcsec**2)  # doctest: +FLOAT_CMP
    <Quantity 33.04090543 arcsec2>
    """

    major: u.Quantity
    minor: u.Quantity
    pa: u.Quantity

    @property
    def area(self):
        """Solid angle of the Gaussian beam, pi·major·minor / (4 ln 2)."""
        return (np.pi / (4 * np.log(2)) * self.major * self.minor).to(u.arcsec**2)

    @classmethod
    def from_header(cls, header):
        """The beam in a FITS header (``BMAJ``/``BMIN``/``BPA``), or None."""
        if "BMAJ" not in header or "BMIN" not in header:
            return None
        try:
            bmaj, bmin = float(header["BMAJ"]), float(header["BMIN"])
            bpa = float(header.get("BPA", 0.0))
        except (TypeError, ValueError):
            return None
        if not (np.isfinite(bmaj) and np.isfinite(bmin)) or bmaj <= 0 or bmin <= 0:
            return None
        return cls(bmaj * u.deg, bmin * u.deg, bpa * u.deg)


class SkyImage(NDData):
    """
    A 2-D sky image: pixels, a celestial WCS, a unit, a beam and a mask.

    This is an `~astropy.nddata.NDData`, so everything that takes one
    (photutils, astropy.visualization, reproject) takes it too. Build it
    with `~astrofmtools.io.load_image`, which accepts any FITS input.

    A multi-band image (several surveys or filters reprojected onto one
    grid by `~astrofmtools.io.load_bands`) is a `SkyImage` too: its data
    are ``(C, H, W)``, ``bands`` names the channels and ``band_units`` and
    ``band_beams`` describe each; `band` gives one channel as a 2-D image.

    Parameters
    ----------
    data : array-like
        The 2-D pixel array (row = y, column = x, numpy order), or a
        ``(C, H, W)`` stack of bands on one grid. It may be a memory map of
        the file.
    wcs : `~astropy.wcs.WCS` or None
        A 2-D celestial WCS, or None for pixel-only work.
    unit : `~astropy.units.Unit` or str, optional
        The pixel unit (from ``BUNIT``).
    mask : array of bool, optional
        True where the image has no data (NaN or ``BLANK`` pixels, outside
        the survey footprint). Pixels to *ignore* (bright stars, artefacts)
        are a separate mask given to each stage.
    beam : `Beam`, optional
        The restoring beam or PSF, when known.
    header : `~astropy.io.fits.Header`, optional
        The header the image came from.
    source : str, optional
        Where the image came from: a file name and HDU, for messages.
    meta : dict, optional
        Anything else.
    bands : list of str, optional
        For ``(C, H, W)`` data: the name of each band (default ``band0``,
        ``band1``...).
    band_units, band_beams : list, optional
        For ``(C, H, W)`` data: each band's unit and beam (or None). The
        image's own ``unit`` and ``beam`` are those shared by all bands, or
        None when they differ.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.io import SkyImage
    >>> image = SkyImage(np.zeros((20, 30)), unit="Jy/beam")
    >>> image.shape, image.unit, image.has_wcs
    ((20, 30), Unit("Jy / beam"), False)
    """

    def __init__(self, data, wcs=None, unit=None, mask=None, beam=None,
                 header=None, source=None, meta=None, bands=None, band_units=None,
                 band_beams=None):
        super().__init__(data, wcs=wcs, unit=unit, mask=mask, meta=meta)
        self.beam = beam
        self.header = header
        self.source = source if source is not None else "<array>"
        if np.ndim(self.data) == 3:
            n = self.data.shape[0]
            self.bands = list(bands) if bands is not None else [f"band{i}" for i in range(n)]
            self.band_units = list(band_units) if band_units is not None else [self.unit] * n
            self.band_beams = list(band_beams) if band_beams is not None else [self.beam] * n
            if not len(self.bands) == len(self.band_units) == len(self.band_beams) == n:
                from ..exceptions import InputError
                raise InputError(f"A {n}-band image needs {n} band names, units and beams; "
                                 f"got {len(self.bands)}, {len(self.band_units)} and "
                                 f"{len(self.band_beams)}.")
        else:
            self.bands = self.band_units = self.band_beams = None

    @property
    def n_bands(self):
        """Number of bands: 1 for a 2-D image, C for ``(C, H, W)`` data."""
        return 1 if self.bands is None else len(self.bands)

    def band(self, key):
        """
        One band of a multi-band image, as a 2-D `SkyImage` (a view, no copy).

        Parameters
        ----------
        key : int or str
            The band's index or name.

        Examples
        --------
        >>> import numpy as np
        >>> from astrofmtools.io import SkyImage
        >>> stack = SkyImage(np.zeros((2, 4, 5)), bands=["radio", "w1"],
        ...                  band_units=["Jy/beam", "Jy"])
        >>> stack.band("w1").shape, stack.band("w1").unit
        ((4, 5), Unit("Jy"))
        """
        from ..exceptions import InputError
        if self.bands is None:
            if key in (0, "band0"):
                return self
            raise InputError(f"{self.source} has a single band; there is no band {key!r}.")
        if isinstance(key, str):
            if key not in self.bands:
                raise InputError(f"{self.source} has no band {key!r}; its bands: "
                                 f"{', '.join(self.bands)}.")
            key = self.bands.index(key)
        if not -len(self.bands) <= key < len(self.bands):
            raise InputError(f"{self.source} has {len(self.bands)} bands; there is no band {key}.")
        mask = None if self.mask is None else self.mask[key]
        unit = self.band_units[key]
        return SkyImage(self.data[key], wcs=self.wcs, unit=unit, mask=mask,
                        beam=self.band_beams[key], header=self.header,
                        source=f"{self.source} band {self.bands[key]}", meta=self.meta)

    def require_2d(self, what):
        """Raise `~astrofmtools.InputError` unless the image has a single band."""
        from ..exceptions import InputError
        if self.bands is not None:
            raise InputError(f"{what} works on one band, and {self.source} has "
                             f"{len(self.bands)} ({', '.join(self.bands)}); pass "
                             f"image.band({self.bands[0]!r}), for instance.")
        return self

    def __repr__(self):
        unit = f" [{self.unit}]" if self.unit is not None else ""
        wcs = " with WCS" if self.has_wcs else " without WCS"
        beam = ""
        if self.beam is not None:
            beam = (f", beam {self.beam.major.to_value(u.arcsec):.3g}\"x"
                    f"{self.beam.minor.to_value(u.arcsec):.3g}\"")
        bands = f" bands {', '.join(self.bands)}" if self.bands is not None else ""
        return (f"<SkyImage {self.shape[-1]}x{self.shape[-2]}{bands}{unit}{wcs}{beam} "
                f"from {self.source}>")

    __str__ = __repr__

    @property
    def shape(self):
        """The array shape, ``(ny, nx)`` or ``(C, ny, nx)``."""
        return self.data.shape

    @property
    def has_wcs(self):
        """Whether the image has a celestial WCS (needed for sky outputs)."""
        return self.wcs is not None

    @property
    def pixel_scale(self):
        """
        Mean pixel side as an angle (`~astropy.units.Quantity`), or None.

        Examples
        --------
        >>> from astrofmtools.datasets import example_image_path
        >>> from astrofmtools.io import load_image
        >>> load_image(example_image_path()).pixel_scale  # doctest: +FLOAT_CMP
        <Quantity 1.8 arcsec>
        """
        if self.wcs is None:
            return None
        scales = proj_plane_pixel_scales(self.wcs)  # degrees per pixel
        return (np.sqrt(scales[0] * scales[1]) * u.deg).to(u.arcsec)

    @property
    def beam_pixels(self):
        """
        The beam as (major, minor) FWHM in pixels and PA in degrees, or None.

        None when either the beam or the WCS is unknown.
        """
        if self.beam is None or self.wcs is None:
            return None
        scale = self.pixel_scale
        return (float(self.beam.major / scale), float(self.beam.minor / scale),
                float(self.beam.pa.to_value(u.deg)))

    def require_wcs(self, what="sky coordinates"):
        """Raise `~astrofmtools.InputError` if the image has no celestial WCS."""
        from ..exceptions import InputError
        if self.wcs is None:
            raise InputError(f"{what} need a celestial WCS, and {self.source} has none "
                             "(no CTYPE1/CTYPE2 sky axes in its header).")
        return self.wcs
