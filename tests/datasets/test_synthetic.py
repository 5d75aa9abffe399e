# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Synthetic radio and optical fields: reproducibility, noise, truth, WCS."""


import numpy as np
import pytest
import astropy.units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.stats import sigma_clipped_stats

from astrofmtools import InputError
from astrofmtools.datasets import make_optical_field, make_radio_field
from astrofmtools.io import load_image

RADIO = dict(shape=(384, 384), n_compact=40, n_extended=8, n_artefacts=2, seed=3)


@pytest.fixture(scope="module")
def radio():
    image, truth = make_radio_field(**RADIO)
    model, _ = make_radio_field(add_noise=False, **RADIO)
    return image, truth, model


@pytest.fixture(scope="module")
def optical():
    image, truth = make_optical_field(shape=(256, 256), n_galaxies=15, n_stars=10, seed=5)
    model, _ = make_optical_field(shape=(256, 256), n_galaxies=15, n_stars=10, seed=5,
                                  add_noise=False)
    return image, truth, model


def _bbox(row):
    return (slice(row["bbox_ymin"], row["bbox_ymax"] + 1),
            slice(row["bbox_xmin"], row["bbox_xmax"] + 1))


@pytest.mark.parametrize("make", [make_radio_field, make_optical_field])
def test_same_seed_same_field(make):
    a, ta = make(shape=(192, 192), seed=11)
    b, tb = make(shape=(192, 192), seed=11)
    c, _ = make(shape=(192, 192), seed=12)
    assert np.array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data)
    for name in ta.colnames:
        if name == "sky_centroid":
            assert np.all(ta[name].separation(tb[name]) == 0 * u.deg)
        elif ta[name].dtype.kind == "f":
            assert np.array_equal(ta[name], tb[name], equal_nan=True)
        else:
            assert np.all(ta[name] == tb[name])


def test_radio_noise_rms_is_the_requested_value(radio):
    image, truth, model = radio
    noise = image.data.astype(float) - model.data
    # exact by construction (float32 rounding only)
    assert np.std(noise) == pytest.approx(1.5e-4, rel=1e-4)
    # and what a user measures on the image, sources clipped
    _, median, std = sigma_clipped_stats(image.data, sigma=3.0)
    assert std == pytest.approx(1.5e-4, rel=0.02)
    assert abs(median) < 0.05 * 1.5e-4


def test_radio_noise_is_beam_correlated(radio):
    image, _, model = radio
    noise = image.data.astype(float) - model.data
    sigma = 3.0 / np.sqrt(8 * np.log(2))  # 5.4" / 1.8" = 3 pixel FWHM
    # autocorrelation at lag 1 of white noise smoothed by a Gaussian of
    # sigma s is exp(-1 / (4 s^2))
    lag1 = np.mean(noise[:, 1:] * noise[:, :-1]) / np.var(noise)
    assert lag1 == pytest.approx(np.exp(-1 / (4 * sigma**2)), abs=0.02)


def test_radio_truth_columns_and_kinds(radio):
    image, truth, _ = radio
    assert list(truth.colnames) == [
        "id", "x", "y", "ra", "dec", "sky_centroid", "kind", "n_components", "n_peaks",
        "peak", "flux", "snr", "size", "bbox_xmin", "bbox_xmax", "bbox_ymin", "bbox_ymax"]
    kinds = list(truth["kind"])
    assert kinds.count("compact") == 40
    assert kinds.count("FRI") + kinds.count("FRII") == 8
    assert kinds.count("artefact") == 2
    assert truth["peak"].unit == u.Jy / u.beam and truth["flux"].unit == u.Jy
    assert all(truth[c].info.description for c in truth.colnames)
    assert "versions" in truth.meta
    compact = truth[truth["kind"] == "compact"]
    assert np.all((compact["snr"] >= 3) & (compact["snr"] <= 300))
    assert np.all(compact["n_peaks"] == 1) and np.all(compact["size"] == 5.4 * u.arcsec)
    ext = truth[(truth["kind"] == "FRI") | (truth["kind"] == "FRII")]
    assert np.all((ext["n_components"] >= 1) & (ext["n_components"] <= 3))
    assert np.all((ext["n_peaks"] >= ext["n_components"]) & (ext["n_peaks"] <= 3))
    assert np.all(ext["size"] > 5.4 * u.arcsec)


