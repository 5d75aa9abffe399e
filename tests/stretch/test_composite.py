# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Band composites: per-band stretches, Lupton RGB, radio on infrared."""

import numpy as np
import pytest
from astropy.stats import sigma_clipped_stats
from astropy.table import QTable
from astropy.visualization import (LuptonAsinhStretch, LuptonAsinhZscaleStretch,
                                   ManualInterval, make_lupton_rgb)

from astrofmtools import InputError
from astrofmtools.cutouts import make_cutouts
from astrofmtools.io import SkyImage
from astrofmtools.stretch import (Stretch, composite, lupton_rgb, noise_floor,
                                  radio_ir_composite, stretch_bands)


def _gauss(shape, x0, y0, sigma, amplitude=1.0):
    y, x = np.indices(shape)
    return amplitude * np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma ** 2))


@pytest.fixture(scope="module")
def optical():
    """A g, r, z field: a red galaxy and a blue star on a sky of 100 with noise 1."""
    rng = np.random.default_rng(0)
    shape = (64, 80)
    galaxy = _gauss(shape, 20, 30, 4.0, 200.0)
    star = _gauss(shape, 60, 20, 1.5, 300.0)
    colours = {"g": (0.4, 1.5), "r": (1.0, 1.0), "z": (1.6, 0.5)}
    data = np.stack([colours[b][0] * galaxy + colours[b][1] * star + 100.0
                     + rng.normal(0, 1.0, shape) for b in "grz"])
    return SkyImage(data, bands=["g", "r", "z"])


@pytest.fixture(scope="module")
def radio_ir():
    """Radio (Jy/beam, rms 1e-4) with a source at (12, 20); infrared (rms 2) with a
    galaxy at (40, 30), both on a 48 x 64 grid."""
    rng = np.random.default_rng(1)
    shape = (48, 64)
    radio = rng.normal(0, 1e-4, shape) + _gauss(shape, 12, 20, 2.0, 0.01)  # peak SNR 100
    infrared = rng.normal(500.0, 2.0, shape) + _gauss(shape, 40, 30, 2.0, 400.0)
    return SkyImage(np.stack([radio, infrared]), bands=["first", "w1"],
                    band_units=["Jy/beam", "adu"])


# ---------------------------------------------------------------- stretch_bands
def test_each_band_gets_its_own_interval(optical):
    out = stretch_bands(optical)
    assert out.shape == (3, 64, 80) and out.dtype == np.float32
    assert out.min() == 0 and out.max() == 1
    for c in range(3):  # each band is exactly its own Stretch, ignoring the others
        assert np.array_equal(out[c], Stretch()(optical.data[c]))
    # scaling one band by 1e6 changes nothing in the others, nor in itself
    data = optical.data.copy()
    data[1] = data[1] * 1e6 + 3e7
    scaled = stretch_bands(data, names=["g", "r", "z"])
    assert np.array_equal(scaled[[0, 2]], out[[0, 2]])
    assert np.allclose(scaled[1], out[1], atol=1e-5)
    # selecting and reordering bands by name or index
    zrg = stretch_bands(optical, bands=["z", 1, "g"])
    assert np.array_equal(zrg, out[[2, 1, 0]])


def test_per_band_settings_and_noise_floor(radio_ir):
    out = stretch_bands(radio_ir, stretch={"first": "log"}, noise_floor={"first": 3.0})
    radio, infrared = radio_ir.data
    expected_radio = Stretch("log", interval="minmax", vmin=0)(
        noise_floor(radio, rms="auto", k=3.0, background="auto"))
    assert np.array_equal(out[0], expected_radio)
    assert np.array_equal(out[1], Stretch("asinh")(infrared))
    # below 3 sigma is 0; the radio peak is 1
    assert out[0, 20, 12] == 1 and np.mean(out[0] == 0) > 0.9
    # the same with lists, one value per band
    same = stretch_bands(radio_ir, stretch=["log", "asinh"], noise_floor=[3.0, None])
    assert np.array_equal(same, out)
    # a Stretch per band is used as it is
    fixed = stretch_bands(radio_ir, bands=["w1"], stretch=[Stretch("linear", "manual",
                                                                   vmin=500, vmax=600)])
    assert np.allclose(fixed[0], np.clip((infrared - 500) / 100, 0, 1), atol=1e-6)


def test_stacks_get_one_interval_per_image(optical):
    stack = np.stack([optical.data, 10 * optical.data[::-1]])  # (2, 3, H, W)
    out = stretch_bands(stack, names=["g", "r", "z"])
    assert out.shape == (2, 3, 64, 80)
    assert np.array_equal(out[0], stretch_bands(optical))
    assert np.array_equal(out[1], stretch_bands(stack[1], names=["g", "r", "z"]))


