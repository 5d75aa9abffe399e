# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
A synthetic optical field with its truth catalogue: Sersic galaxies,
stars, sky and noise.

It is seeded (the same ``seed`` gives the same pixels and the same
table), fast (every source is rendered in a small stamp, never over the
whole image) and comes with a real TAN WCS and a FITS header, so it can be
written to a file and read back with `~astrofmtools.io.load_image`.
"""

import numpy as np
import astropy.units as u
from astropy.coordinates import SkyCoord
from astropy.modeling.models import Gaussian2D, Sersic2D
from scipy import ndimage
from skimage.measure import block_reduce

from ..exceptions import InputError
from ..io import Beam, SkyImage
from ..utils import provenance
from .checks import _angle, _center, _count, _min_separation, _positive, _shape, _snr_range
from .stamps import _FWHM_TO_SIGMA, _grid, _log_uniform, _place
from .truth import _measure, _truth_table
from .wcs import _make_header, make_wcs

__all__ = ["make_optical_field"]


def _oversampled_grid(shape, x, y, half, factor):
    grid = _grid(shape, x, y, half)
    if grid is None:
        return None
    slices = grid[0]
    y0, x0 = slices[0].start, slices[1].start
    nyp, nxp = slices[0].stop - y0, slices[1].stop - x0
    offsets = (np.arange(factor) + 0.5) / factor - 0.5
    yy = (y0 + np.arange(nyp)[:, None] + offsets[None, :]).ravel()
    xx = (x0 + np.arange(nxp)[:, None] + offsets[None, :]).ravel()
    return slices, *np.meshgrid(xx, yy)


def make_optical_field(shape=(512, 512), n_galaxies=40, n_stars=30, psf_fwhm=3.0,
                       sky_noise=1.0, sky_level=100.0, snr_range=(5, 500), gain=None,
                       pixel_scale=0.2 * u.arcsec, center=SkyCoord(150, 2, unit="deg"),
                       min_separation=2.0, add_noise=True, seed=0):
    """
    A synthetic optical image (galaxies and stars) with its truth catalogue.

    - **Galaxies**: `~astropy.modeling.models.Sersic2D` profiles with
      indices 0.5 to 4, effective radii 1 to 8 pixels (log-uniform),
      ellipticities 0 to 0.7 and random orientations, evaluated on
      oversampled stamps (5x5 sub-pixels below r_eff = 2, 3x3 below 5) so
      that small cuspy profiles keep their flux, and convolved with the
      PSF.
    - **Stars**: the PSF, a circular Gaussian of FWHM ``psf_fwhm``
      integrated over each pixel.
    - **Sky**: a constant ``sky_level`` plus Gaussian noise of rms
      ``sky_noise``; with ``gain`` (e-/ADU), the sources also get Poisson
      noise.

    Peak SNRs (peak / ``sky_noise``) are log-uniform in ``snr_range``.

    Parameters
    ----------
    shape : tuple of int, optional
        Image shape (ny, nx).
    n_galaxies, n_stars : int, optional
        Numbers of galaxies and stars.
    psf_fwhm : float, optional
        FWHM of the Gaussian PSF in pixels.
    sky_noise : float, optional
        Rms of the sky noise per pixel (ADU).
    sky_level : float, optional
        Constant sky background (ADU).
    snr_range : tuple of float, optional
        Range of the peak signal-to-noise ratios.
    gain : float or None, optional
        Electrons per ADU for the sources' Poisson noise; None adds none.
    pixel_scale : `~astropy.units.Quantity` or float, optional
        Pixel side (arcsec if a number).
    center : `~astropy.coordinates.SkyCoord`, optional
        Sky position of the image centre.
    min_separation : float or None, optional
        Smallest gap between two sources in PSF FWHMs, on top of their
        extents (2 r_eff for galaxies); None allows overlaps.
    add_noise : bool, optional
        If False, return the noiseless model plus the sky level.
    seed : int or None, optional
        Seed of `numpy.random.default_rng`.

    Returns
    -------
    image : `~astrofmtools.io.SkyImage`
        ``data`` (float32, ADU), TAN ``wcs``, ``unit`` adu, ``beam`` (the
        PSF FWHM as a circular `~astrofmtools.io.Beam`), ``header`` and
        ``meta`` (``sky_level``, ``sky_noise``).
    truth : `~astropy.table.QTable`
        One row per object: ``id``; ``x``, ``y`` (flux-weighted centre,
        0-based pixel); ``ra``, ``dec`` (deg), ``sky_centroid``; ``kind``
        (``'galaxy'`` or ``'star'``); ``flux`` (ADU, sum of the object's
        noiseless pixels); ``peak`` (ADU, its brightest pixel, above the
        sky); ``snr`` (``peak / sky_noise``); ``sersic_n``, ``r_eff``
        (pixels), ``ellipticity``, ``theta`` (deg, counter-clockwise from
        the +x axis) of the intrinsic profile (NaN, NaN, 0, 0 for stars);
        ``bbox_xmin``, ``bbox_xmax``, ``bbox_ymin``, ``bbox_ymax``
        (0-based inclusive bounds of the region where the noiseless
        object exceeds ``sky_noise``).

    Examples
    --------
    >>> from astrofmtools.datasets import make_optical_field
    >>> image, truth = make_optical_field(shape=(128, 128), n_galaxies=5, n_stars=5, seed=2)
    >>> image.unit, image.beam.major.to('arcsec')  # doctest: +FLOAT_CMP
    (Unit("adu"), <Quantity 0.6 arcsec>)
    >>> list(truth['kind']).count('galaxy'), list(truth['kind']).count('star')
    (5, 5)
    """
    ny, nx = shape = _shape(shape)
    n_galaxies = _count(n_galaxies, "n_galaxies")
    n_stars = _count(n_stars, "n_stars")
    psf_fwhm = _positive(psf_fwhm, "psf_fwhm")
    sky_noise = _positive(sky_noise, "sky_noise")
    try:
        sky_level = float(sky_level)
    except (TypeError, ValueError):
        raise InputError(f"sky_level must be a number, not {sky_level!r}.") from None
    if gain is not None:
        gain = _positive(gain, "gain")
    lo, hi = _snr_range(snr_range)
    scale = _angle(pixel_scale, "pixel_scale")
    center = _center(center)
    min_separation = _min_separation(min_separation)

    seeds = np.random.SeedSequence(seed).spawn(2)
    rng, noise_rng = np.random.default_rng(seeds[0]), np.random.default_rng(seeds[1])
    psf_sigma = psf_fwhm * _FWHM_TO_SIGMA

    n = n_galaxies + n_stars
    kinds = ["galaxy"] * n_galaxies + ["star"] * n_stars
    sersic_n = np.full(n, np.nan)
    r_eff = np.full(n, np.nan)
    ellip = np.zeros(n)
    theta = np.zeros(n)
    sersic_n[:n_galaxies] = rng.choice([0.5, 1.0, 1.5, 2.5, 4.0], n_galaxies)
    r_eff[:n_galaxies] = _log_uniform(rng, 1.0, 8.0, n_galaxies)
    ellip[:n_galaxies] = rng.uniform(0.0, 0.7, n_galaxies)
    theta[:n_galaxies] = rng.uniform(0.0, 180.0, n_galaxies)
    radii = np.where(np.isnan(r_eff), 0.0, 2.0 * np.nan_to_num(r_eff))
    min_distance = None if min_separation is None else min_separation * psf_fwhm
    xy = _place(rng, shape, radii, min_distance, margin=psf_fwhm, what="optical")
    peaks = _log_uniform(rng, lo, hi, n) * sky_noise

    data = np.zeros(shape, dtype=np.float64)
    rows = []
    for k, kind in enumerate(kinds):
        x, y = xy[k]
        if kind == "galaxy":
            factor = 5 if r_eff[k] < 2 else 3 if r_eff[k] < 5 else 1
            half = 8 * r_eff[k] * (1 if sersic_n[k] < 2 else 1.5) + 4 * psf_fwhm
            slices, xx, yy = _oversampled_grid(shape, x, y, half, factor)
            # sub-pixel sampling keeps the flux of small, cuspy (high-n) profiles
            model = Sersic2D.evaluate(xx, yy, 1.0, r_eff[k], sersic_n[k], x, y,
                                      ellip[k], np.deg2rad(theta[k]))
            model = ndimage.gaussian_filter(model, psf_sigma * factor, mode="constant",
                                            truncate=5.0)
        else:
            factor = 5
            slices, xx, yy = _oversampled_grid(shape, x, y, 5 * psf_sigma + 1, factor)
            model = Gaussian2D.evaluate(xx, yy, 1.0, x, y, psf_sigma, psf_sigma, 0.0)
        model = block_reduce(model, (factor, factor), np.mean)
        model *= peaks[k] / model.max()
        data[slices] += model
        row = _measure(model, slices, sky_noise, 1.0, 1.0, morphology=False)
        row.update(kind=kind, sersic_n=sersic_n[k], r_eff=r_eff[k], ellipticity=ellip[k],
                   theta=theta[k])
        rows.append(row)

    if add_noise:
        if gain is not None:
            data = noise_rng.poisson(np.clip(data, 0, None) * gain) / gain
        data += noise_rng.normal(0.0, sky_noise, shape)
    data += sky_level

    wcs = make_wcs(shape, center, scale)
    fwhm = psf_fwhm * scale
    header = _make_header(wcs, u.adu, fwhm, SKYLEVEL=(sky_level, "[adu] sky background"),
                          SKYNOISE=(sky_noise, "[adu] sky noise rms per pixel"),
                          SEED=(str(seed), "make_optical_field seed"))
    image = SkyImage(data.astype(np.float32), wcs=wcs, unit=u.adu,
                     beam=Beam(fwhm, fwhm, 0 * u.deg), header=header,
                     mask=np.zeros(shape, dtype=bool),
                     source=f"make_optical_field(seed={seed})",
                     meta={"sky_level": sky_level, "sky_noise": sky_noise})
    truth = _truth_table(rows, wcs, flux_unit=u.adu, peak_unit=u.adu, optical=True,
                         meta=provenance(generator="make_optical_field", seed=seed,
                                         sky_noise=sky_noise, sky_level=sky_level,
                                         shape=list(shape), psf_fwhm_pix=psf_fwhm,
                                         pixel_scale_arcsec=scale.value))
    return image, truth
