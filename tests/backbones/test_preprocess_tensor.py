"""The torch preprocessing (`Preprocess.to_tensor`) against the NumPy one, and its use in
`extract_features`."""

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from astropy.stats import sigma_clipped_stats  # noqa: E402

from astrofmtools import InputError  # noqa: E402
from astrofmtools.backbones import Preprocess, extract_features, load_backbone  # noqa: E402
from astrofmtools.backbones import features as features_module  # noqa: E402
from astrofmtools.backbones import preprocess_tensor as pt  # noqa: E402

CUDA = torch.cuda.is_available()
TOL = 1e-3  # the brief's bound; the measured differences are about 1e-5


def radio_cutouts(n=10, size=48, bands=None, seed=0):
    """Noise and Gaussian sources (compact to resolved, SNR 5 to 500), some NaN pixels and
    a blank (all-NaN) cutout."""
    rng = np.random.default_rng(seed)
    shape = (n, size, size) if bands is None else (n, bands, size, size)
    noise = 1e-4
    data = rng.normal(0.0, noise, shape)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        for _ in range(rng.integers(1, 4)):
            cx, cy = rng.uniform(0.3 * size, 0.7 * size, 2)
            sigma = rng.uniform(1.0, size / 8)
            peak = noise * 10 ** rng.uniform(np.log10(5), np.log10(500))
            data[i] += peak * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma ** 2))
    data = data.astype(np.float32)
    data[1, ..., :4, :] = np.nan  # a blanked edge
    data[2] = np.nan  # no data at all
    data[3, ..., 10, 12] = np.nan  # one bad pixel
    return data


def _max_diff(pre, data, **kwargs):
    ref = pre(data, **kwargs).numpy()
    got = pre.to_tensor(data, **kwargs)
    assert got.dtype == torch.float32 and tuple(got.shape) == ref.shape
    assert np.isfinite(got.numpy()).all()
    return float(np.abs(got.numpy() - ref).max())


@pytest.mark.parametrize("floor, zoom, bands",
                         list(itertools.product((3.0, None), (1, 2), (None, 3))))
def test_tensor_path_equals_numpy_path(floor, zoom, bands):
    data = radio_cutouts(bands=bands)
    for stretch, percentile in itertools.product(("asinh", "linear", "sqrt", "log"),
                                                 (99.5, (1, 99))):
        pre = Preprocess(noise_floor=floor, zoom=zoom, stretch=stretch, percentile=percentile,
                         input_size=64, patch_size=16)
        assert pre.tensor_supported
        assert _max_diff(pre, data) < TOL, (stretch, percentile)


def test_int16_and_tensor_inputs():
    rng = np.random.default_rng(3)
    counts = (1000 + rng.normal(0, 8, (6, 40, 40))).astype(np.int16)
    counts[:, 18:22, 18:22] += 400
    pre = Preprocess(input_size=48, patch_size=16)
    assert _max_diff(pre, counts) < TOL
    # a tensor (on its device) and channels-last arrays (N, H, W, C) as parse_cutouts reads them
    assert torch.equal(pre.to_tensor(torch.from_numpy(counts)), pre.to_tensor(counts))
    bands = radio_cutouts(n=4, bands=3)
    last = np.ascontiguousarray(np.moveaxis(bands, 1, -1))
    assert torch.equal(pre.to_tensor(last), pre.to_tensor(bands))
    assert torch.equal(pre.to_tensor(torch.from_numpy(last)), pre.to_tensor(bands))
    big_endian = radio_cutouts(n=4).astype(">f4")  # as FITS files hold them
    assert torch.equal(pre.to_tensor(big_endian), pre.to_tensor(big_endian.astype(np.float32)))


@pytest.mark.parametrize("settings", [
    dict(interval="minmax"),
    dict(interval="manual", noise_floor=None),
    dict(interval="minmax", noise_floor=None, stretch="power"),
    dict(stretch="sinh"),
    dict(stretch="squared", interpolation="bilinear"),
    dict(interpolation="nearest", zoom=1.5),
    dict(channels="multi_stretch"),
    dict(channels="multi_stretch", stretches=("sqrt", "log")),
    dict(input_size=48),  # no resize: 48 px in, 48 px out
    dict(input_size=32),  # shrinking: antialiased
])
def test_other_settings(settings):
    pre = Preprocess(**{"input_size": 64, "patch_size": 16, **settings})
    assert pre.tensor_supported
    assert _max_diff(pre, radio_cutouts()) < TOL


def test_bands_other_than_three():
    pre = Preprocess(channels="bands", input_size=32, patch_size=16)
    assert _max_diff(pre, radio_cutouts(n=4, bands=5)) < TOL


def test_auto_zoom_is_resolved_as_the_numpy_path():
    data = radio_cutouts(n=6, size=64)
    pre = Preprocess(zoom="auto", input_size=64, patch_size=16)
    assert _max_diff(pre, data) < TOL
    assert _max_diff(pre, data, source_size=4.0) < TOL


@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_clipped_stats_match_astropy(offset):
    rng = np.random.default_rng(5)
    images = rng.normal(offset, 1.0, (5, 30, 30)).astype(np.float32)
    images[:, 10:14, 10:14] += 30  # a source to clip
    images[1, :3] = np.nan
    images[2] = 7.0  # constant: std 0
    median, std = (t.numpy() for t in pt._clipped_stats(torch.from_numpy(images)))
    for i, image in enumerate(images):
        _, ref_median, ref_std = sigma_clipped_stats(image[np.isfinite(image)], sigma=3.0,
                                                     maxiters=10)
        assert median[i] == pytest.approx(ref_median, rel=1e-6, abs=1e-6)
        assert std[i] == pytest.approx(ref_std, rel=1e-4, abs=1e-6)
    blank = pt._clipped_stats(torch.full((1, 4, 4), float("nan")))
    assert np.isnan(blank[0].item()) and np.isnan(blank[1].item())