def test_nan_and_masks_are_filled(optical):
    data = optical.data.copy()
    data[0, :5] = np.nan
    mask = np.zeros(data.shape, dtype=bool)
    mask[2, :, :4] = True
    image = SkyImage(data, mask=mask, bands=["g", "r", "z"])
    out = stretch_bands(image, fill=-1)
    assert np.all(out[0, :5] == -1) and np.all(out[2, :, :4] == -1)
    good = np.ones(data.shape, dtype=bool)
    good[0, :5] = good[2, :, :4] = False
    assert np.all((out[good] >= 0) & (out[good] <= 1))
    assert np.all(out[1] >= 0)  # the band without holes is untouched


def test_multiband_cutout_stacks(optical):
    stack = make_cutouts(optical, QTable({"x": [20.0, 60.0], "y": [30.0, 20.0]}), size=16)
    out = stretch_bands(stack, bands=["z", "g"])
    assert out.shape == (2, 2, 16, 16)
    assert np.array_equal(out[1, 0], Stretch()(stack.data[1, 2]))


def test_band_errors(optical):
    with pytest.raises(InputError, match="no band 'i'; the bands are: g, r, z"):
        stretch_bands(optical, bands=["r", "i"])
    with pytest.raises(InputError, match="no band 5"):
        stretch_bands(optical, bands=[5])
    with pytest.raises(InputError, match="2 values for 3 bands"):
        stretch_bands(optical, stretch=["log", "asinh"])
    with pytest.raises(InputError, match="no band 'u'"):
        stretch_bands(optical, stretch={"u": "log"})
    with pytest.raises(InputError, match="already names its bands"):
        stretch_bands(optical, names=["a", "b", "c"])
    with pytest.raises(InputError, match="2 band names"):
        stretch_bands(np.zeros((3, 4, 4)), names=["a", "b"])


# ------------------------------------------------------------------ lupton_rgb
def test_lupton_matches_astropy(optical):
    g, r, z = optical.data
    minimum = [100.0, 100.0, 100.0]
    out = lupton_rgb(optical, bands=["z", "r", "g"], minimum=100.0, stretch=20, Q=8)
    assert out.shape == (3, 64, 80) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    intervals = [ManualInterval(vmin=m, vmax=None) for m in minimum]
    as_float = make_lupton_rgb(z, r, g, interval=intervals, stretch=20, Q=8,
                               output_dtype=np.float64)
    assert np.allclose(out, np.moveaxis(as_float, -1, 0), atol=1e-6)
    as_uint8 = make_lupton_rgb(z, r, g, interval=intervals, stretch=20, Q=8)
    assert np.abs(out - np.moveaxis(as_uint8, -1, 0) / 255).max() <= 1 / 255 + 1e-6
    # the default: sky level from sigma-clipped medians, stretch from zscale
    auto = lupton_rgb(optical, bands=["z", "r", "g"])
    sky = [sigma_clipped_stats(b, sigma=3.0, maxiters=10)[1] for b in (z, r, g)]
    stretch = LuptonAsinhZscaleStretch(np.stack([z, r, g]), Q=8, pedestal=sky)
    assert abs(stretch.stretch - 20) < 15  # a sensible automatic range
    reference = make_lupton_rgb(z, r, g, interval=[ManualInterval(vmin=s) for s in sky],
                                stretch_object=LuptonAsinhStretch(stretch.stretch, Q=8),
                                output_dtype=np.float64)
    assert np.allclose(auto, np.moveaxis(reference, -1, 0), atol=1e-6)


def test_lupton_keeps_colours(optical):
    rgb = lupton_rgb(optical, bands=["z", "r", "g"], minimum=100.0, stretch=20)
    galaxy, star = rgb[:, 30, 20], rgb[:, 20, 60]
    assert galaxy[0] > galaxy[1] > galaxy[2]  # red galaxy
    assert star[2] > star[1] > star[0]  # blue star
    # colour ratios are those of the input (up to the noise): z/g = 1.6 / 0.4
    assert galaxy[0] / galaxy[2] == pytest.approx(1.6 / 0.4, rel=0.05)
    # scales multiply each band: equal scaled bands give grey
    grey = lupton_rgb(optical, bands=["z", "r", "g"], minimum=100.0, stretch=20,
                      scales=[1 / 1.6, 1.0, 1 / 0.4])
    assert grey[0, 30, 20] == pytest.approx(grey[2, 30, 20], rel=0.05)


def test_lupton_nan_safe_and_stacks(optical):
    data = optical.data.copy()
    data[0, 30, 20] = np.nan  # g missing at the galaxy's centre
    data[:, :3, :3] = np.nan  # no data in any band
    rgb = lupton_rgb(data, names=["g", "r", "z"], bands=["z", "r", "g"], fill=0.5)
    assert np.isfinite(rgb).all()
    assert np.all(rgb[:, :3, :3] == 0.5)
    assert rgb[2, 30, 20] == 0 and rgb[0, 30, 20] > 0.5  # blue off, red kept
    stack = np.stack([optical.data, optical.data[:, ::-1]])
    out = lupton_rgb(stack, names=["g", "r", "z"], bands=["z", "r", "g"])
    assert out.shape == (2, 3, 64, 80)
    assert np.array_equal(out[1], lupton_rgb(stack[1], names=["g", "r", "z"],
                                             bands=["z", "r", "g"]))
    # a constant image is black, not an error
    assert np.all(lupton_rgb(np.ones((3, 8, 8))) == 0)


