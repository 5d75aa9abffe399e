# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Intervals, stretches, noise floor, channel stacks and resizing."""

import numpy as np
import pytest
from astropy.nddata import NDData
from astropy.visualization import AsinhStretch, ZScaleInterval

from astrofmtools import InputError
from astrofmtools.datasets import example_image_path, make_radio_field
from astrofmtools.io import load_image
from astrofmtools.stretch import (INTERVALS, STRETCHES, Stretch, multi_stretch, noise_floor,
                                  resize, stack_channels)


@pytest.fixture(scope="module")
def radio():
    return make_radio_field(shape=(128, 128), n_compact=10, n_extended=2, n_artefacts=0,
                            seed=7)


@pytest.mark.parametrize("interval", sorted(INTERVALS))
@pytest.mark.parametrize("stretch", sorted(STRETCHES))
def test_range_dtype_and_monotonic(stretch, interval):
    rng = np.random.default_rng(0)
    image = rng.lognormal(size=(32, 32))
    image[3, 4] = np.nan
    out = Stretch(stretch, interval=interval)(image)
    assert out.dtype == np.float32 and out.shape == image.shape
    assert out.min() >= 0 and out.max() <= 1
    assert out[3, 4] == 0  # NaN -> fill
    # monotonic: the pixel order is kept (ties allowed where clipped)
    finite = np.isfinite(image)
    order = np.argsort(image[finite])
    assert np.all(np.diff(out[finite][order]) >= 0)
    # and it is a real stretch: the full range is used
    assert out.max() == pytest.approx(1.0, abs=1e-6)


def test_known_values():
    x = np.linspace(0, 1, 11)[None, :]
    assert np.allclose(Stretch("linear", interval="minmax")(x), x)
    assert np.allclose(Stretch("sqrt", interval="minmax")(x), np.sqrt(x))
    assert np.allclose(Stretch("power", interval="minmax", a=3)(x), x**3)
    assert np.allclose(Stretch("log", interval="minmax")(x), np.log(1000 * x + 1) / np.log(1001))
    assert np.allclose(Stretch("asinh", interval="minmax", a=0.05)(x),
                       np.arcsinh(x / 0.05) / np.arcsinh(1 / 0.05))
    # percentile limits: 98% keeps 1%..99%
    y = np.arange(1001, dtype=float)[None, :]
    linear = Stretch("linear", percentile=98)(y)
    lo, hi = Stretch(percentile=98).get_limits(y)
    assert (lo, hi) == pytest.approx((10.0, 990.0))
    assert Stretch(percentile=(5, 50)).get_limits(y) == pytest.approx((50.0, 500.0))
    assert linear[0, 0] == 0 and linear[0, -1] == 1 and linear[0, 500] == pytest.approx(0.5)


def test_astropy_objects_accepted():
    image = np.random.default_rng(1).normal(size=(64, 64))
    a = Stretch(AsinhStretch(a=0.2), interval=ZScaleInterval())(image)
    b = Stretch("asinh", interval="zscale", a=0.2)(image)
    assert np.array_equal(a, b)


def test_interval_per_image_in_stacks():
    rng = np.random.default_rng(2)
    base = rng.lognormal(size=(3, 16, 16))
    stack = base * np.array([1.0, 1e3, 1e-4])[:, None, None]
    out = Stretch("asinh", interval="percentile", percentile=99)(stack)
    # each image scaled by its own limits: scaling an image changes nothing
    single = Stretch("asinh", interval="percentile", percentile=99)(base[0])
    for k in range(3):
        ref = Stretch("asinh", interval="percentile", percentile=99)(base[k])
        assert np.allclose(out[k], ref, atol=1e-6)
    assert np.allclose(out[0], single)
    vmin, vmax = Stretch(interval="minmax").get_limits(stack)
    assert vmax == pytest.approx(stack.reshape(3, -1).max(axis=1))
    # (N, C, H, W) works the same way
    out4 = Stretch("sqrt", interval="minmax")(stack.reshape(1, 3, 16, 16))
    assert out4.shape == (1, 3, 16, 16) and np.allclose(out4.max(axis=(2, 3)), 1.0)


def test_nan_safety_and_fill():
    stack = np.ones((3, 8, 8))
    stack[0] = np.nan  # an image without data
    stack[1, 2:4, 2:4] = np.nan
    stack[2] = np.arange(64).reshape(8, 8)
    out = Stretch("linear", interval="minmax", fill=0.25)(stack)
    assert np.all(out[0] == 0.25)
    assert np.all(out[1, 2:4, 2:4] == 0.25)
    assert np.all(out[1][np.isfinite(stack[1])] == 0)  # constant image -> 0
    assert out[2].max() == 1 and out[2].min() == 0
    assert np.isfinite(out).all()
    # NDData masks and masked arrays are no-data too
    masked = np.ma.masked_array(stack[2], mask=stack[2] > 60)
    assert np.all(Stretch("linear", interval="minmax")(masked)[7, 5:] == 0)
    nd = NDData(stack[2], mask=stack[2] > 60)
    assert np.array_equal(Stretch("linear", interval="minmax")(nd),
                          Stretch("linear", interval="minmax")(masked))


def test_vmin_vmax_override():
    image = np.array([[-5.0, 0.0, 5.0, 10.0]])
    out = Stretch("linear", interval="minmax", vmin=0.0)(image)
    assert np.allclose(out, [[0, 0, 0.5, 1]])
    out = Stretch("linear", interval="manual", vmax=5.0)(image)
    assert np.allclose(out, [[0, 0.5, 1, 1]])