def test_percentiles_match_numpy():
    rng = np.random.default_rng(6)
    rows = np.sort(rng.normal(size=(4, 101)), axis=1)
    n = np.array([101, 100, 2, 1])
    got = pt._percentiles(torch.from_numpy(rows), torch.from_numpy(n), (0.25, 50, 99.75))
    for i, k in enumerate(n):
        np.testing.assert_allclose(got[i].numpy(), np.percentile(rows[i, :k], (0.25, 50, 99.75)),
                                   rtol=1e-12, atol=1e-12)


def test_unsupported_settings_fall_back(monkeypatch):
    pre = Preprocess(interval="zscale", input_size=32, patch_size=16)
    assert not pre.tensor_supported
    data = radio_cutouts(n=4)
    # to_tensor runs the NumPy path (exactly its result), and never the torch one
    monkeypatch.setattr(pt, "preprocess_tensor", None)
    assert torch.equal(pre.to_tensor(data), pre(data))
    assert torch.equal(pre.to_tensor(torch.from_numpy(data)), pre(data))
    with pytest.raises(InputError, match="no tensor implementation"):
        monkeypatch.undo()
        pt.preprocess_tensor(pre, data)
    backbone = load_backbone("efficientnet_lite0", device="cpu")
    monkeypatch.setattr(pt, "preprocess_tensor", None)
    features = extract_features(backbone, data, preprocess=pre, cache=False, device="cpu")
    assert features.shape == (4, 1280) and np.isfinite(features).all()


def _numpy_path(monkeypatch):
    monkeypatch.setattr(Preprocess, "tensor_supported", property(lambda self: False))


@pytest.mark.parametrize("tta", [False, True])
def test_extract_features_equal_between_paths(monkeypatch, tmp_path, tta):
    backbone = load_backbone("efficientnet_lite0", device="cpu")
    data = radio_cutouts(n=7)
    pre = backbone.default_preprocess(input_size=64, zoom=1.5)
    calls = []
    original = pt.preprocess_tensor
    monkeypatch.setattr(pt, "preprocess_tensor",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    tensor = extract_features(backbone, data, preprocess=pre, batch_size=3, device="cpu",
                              cache=False, tta=tta)
    assert len(calls) == 3  # 3 batches, all in torch
    _numpy_path(monkeypatch)
    numpy = extract_features(backbone, data, preprocess=pre, batch_size=3, device="cpu",
                             cache=False, tta=tta)
    assert len(calls) == 3
    np.testing.assert_allclose(tensor, numpy, rtol=1e-4, atol=1e-4 * np.abs(numpy).max())


def test_the_cache_key_does_not_depend_on_the_path(monkeypatch, tmp_path):
    backbone = load_backbone("efficientnet_lite0", device="cpu")
    data = radio_cutouts(n=4)
    pre = backbone.default_preprocess(input_size=32)
    first = extract_features(backbone, data, preprocess=pre, cache_dir=tmp_path)
    files = sorted(tmp_path.rglob("*.npy"))
    _numpy_path(monkeypatch)
    again = extract_features(backbone, data, preprocess=pre, cache_dir=tmp_path)
    assert np.array_equal(first, again) and sorted(tmp_path.rglob("*.npy")) == files


def test_device_batches_in_order(tmp_path):
    data = np.lib.format.open_memmap(tmp_path / "c.npy", mode="w+", dtype=np.float32,
                                     shape=(10, 4, 4))
    data[:] = np.arange(10, dtype=np.float32)[:, None, None]
    seen = []
    with torch.inference_mode():
        for start, batch in features_module._device_batches(data, range(0, 10, 4), 4,
                                                            torch.device("cpu")):
            seen.append((start, batch[:, 0, 0].tolist()))
    assert seen == [(0, [0, 1, 2, 3]), (4, [4, 5, 6, 7]), (8, [8, 9])]


@pytest.mark.skipif(not CUDA, reason="no CUDA device")
def test_on_cuda_equals_the_numpy_path():
    data = radio_cutouts(n=16, bands=None)
    for pre in (Preprocess(input_size=64, patch_size=16),
                Preprocess(zoom=2, stretch="log", percentile=(1, 99), input_size=64,
                           patch_size=16),
                Preprocess(noise_floor=None, stretch="linear", input_size=64, patch_size=16)):
        got = pre.to_tensor(data, device="cuda")
        assert got.device.type == "cuda"
        assert float((got.cpu() - pre(data)).abs().max()) < TOL


@pytest.mark.skipif(not CUDA, reason="no CUDA device")
def test_extract_features_on_cuda_equal_between_paths(monkeypatch):
    backbone = load_backbone("efficientnet_lite0", device="cpu")
    data = radio_cutouts(n=40)
    pre = backbone.default_preprocess(input_size=96)
    tensor = extract_features(backbone, data, preprocess=pre, batch_size=16, device="cuda",
                              cache=False)
    _numpy_path(monkeypatch)
    numpy = extract_features(backbone, data, preprocess=pre, batch_size=16, device="cuda",
                             cache=False)
    a = tensor / np.linalg.norm(tensor, axis=1, keepdims=True)
    b = numpy / np.linalg.norm(numpy, axis=1, keepdims=True)
    assert np.sum(a * b, axis=1).min() > 0.999  # bfloat16 autocast on both
