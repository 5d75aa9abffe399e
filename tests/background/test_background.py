import numpy as np
import pytest
import astropy.units as u
from astropy.io import fits
from astropy.stats import SigmaClip
from photutils.background import Background2D

from astrofmtools import InputError
from astrofmtools.background import (BackgroundMaps, clipped_std_correction,
                                     estimate_background, global_noise)
from astrofmtools.datasets import make_wcs
from astrofmtools.io import SkyImage, load_image


def noisy_sky(shape=(512, 640), sigma=2.0, seed=0):
    """A sky that rises linearly in x and y, with white noise of known sigma."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    sky = 10.0 + 0.004 * xx + 0.002 * yy
    return sky + rng.normal(0.0, sigma, shape), sky


def test_maps_follow_a_gradient_and_the_noise():
    data, sky = noisy_sky()
    maps = estimate_background((data, make_wcs(data.shape)), box_size=32)
    assert maps.method == "Background2D" and maps.box_size == (32, 32)
    assert maps.background.shape == data.shape and maps.rms.shape == data.shape
    inner = (slice(48, -48), slice(48, -48))  # the edge boxes see a one-sided gradient
    error = np.abs(maps.background[inner] - sky[inner])
    assert error.max() < 0.25 and error.mean() < 0.06  # sigma / 8 and sigma / 30
    # the sigma-clipped std, corrected for the clipping, is the Gaussian sigma
    assert maps.rms_median == pytest.approx(2.0, rel=0.02)
    assert maps.wcs is not None
    assert "box_size" in maps.meta and maps.meta["stage"] == "background"


def test_box_values_are_photutils_background2d():
    """The maps equal photutils' box statistics at the box centres (exactly)."""
    data, _ = noisy_sky((320, 384), seed=1)
    data[100:110, 200:212] += 300.0  # a bright source, clipped away
    maps = estimate_background((data, None), box_size=63, filter_size=3)
    reference = Background2D(data, 63, filter_size=3, sigma_clip=SigmaClip(sigma=3.0))
    ys, xs = np.arange(5) * 63 + 31, np.arange(6) * 63 + 31  # box centres (odd box: a pixel)
    np.testing.assert_allclose(maps.background[np.ix_(ys, xs)],
                               reference.background_mesh[:5, :6], rtol=1e-12)
    np.testing.assert_allclose(maps.rms[np.ix_(ys, xs)],
                               reference.background_rms_mesh[:5, :6] * clipped_std_correction(3),
                               rtol=1e-12)


def test_no_data_is_kept_apart_from_ignored_pixels():
    data, sky = noisy_sky((384, 384), seed=2)
    data[:, :96] = np.nan  # outside the survey footprint
    ignore = np.zeros(data.shape, bool)
    data[200:260, 200:260] += 50.0  # a big bright source the caller masks
    ignore[190:270, 190:270] = True
    maps = estimate_background((data, None), box_size=32, mask=ignore)
    # no data: NaN in the maps; ignored pixels: real values
    assert np.isnan(maps.background[:, :96]).all() and np.isnan(maps.rms[:, :96]).all()
    assert np.isfinite(maps.background[ignore]).all()
    assert np.abs(maps.background[ignore] - sky[ignore]).max() < 0.3
    assert maps.rms_median == pytest.approx(2.0, rel=0.03)
    # without the mask the source's pixels bias the background there
    unmasked = estimate_background((data, None), box_size=32)
    assert np.abs(unmasked.background[ignore] - sky[ignore]).max() > 1.0


def test_image_mask_is_the_coverage_mask():
    data, _ = noisy_sky((256, 256), seed=3)
    nodata = np.zeros(data.shape, bool)
    nodata[:64] = True
    data[:64] = 1e6  # garbage where there is no data
    image = SkyImage(data, mask=nodata)
    maps = estimate_background(image, box_size=32)
    assert np.isnan(maps.background[:64]).all()
    assert np.nanmax(maps.background) < 13.0


def test_small_images_get_global_statistics():
    data, _ = noisy_sky((100, 90), seed=4)
    maps = estimate_background((data, None), box_size=64)
    assert maps.method == "global" and maps.box_size is None
    stats = global_noise((data, None))
    np.testing.assert_allclose(maps.background, stats.median)
    np.testing.assert_allclose(maps.rms, stats.rms)