def test_radio_truth_matches_pixels(radio):
    image, truth, model = radio
    sigma_pix = 3.0 / np.sqrt(8 * np.log(2))
    beam_area = 2 * np.pi * sigma_pix**2
    for row in truth[truth["kind"] == "compact"]:
        stamp = model.data[_bbox(row)]
        # isolated sources: the noiseless image holds only this source there
        assert stamp.max() == pytest.approx(row["peak"].value, rel=1e-5)
        assert row["snr"] == pytest.approx(row["peak"].value / 1.5e-4)
        iy, ix = np.unravel_index(np.argmax(stamp), stamp.shape)
        assert abs(ix + row["bbox_xmin"] - row["x"]) <= 0.5
        assert abs(iy + row["bbox_ymin"] - row["y"]) <= 0.5
        # the flux of a point source is its Gaussian amplitude, >= the pixel peak
        assert 1.0 <= row["flux"].value / row["peak"].value < 1.25
    # total flux: every pixel of the noiseless image belongs to one truth row
    total = model.data.astype(float).sum() / beam_area
    assert truth["flux"].sum().value == pytest.approx(total, rel=1e-4)
    # the bbox is the footprint where the model exceeds 1 sigma: its edge rows
    # and columns reach 1 sigma, the pixels just outside do not
    sources = truth[truth["kind"] != "artefact"]
    for row in sources[sources["kind"] != "compact"]:
        y0, y1, x0, x1 = (row[f"bbox_{c}"] for c in ("ymin", "ymax", "xmin", "xmax"))
        others = truth[truth["id"] != row["id"]]
        if np.any((others["bbox_xmin"] <= x1 + 1) & (others["bbox_xmax"] >= x0 - 1)
                  & (others["bbox_ymin"] <= y1 + 1) & (others["bbox_ymax"] >= y0 - 1)):
            continue  # a neighbour's footprint touches it
        box = model.data[y0:y1 + 1, x0:x1 + 1]
        assert box.max() == pytest.approx(row["peak"].value, rel=1e-5)
        assert min(box[0].max(), box[-1].max(), box[:, 0].max(), box[:, -1].max()) >= 1.5e-4
        ring = model.data[max(y0 - 1, 0):y1 + 2, max(x0 - 1, 0):x1 + 2].copy()
        ring[1:-1, 1:-1] = 0
        assert ring.max() < 1.5e-4


def test_radio_sources_apart(radio):
    _, truth, _ = radio
    compact = truth[truth["kind"] == "compact"]
    dx = compact["x"][:, None] - compact["x"][None, :]
    dy = compact["y"][:, None] - compact["y"][None, :]
    d = np.hypot(dx, dy) + np.diag(np.full(len(compact), np.inf))
    assert d.min() >= 2 * 3.0  # 2 beams of 3 pixels


def test_radio_overlaps_allowed():
    _, truth = make_radio_field(shape=(64, 64), n_compact=80, n_extended=0, n_artefacts=0,
                                min_separation=None, seed=0)
    assert len(truth) == 80
    with pytest.raises(InputError, match="too crowded"):
        make_radio_field(shape=(64, 64), n_compact=80, n_extended=0, seed=0)


def test_radio_fits_round_trip(radio, tmp_path):
    image, truth, _ = radio
    path = tmp_path / "radio.fits"
    fits.PrimaryHDU(image.data, header=image.header).writeto(path)
    loaded = load_image(path)
    assert np.array_equal(loaded.data, image.data)
    assert loaded.unit == u.Jy / u.beam
    assert loaded.beam.major.to(u.arcsec).value == pytest.approx(5.4)
    assert loaded.pixel_scale.to_value(u.arcsec) == pytest.approx(1.8)
    sky = loaded.wcs.pixel_to_world(truth["x"], truth["y"])
    assert np.all(sky.separation(truth["sky_centroid"]) < 1e-6 * u.arcsec)
    assert np.allclose(truth["ra"].to_value(u.deg), truth["sky_centroid"].ra.deg)
    # the image centre is at `center`
    centre = loaded.wcs.pixel_to_world((384 - 1) / 2, (384 - 1) / 2)
    assert centre.separation(SkyCoord(150, 2, unit="deg")) < 1e-6 * u.arcsec


def test_radio_artefacts_near_brightest(radio):
    _, truth, _ = radio
    sources = truth[truth["kind"] != "artefact"]
    bright = sources[np.argmax(sources["peak"])]
    for row in truth[truth["kind"] == "artefact"]:
        d = np.hypot(row["x"] - bright["x"], row["y"] - bright["y"])
        assert d < 25 * 3.0
        assert row["snr"] >= 3


