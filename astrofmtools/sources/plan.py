# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The detection plan: the PSF, the noise correlation and the matched filter
they imply, measured once per image and shared by all its tiles.
"""

from dataclasses import dataclass

import numpy as np
import astropy.units as u

from ..exceptions import InputError
from .filtering import (_central, beam_area_pixels, cov_to_fwhm, estimate_psf_fwhm,
                        filtered_noise_ratio, gaussian_cov, noise_covariance,
                        sky_pa_to_pixel_angle)

__all__ = []


@dataclass
class _Plan:
    """Settings shared by all tiles: the detection filter and its noise."""

    snr: float
    island_snr: float
    npixels: int
    prominence: float
    deblend: bool
    psf_cov: np.ndarray
    psf_source: str
    noise_cov: np.ndarray
    filter_cov: object  # 2x2 array or None
    filter_noise_ratio: float
    box_size: int


def _psf_covariance(image, psf_fwhm):
    """The PSF covariance (pixels^2) from the user, the beam, or None."""
    if psf_fwhm is not None:
        if isinstance(psf_fwhm, u.Quantity) and psf_fwhm.unit.physical_type == "angle":
            if image.pixel_scale is None:
                raise InputError(f"psf_fwhm={psf_fwhm} is an angle, but {image.source} has no "
                                 "WCS to convert it to pixels; give it in pixels.")
            psf_fwhm = (psf_fwhm / image.pixel_scale).to_value(u.dimensionless_unscaled)
        elif isinstance(psf_fwhm, u.Quantity):
            psf_fwhm = psf_fwhm.to_value(u.pix)
        fwhm = np.atleast_1d(np.asarray(psf_fwhm, dtype=float))
        if fwhm.size == 1:
            fwhm = np.array([fwhm[0], fwhm[0], 0.0])
        if fwhm.size != 3 or not np.all(np.isfinite(fwhm)) or fwhm[0] <= 0 or fwhm[1] <= 0:
            raise InputError(f"psf_fwhm must be a positive FWHM in pixels (or an angle), or "
                             f"(major, minor, theta_deg) in pixels; got {psf_fwhm!r}.")
        return gaussian_cov(*fwhm), f"psf_fwhm={fwhm[0]:.3g}x{fwhm[1]:.3g} pix"
    beam = image.beam_pixels
    if beam is not None:
        major, minor, pa = beam
        ny, nx = image.shape
        theta = sky_pa_to_pixel_angle(image.wcs, pa, (nx - 1) / 2, (ny - 1) / 2)
        # the beam's major axis lies along the position angle
        return gaussian_cov(major, minor, theta), "beam (BMAJ/BMIN/BPA)"
    return None, None


def _standardised(data, nodata, ignore, maps, size):
    """
    The central window (at most ``size`` square) of the background-subtracted
    image, the same over the RMS map, and the pixels valid there.
    """
    sl = _central(data.shape, size)
    excluded = nodata[sl] if ignore is None else nodata[sl] | ignore[sl]
    rms = np.asarray(maps.rms[sl])
    with np.errstate(invalid="ignore", divide="ignore"):
        sub = data[sl] - maps.background[sl]
        z = sub / rms
    return sub, z, ~excluded & np.isfinite(z) & (rms > 0)


def _make_plan(image, data, nodata, ignore, maps, snr, island_snr, npixels, prominence,
               deblend, psf_fwhm, matched_filter, box_size):
    """Measure the noise correlation and PSF, and choose the detection filter."""
    # the noise correlation is measured on the central 1024 x 1024 pixels, and the
    # PSF, when neither given nor in the header, on the central 2048 x 2048
    _, z, valid = _standardised(data, nodata, ignore, maps, 1024)
    noise_cov = noise_covariance(z, valid)
    psf_cov, psf_source = _psf_covariance(image, psf_fwhm)
    if psf_cov is None:
        fwhm, n_used = estimate_psf_fwhm(*_standardised(data, nodata, ignore, maps, 2048))
        if fwhm is not None:
            psf_cov, psf_source = gaussian_cov(fwhm, fwhm, 0.0), \
                f"estimated from {n_used} bright sources"
        elif np.linalg.eigvalsh(noise_cov)[-1] > 0.25:
            psf_cov, psf_source = noise_cov.copy(), "noise autocorrelation"
        else:
            psf_cov, psf_source = gaussian_cov(3.0, 3.0, 0.0), "default (3 pixels)"
    if matched_filter == "auto":
        vals, vecs = np.linalg.eigh(psf_cov - noise_cov)
        vals = np.clip(vals, 0.0, None)
        filter_cov = vecs @ np.diag(vals) @ vecs.T if vals[-1] > 0.25 else None
    elif matched_filter == "psf":
        filter_cov = psf_cov
    elif matched_filter in ("none", None, False):
        filter_cov = None
    else:
        raise InputError(f"matched_filter must be 'auto', 'psf' or 'none', not "
                         f"{matched_filter!r}.")
    # filtered noise / unfiltered noise, from the measured noise model (exact for
    # stationary noise; an empirical std of the filtered image is biased by sources)
    ratio = 1.0 if filter_cov is None else filtered_noise_ratio(filter_cov, noise_cov)
    if npixels is None:
        det_cov = psf_cov if filter_cov is None else psf_cov + filter_cov
        npixels = max(2, int(round(0.25 * beam_area_pixels(det_cov))))
    return _Plan(snr=float(snr), island_snr=float(min(island_snr, snr)), npixels=int(npixels),
                 prominence=float(prominence), deblend=bool(deblend), psf_cov=psf_cov,
                 psf_source=psf_source, noise_cov=noise_cov, filter_cov=filter_cov,
                 filter_noise_ratio=float(ratio),
                 box_size=box_size)


def _describe_filter(plan, requested):
    if plan.filter_cov is None:
        if requested == "auto":
            return "none: the noise is correlated like the PSF, the image is already matched"
        return "none (matched_filter='none')"
    if requested == "psf":
        major, minor, _ = cov_to_fwhm(plan.filter_cov)
        return f"psf (matched_filter='psf'): FWHM {major:.3g} x {minor:.3g} pix"
    major, minor, _ = cov_to_fwhm(plan.filter_cov)
    return f"psf whitened by the noise: FWHM {major:.3g} x {minor:.3g} pix"