def test_global_noise_numbers():
    rng = np.random.default_rng(5)
    data = rng.normal(3.0, 1.5, (400, 400))
    data[::37, ::41] += 1000.0  # outliers
    stats = global_noise((data, None))
    assert stats.median == pytest.approx(3.0, abs=0.01)
    assert stats.mean == pytest.approx(3.0, abs=0.01)
    assert stats.rms == pytest.approx(1.5, rel=0.01)
    assert stats.std == pytest.approx(1.5 / clipped_std_correction(3.0), rel=0.01)
    assert stats.background == stats.median and stats.n_pixels > 0.99 * data.size - 200
    masked = np.zeros(data.shape, bool)
    masked[:, :200] = True
    assert global_noise((data, None), mask=masked).n_pixels < 0.5 * data.size


def test_clipping_correction():
    assert clipped_std_correction(3.0) == pytest.approx(1.01539, abs=1e-5)
    assert clipped_std_correction(10.0) == 1.0
    assert clipped_std_correction(2.0) > clipped_std_correction(3.0) > 1.0


def test_write_and_read_keep_wcs_and_unit():
    data, _ = noisy_sky((256, 256), seed=6)
    wcs = make_wcs(data.shape)
    maps = estimate_background((data, wcs), box_size=32)
    maps.unit = u.Jy / u.beam
    maps.write("bkg.fits")
    with fits.open("bkg.fits") as hdul:
        assert [h.name for h in hdul] == ["BACKGROUND", "RMS"]
        assert hdul[0].header["BUNIT"] == "Jy beam-1"
        assert hdul[1].header["BKGBOXX"] == 32
        np.testing.assert_allclose(hdul["RMS"].data, maps.rms)
    back = BackgroundMaps.read("bkg.fits")
    np.testing.assert_allclose(back.background, maps.background)
    assert back.unit == u.Jy / u.beam and back.box_size == (32, 32)
    assert back.wcs.pixel_to_world(10, 20).separation(wcs.pixel_to_world(10, 20)).arcsec < 1e-6
    # the file opens as an image too
    assert load_image("bkg.fits").wcs is not None
    with pytest.raises(InputError, match="exists"):
        maps.write("bkg.fits")
    maps.write("bkg.fits", overwrite=True)


def test_memory_mapped_big_endian_file():
    data, _ = noisy_sky((256, 256), seed=7)
    fits.PrimaryHDU(data.astype(">f4")).writeto("big.fits")
    image = load_image("big.fits", memmap=True)
    maps = estimate_background(image, box_size=32)
    assert maps.rms_median == pytest.approx(2.0, rel=0.03)


@pytest.mark.parametrize("func", [estimate_background, global_noise])
def test_bad_input(func):
    with pytest.raises(InputError, match="no finite pixel|no valid pixel"):
        func((np.full((100, 100), np.nan), None))
    with pytest.raises(InputError, match="no valid pixel"):
        func(SkyImage(np.full((100, 100), np.nan)))
    with pytest.raises(InputError, match="empty"):
        func(SkyImage(np.zeros((0, 10))))
    with pytest.raises(InputError, match="mask has shape"):
        func((np.zeros((100, 100)), None), mask=np.zeros((10, 10), bool))
    with pytest.raises(InputError, match="cover the whole image"):
        func((np.zeros((100, 100)), None), mask=np.ones((100, 100), bool))


def test_bad_options():
    data = np.zeros((100, 100))
    for box in (0, -3, 2.5, (1, 2, 3)):
        with pytest.raises(InputError, match="box_size"):
            estimate_background((data, None), box_size=box)
    with pytest.raises(InputError, match="sigma"):
        estimate_background((data, None), sigma=0)
    with pytest.raises(InputError, match="not a background file"):
        fits.PrimaryHDU(data).writeto("plain.fits")
        BackgroundMaps.read("plain.fits")


def test_constant_image_has_zero_rms_without_warnings():
    maps = estimate_background((np.full((200, 200), 7.0), None), box_size=50)
    assert maps.background_median == 7.0 and maps.rms_median == 0.0
