"""Integrated fluxes in the unit the pixels imply: Jy/beam, MJy/sr, Jy/pixel, counts."""

import numpy as np
import pytest
import astropy.units as u

from astrofmtools.datasets import make_wcs
from astrofmtools.io import Beam, SkyImage
from astrofmtools.sources import find_sources, integrated_flux

SCALE = 1.5 * u.arcsec  # pixel side
SHAPE = (96, 96)
TOTAL = 0.25 * u.Jy  # the true flux of the source


def gaussian(fwhm_pix, amplitude, shape=SHAPE):
    """A circular Gaussian at the image centre, and its analytic integral (pixel units)."""
    sigma = fwhm_pix / (2 * np.sqrt(2 * np.log(2)))
    y, x = np.mgrid[:shape[0], :shape[1]]
    cy, cx = shape[0] / 2 - 0.3, shape[1] / 2 + 0.2
    image = amplitude * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma ** 2))
    return image, amplitude * 2 * np.pi * sigma ** 2


def beam_area(fwhm_pix):
    return np.pi / (4 * np.log(2)) * fwhm_pix ** 2


def test_jy_per_beam_sum_over_beam_area():
    fwhm = 4.0  # pixels: a point source is the beam, its peak (Jy/beam) is its flux
    image, _ = gaussian(fwhm, TOTAL.to_value(u.Jy))
    flux = integrated_flux(image.sum(), "Jy/beam", beam_area_pix=beam_area(fwhm))
    assert flux.unit == u.Jy
    assert flux.to_value(u.Jy) == pytest.approx(TOTAL.to_value(u.Jy), rel=1e-3)
    # mJy/beam gives Jy too
    flux = integrated_flux(image.sum() * 1e3, "mJy/beam", beam_area_pix=beam_area(fwhm))
    assert flux.to_value(u.Jy) == pytest.approx(TOTAL.to_value(u.Jy), rel=1e-3)


def test_mjy_per_sr_times_pixel_solid_angle():
    omega = (SCALE ** 2).to(u.sr)
    # surface brightness whose integral over the sky is TOTAL
    image, integral_pix = gaussian(5.0, 1.0)
    image *= (TOTAL / (integral_pix * omega)).to_value(u.MJy / u.sr)
    flux = integrated_flux(image.sum(), u.MJy / u.sr, pixel_solid_angle=omega)
    assert flux.unit == u.Jy
    assert flux.to_value(u.Jy) == pytest.approx(TOTAL.to_value(u.Jy), rel=1e-3)


def test_per_pixel_flux_and_other_units():
    image, integral = gaussian(5.0, 2e-3)
    assert integrated_flux(image.sum(), "Jy/pixel").to_value(u.Jy) == pytest.approx(integral)
    assert integrated_flux(image.sum(), "mJy").to_value(u.Jy) == pytest.approx(integral * 1e-3)
    counts = integrated_flux(np.array([3.0, 4.0]), "electron/s")
    assert counts.unit == u.electron / u.s and list(counts.value) == [3.0, 4.0]
    assert integrated_flux(5.0, None).unit == u.dimensionless_unscaled
    # without the beam or the solid angle: the pixel sum, in the pixel unit
    assert integrated_flux(5.0, "Jy/beam").unit == u.Jy / u.beam
    assert integrated_flux(5.0, "MJy/sr").unit == u.MJy / u.sr


def _noisy(image, rms, seed=1):
    return image + np.random.default_rng(seed).normal(0, rms, image.shape)


@pytest.mark.parametrize("unit", ["Jy/beam", "MJy/sr"])
def test_find_sources_recovers_the_total_flux(unit):
    """A bright Gaussian source: find_sources' flux is its total to 1 %."""
    wcs = make_wcs(SHAPE, pixel_scale=SCALE)
    fwhm = 4.0
    if unit == "Jy/beam":
        data, _ = gaussian(fwhm, TOTAL.to_value(u.Jy))
        beam = Beam(fwhm * SCALE, fwhm * SCALE, 0 * u.deg)
    else:
        omega = (SCALE ** 2).to(u.sr)
        data, integral_pix = gaussian(fwhm, 1.0)
        data *= (TOTAL / (integral_pix * omega)).to_value(u.MJy / u.sr)
        beam = None
    rms = data.max() * 1e-4  # SNR 10^4: the segment holds all but ~3e-4 of the flux
    image = SkyImage(_noisy(data, rms), wcs=wcs, unit=unit, beam=beam)
    table = find_sources(image, snr=5.0, psf_fwhm=None if beam else fwhm)
    brightest = table[np.argmax(table["snr"])]
    assert table["flux"].unit == u.Jy
    assert brightest["flux"].to_value(u.Jy) == pytest.approx(TOTAL.to_value(u.Jy), rel=0.01)
    note = table.meta["flux"]
    assert ("beam area" in note) if unit == "Jy/beam" else ("solid angle" in note)


def test_find_sources_counts_image_is_a_pixel_sum():
    data, integral = gaussian(4.0, 500.0)
    image = SkyImage(_noisy(data, 0.05), unit="electron/s")
    table = find_sources(image, snr=5.0, psf_fwhm=4.0)
    brightest = table[np.argmax(table["snr"])]
    assert table["flux"].unit == u.electron / u.s
    assert brightest["flux"].value == pytest.approx(integral, rel=0.01)
    assert "pixel sum" in table.meta["flux"]


def test_info_prints_the_noise_with_its_unit():
    from astrofmtools.background import global_noise
    from astrofmtools.cli import describe_image
    from astrofmtools.datasets import example_image_path
    from astrofmtools.io import load_image

    image = load_image(example_image_path())
    text = describe_image(image, noise=global_noise(image))
    line = next(line for line in text.splitlines() if line.startswith("noise:"))
    assert line.count("Jy / beam") == 2  # the std and the median