def test_radio_bad_input():
    with pytest.raises(InputError, match="snr_range"):
        make_radio_field(snr_range=(10, 1))
    with pytest.raises(InputError, match="noise"):
        make_radio_field(noise=-1)
    with pytest.raises(InputError, match="noise must be in Jy/beam"):
        make_radio_field(noise=1 * u.m)
    with pytest.raises(InputError, match="beam_fwhm"):
        make_radio_field(beam_fwhm=0 * u.arcsec)
    with pytest.raises(InputError, match="shape"):
        make_radio_field(shape=(8, 8))
    with pytest.raises(InputError, match="n_compact"):
        make_radio_field(n_compact=2.5)


def test_radio_empty_field():
    image, truth = make_radio_field(shape=(64, 64), n_compact=0, n_extended=0, n_artefacts=0)
    assert len(truth) == 0 and "sky_centroid" in truth.colnames
    assert np.std(image.data) == pytest.approx(1.5e-4, rel=1e-4)


def test_optical_truth_matches_pixels(optical):
    image, truth, model = optical
    assert image.unit == u.adu
    assert image.beam.major.to_value(u.arcsec) == pytest.approx(0.6)
    sky = model.data.astype(float) - 100.0
    # every object's flux is in the image; all pixels belong to one object
    assert truth["flux"].sum().value == pytest.approx(sky.sum(), rel=1e-5)
    for row in truth:
        # (Sersic wings of neighbours add a little: < 0.1 sky rms)
        assert -1e-4 <= sky[_bbox(row)].max() - row["peak"].value < 0.1  # float32
    assert np.allclose(truth["snr"], truth["peak"].value / 1.0)
    gal = truth[truth["kind"] == "galaxy"]
    assert set(np.unique(gal["sersic_n"])) <= {0.5, 1.0, 1.5, 2.5, 4.0}
    assert len(np.unique(gal["sersic_n"])) >= 3
    assert np.all(np.isnan(truth[truth["kind"] == "star"]["sersic_n"]))
    assert np.all((gal["ellipticity"] >= 0) & (gal["ellipticity"] < 0.7))


def test_optical_noise_and_sky(optical):
    image, _, model = optical
    noise = image.data.astype(float) - model.data
    assert np.std(noise) == pytest.approx(1.0, rel=0.02)
    _, median, std = sigma_clipped_stats(image.data, sigma=3.0)
    assert median == pytest.approx(100.0, abs=0.1)
    assert std == pytest.approx(1.0, rel=0.03)


def test_optical_star_is_the_psf(optical):
    _, truth, model = optical
    star = truth[truth["kind"] == "star"][0]
    # a pixel-integrated Gaussian of FWHM 3 px: the second moment gives sigma
    sky = model.data.astype(float) - 100.0
    sub = sky[_bbox(star)]
    yy, xx = np.mgrid[_bbox(star)]
    var_x = (sub * (xx - star["x"]) ** 2).sum() / sub.sum()
    sigma = 3.0 / np.sqrt(8 * np.log(2))
    # pixel integration adds 1/12 pixel^2; the 1-sigma footprint cuts the wings
    assert np.sqrt(var_x) == pytest.approx(np.sqrt(sigma**2 + 1 / 12), rel=0.1)


def test_optical_fits_round_trip(optical, tmp_path):
    image, truth, _ = optical
    path = tmp_path / "optical.fits"
    fits.PrimaryHDU(image.data, header=image.header).writeto(path)
    loaded = load_image(path)
    assert loaded.unit == u.adu
    sky = loaded.wcs.pixel_to_world(truth["x"], truth["y"])
    assert np.all(sky.separation(truth["sky_centroid"]) < 1e-6 * u.arcsec)


def test_optical_poisson_noise_grows_with_flux():
    kwargs = dict(shape=(128, 128), n_galaxies=0, n_stars=8, snr_range=(2000, 3000), seed=4)
    model, truth = make_optical_field(add_noise=False, **kwargs)
    noisy, _ = make_optical_field(gain=1.0, **kwargs)
    resid = noisy.data.astype(float) - model.data
    on = model.data - 100 > 1000
    # on the bright stars the variance is ~ counts / gain + sky_noise^2
    expected = np.mean(model.data[on] - 100) + 1.0
    assert np.var(resid[on]) == pytest.approx(expected, rel=0.2)