def test_noise_floor_zeroes_noise_keeps_sources(radio):
    image, truth = radio
    rms = 1.5e-4
    out = noise_floor(image, rms=rms, k=3.0)
    assert out.dtype == np.float32
    data = image.data
    # every pixel below 3 sigma is at the floor, everything above kept exactly
    assert np.all(out[data < 3 * rms] == 0)
    assert np.array_equal(out[data >= 3 * rms], data[data >= 3 * rms])
    # ~99.7% of pure-noise pixels are gone (Gaussian: P(x < 3 sigma) = 0.99865)
    noise_only = np.ones(data.shape, bool)
    for row in truth:
        noise_only[row["bbox_ymin"]:row["bbox_ymax"] + 1,
                   row["bbox_xmin"]:row["bbox_xmax"] + 1] = False
    assert np.mean(out[noise_only] == 0) > 0.995
    # the peaks of all sources above 3 sigma survive
    for row in truth[truth["snr"] > 3.5]:
        box = out[row["bbox_ymin"]:row["bbox_ymax"] + 1, row["bbox_xmin"]:row["bbox_xmax"] + 1]
        assert box.max() > 3 * rms


def test_noise_floor_background_auto_and_maps():
    rng = np.random.default_rng(3)
    data = 100.0 + rng.normal(0, 2.0, size=(2, 64, 64))
    data[:, 30:34, 30:34] += 50.0
    auto = noise_floor(data, "auto", k=5.0, background="auto")
    assert np.all(auto[:, 30:34, 30:34] == pytest.approx(50.0, abs=10))
    assert np.mean(auto == 0) > 0.99
    # a maps object (as background estimation returns) works the same way

    class Maps:
        background = np.full((64, 64), 100.0)
        rms = np.full((64, 64), 2.0)
    maps = noise_floor(data[0], Maps(), k=5.0)
    assert np.array_equal(maps, noise_floor(data[0], 2.0, k=5.0, background=100.0))
    # a NaN stays NaN, the floor is relative to the background
    data[0, 0, 0] = np.nan
    out = noise_floor(data[0], 2.0, background=100.0, floor=-1.0)
    assert np.isnan(out[0, 0]) and np.sum(out == -1.0) > 4000


def test_stack_channels_shapes_and_errors():
    assert stack_channels([np.zeros((4, 5))] * 3).shape == (3, 4, 5)
    out = stack_channels([np.zeros((2, 4, 5)), np.ones((2, 4, 5))])
    assert out.shape == (2, 2, 4, 5) and out.dtype == np.float32
    assert np.all(out[:, 1] == 1)
    with pytest.raises(InputError, match="channel 1 has shape"):
        stack_channels([np.zeros((4, 5)), np.zeros((5, 4))])
    with pytest.raises(InputError, match="non-empty"):
        stack_channels([])


def test_multi_stretch_distinct_channels():
    image = load_image(example_image_path())
    out = multi_stretch(image)
    assert out.shape == (3, 300, 300) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    linear, asinh, log = out
    # distinct channels; faint emission is brightest under log, then asinh
    assert not np.allclose(linear, asinh) and not np.allclose(asinh, log)
    assert np.median(linear) < np.median(asinh) < np.median(log)
    stack = multi_stretch(np.stack([image.data, 2 * image.data]))
    assert stack.shape == (2, 3, 300, 300)
    assert np.allclose(stack[0], stack[1], atol=1e-6)  # per-image intervals
    custom = multi_stretch(image, stretches=[Stretch("sqrt", interval="zscale"), "linear"])
    assert custom.shape == (2, 300, 300)


def test_bad_names_raise():
    with pytest.raises(InputError, match="known stretches are: linear, sqrt, log, asinh"):
        Stretch("gamma")
    with pytest.raises(InputError, match="known intervals are: minmax, percentile, zscale"):
        Stretch(interval="histogram")
    with pytest.raises(InputError, match="Unknown stretch 'nope'"):
        multi_stretch(np.zeros((4, 4)), stretches=("linear", "nope"))
    with pytest.raises(InputError, match="percentile"):
        Stretch(percentile=150)
    with pytest.raises(InputError, match="image"):
        Stretch()(np.zeros(5))
    with pytest.raises(InputError, match="rms"):
        noise_floor(np.zeros((4, 4)), rms="median")


def test_resize_shapes_range_and_nan():
    rng = np.random.default_rng(4)
    stack = rng.random((2, 3, 64, 64)).astype(np.float32)
    out = resize(stack, (224, 224))
    assert out.shape == (2, 3, 224, 224) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    # shrinking a checkerboard is anti-aliased to its mean
    board = np.indices((64, 64)).sum(axis=0) % 2.0
    assert np.allclose(resize(board, 16)[2:-2, 2:-2], 0.5, atol=0.02)
    assert np.all(resize(board, 16, order=0, anti_aliasing=False) == 0)  # aliased
    # NaN does not spread: a NaN corner stays local, a constant stays constant
    image = np.ones((64, 64))
    image[:8, :8] = np.nan
    small = resize(image, 32)
    assert np.isnan(small[:3, :3]).all()
    assert np.all(small[np.isfinite(small)] == pytest.approx(1.0))
    assert np.isfinite(small).sum() >= 32 * 32 - 4 * 4 - 8
    # a linear ramp stays a ramp
    ramp = np.tile(np.arange(32.0), (32, 1))
    big = resize(ramp, 64)
    assert np.all(np.diff(big, axis=1) >= 0)
    with pytest.raises(InputError, match="size"):
        resize(image, 0)