def test_lupton_errors(optical, radio_ir):
    with pytest.raises(InputError, match="three bands.*has 2 \\(first, w1\\)"):
        lupton_rgb(radio_ir)
    with pytest.raises(InputError, match="no band 'i'; the bands are: g, r, z"):
        lupton_rgb(optical, bands=["i", "r", "g"])
    with pytest.raises(InputError, match="stretch must be"):
        lupton_rgb(optical, stretch=-1)
    with pytest.raises(InputError, match="minimum must be"):
        lupton_rgb(optical, minimum=[1, 2])


# ---------------------------------------------------------- radio on infrared
def test_radio_channel_sits_on_the_radio_source(radio_ir):
    rgb = radio_ir_composite(radio_ir, radio="first", ir="w1")
    assert rgb.shape == (3, 48, 64) and rgb.dtype == np.float32
    assert rgb.min() >= 0 and rgb.max() <= 1
    red, green, blue = rgb
    assert np.unravel_index(np.argmax(red), red.shape) == (20, 12)
    assert np.array_equal(green, blue)
    assert green[30, 40] == 1 and np.mean(green[25:36, 35:46] > 0.5) > 0.1
    y, x = np.indices(green.shape)
    assert np.all(green[np.hypot(x - 40, y - 30) > 8] < 0.5)
    # the noise floor: the radio channel is empty away from the source
    y, x = np.indices(red.shape)
    far = np.hypot(x - 12, y - 20) > 8
    assert np.mean(red[far] == 0) > 0.99
    # radio_channel moves it
    blue_radio = radio_ir_composite(radio_ir, radio=0, ir=1, radio_channel=2)
    assert np.array_equal(blue_radio[2], red) and np.array_equal(blue_radio[0], green)


def test_radio_contours_sit_where_the_radio_source_is(radio_ir):
    rgb = radio_ir_composite(radio_ir, radio="first", ir="w1", mode="contour", levels=[10])
    red, green, blue = rgb
    line = (red == 1) & (green == 0) & (blue == 0)
    assert line.sum() > 10
    # the 10-sigma contour of a Gaussian of peak 100 sigma and sigma 2 pixels
    y, x = np.nonzero(line)
    radius = np.hypot(x - 12, y - 20)
    expected = 2.0 * np.sqrt(2 * np.log(100 / 10))  # 4.29 pixels
    assert np.all(np.abs(radius - expected) < 1.3)
    # off the lines, the three channels are the infrared greyscale
    assert np.array_equal(red[~line], green[~line]) and np.array_equal(green, blue)
    ir = Stretch("asinh")(radio_ir.data[1])
    assert np.array_equal(green[~line], ir[~line])
    # default levels: 3, 6, 12... sigma up to the peak, nested around the source
    many = radio_ir_composite(radio_ir, mode="contour", rms=1e-4, background=0.0)
    lines = (many[0] == 1) & (many[1] == 0)
    near = np.hypot(*np.nonzero(lines)[::-1] - np.array([[12], [20]])) < 7
    assert near.mean() > 0.8 and lines.sum() > 2 * line.sum()
    wide = radio_ir_composite(radio_ir, mode="contour", levels=[10], width=3)
    assert ((wide[0] == 1) & (wide[1] == 0)).sum() > 2 * line.sum()


def test_radio_ir_stacks_nan_and_errors(radio_ir):
    data = radio_ir.data.copy()
    data[:, :, :5] = np.nan
    stack = np.stack([data, data[:, ::-1]])
    for mode in ("channel", "contour"):
        out = radio_ir_composite(stack, names=["first", "w1"], mode=mode, levels=[10])
        assert out.shape == (2, 3, 48, 64) and np.isfinite(out).all()
        assert np.all(out[:, :, :, :5] == 0)
        assert np.array_equal(out[1], radio_ir_composite(data[:, ::-1], mode=mode,
                                                         levels=[10]))
    with pytest.raises(InputError, match="mode must be"):
        radio_ir_composite(radio_ir, mode="overlay")
    with pytest.raises(InputError, match="no band 'vlass'; the bands are: first, w1"):
        radio_ir_composite(radio_ir, radio="vlass")
    with pytest.raises(InputError, match="radio_channel"):
        radio_ir_composite(radio_ir, radio_channel=3)


def test_one_channel_stacking_function(monkeypatch, optical, radio_ir):
    calls = []
    original = composite.stack_channels

    def spy(channels):
        calls.append(len(channels))
        return original(channels)

    monkeypatch.setattr(composite, "stack_channels", spy)
    stretch_bands(optical)
    lupton_rgb(optical)
    radio_ir_composite(radio_ir)
    radio_ir_composite(radio_ir, mode="contour")
    assert calls == [3, 3, 3, 3]
