# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""A Classifier's trust columns: temperature, conformal sets, MC dropout, OOD scores."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from astrofmtools import InputError  # noqa: E402
from astrofmtools.backbones import BackboneSpec  # noqa: E402
from astrofmtools.classify import Classifier  # noqa: E402

TINY = BackboneSpec(
    name="vit_tiny_trust", timm_name="vit_tiny_patch16_224", patch_size=8, input_size=32,
    feature_dim=32, licence="none",
    timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 32, "num_heads": 2})


@pytest.fixture(autouse=True)
def _one_thread(tmp_path, monkeypatch):
    monkeypatch.setenv("ASTROFM_CACHE", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def sources(n, seed, noise=3.0):
    """Compact sources and doubles in noise: noisy enough that some are ambiguous."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:24, :24] - 11.5
    labels = np.arange(n) % 2
    images = []
    for label in labels:
        d, a = rng.uniform(2.5, 6) * label, rng.uniform(0, np.pi)
        image = sum(np.exp(-((xx - s * d * np.cos(a)) ** 2 + (yy - s * d * np.sin(a)) ** 2)
                           / 4.5) for s in (-1, 1))
        images.append(rng.uniform(8, 20) * image + noise * rng.normal(size=image.shape))
    return np.array(images, dtype=np.float32), np.where(labels, "double", "compact")


@pytest.fixture(scope="module")
def data():
    return sources(240, 0), sources(200, 1)


def test_conformal_sets_cover_and_ood_flags_the_unseen(data, tmp_path):
    """EfficientNet-Lite0 (ImageNet weights, shipped) at 64 pixels: features with meaning,
    which the out-of-distribution scores need (random weights give none)."""
    (x, y), (x_test, y_test) = data
    clf = Classifier("efficientnet_lite0", head="linear", tta=False, device="cpu",
                     preprocess={"input_size": 64}, calibration_fraction=0.4, ood="knn",
                     seed=1).fit(x, y)
    assert clf.n_calibration_ == 96 and clf.conformal_["method"] == "aps"
    assert clf.temperature_ > 0 and clf.temperature_ != 1.0
    table = clf.predict(x_test, conformal=0.1)
    sets = [s.split(",") for s in table["prediction_set"]]
    covered = np.mean([label in s for label, s in zip(y_test, sets)])
    assert covered >= 0.85, covered  # 1 - alpha = 0.9, with 96 calibration cutouts
    assert np.array_equal(table["set_size"], [len(s) for s in sets])
    # informative sets: most hold one class (1.47 to 1.56 across library versions)
    assert 1.0 <= np.mean(table["set_size"]) < 1.6
    # out of distribution: satellite trails and stripes are unlike every training cutout
    yy, xx = np.mgrid[:24, :24] - 11.5
    rng = np.random.default_rng(5)
    trails = [30 * np.exp(-(yy - 0.03 * i * xx - 2) ** 2 / 2) for i in range(20)]
    stripes = [20 * np.sin(1.3 * xx + 0.04 * i * yy) for i in range(20)]
    artefacts = np.array([a + 3 * rng.normal(size=a.shape) for a in trails + stripes],
                         dtype=np.float32)
    assert np.mean(clf.predict(artefacts)["ood_flag"]) >= 0.9
    assert np.mean(table["ood_flag"]) <= 0.12  # the threshold: 95 % of held-out cutouts
    # saved and loaded: the same probabilities, sets and scores
    clf.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["format_version"] == 3 and config["ood"]["method"] == "knn"
    again = Classifier.load(tmp_path / "m", device="cpu").predict(x_test, conformal=0.1)
    for name in ("p_double", "prediction_set", "ood_score"):
        assert np.all(np.asarray(again[name]) == np.asarray(table[name])), name


def test_temperature_scaling_tempers_an_overconfident_head(data):
    """An MLP head trained far past its best epoch is overconfident: the temperature fitted
    on the validation split is well above 1 and lowers the test log-loss; the predicted
    classes do not change."""
    (x, y), (x_test, y_test) = data
    kwargs = dict(head="mlp", tta=False, device="cpu", preprocess={"input_size": 64}, seed=2,
                  epochs=300, patience=None, lr=1e-2, weight_decay=0.0, val_fraction=0.3)
    raw = Classifier("efficientnet_lite0", temperature_scaling=False, **kwargs).fit(x, y)
    scaled = Classifier("efficientnet_lite0", **kwargs).fit(x, y)
    assert raw.temperature_ == 1.0 and scaled.temperature_ > 1.5
    truth = np.searchsorted(raw.classes_, y_test)
    p_raw, p_scaled = raw.predict_proba(x_test), scaled.predict_proba(x_test)

    def log_loss(p):
        return -np.mean(np.log(np.clip(p[np.arange(len(truth)), truth], 1e-12, 1)))

    assert log_loss(p_scaled) < log_loss(p_raw)
    assert np.array_equal(p_raw.argmax(1), p_scaled.argmax(1))


def test_mc_dropout_columns_and_errors(data):
    (x, y), (x_test, _) = data
    mlp = Classifier(TINY, weights="random", head="mlp", hidden=(32,), dropout=0.5, tta=False,
                     device="cpu").fit(x[:80], y[:80])
    table = mlp.predict(x_test[:20], mc_dropout=10)
    assert {"entropy", "mutual_info", "std_compact", "std_double"} <= set(table.colnames)
    assert np.all(np.asarray(table["mutual_info"]) >= 0)
    assert np.any(np.asarray(table["mutual_info"]) > 0)
    linear = Classifier(TINY, weights="random", tta=False, device="cpu").fit(x[:80], y[:80])
    with pytest.raises(InputError, match="no dropout"):
        linear.predict(x_test[:5], mc_dropout=5)
    with pytest.raises(InputError, match="no conformal calibration"):
        linear.predict(x_test[:5], conformal=0.1)
    with pytest.raises(InputError, match="calibration_fraction"):
        Classifier(TINY, calibration_fraction=1.5)
    with pytest.raises(InputError, match="Unknown ood method"):
        Classifier(TINY, ood="magic")
    # calibrating afterwards on held-out cutouts
    linear.calibrate(x_test[100:], y_test_labels(data)[100:], method="lac", mondrian=True)
    sets = linear.predict(x_test[:50], conformal=0.2)
    assert linear.conformal_["mondrian"] and np.all(np.asarray(sets["set_size"]) <= 2)


def y_test_labels(data):
    return data[1][1]


def test_ensemble_of_seeds_mean_and_disagreement(data, tmp_path):
    from astrofmtools.classify import Ensemble
    (x, y), (x_test, _) = data
    ens = Ensemble.fit_seeds(3, x[:120], y[:120], backbone=TINY, weights="random", tta=False,
                             device="cpu", cache=False)
    members = ens.member_probabilities(x_test[:30])
    assert members.shape == (3, 30, 2)
    table = ens.predict(x_test[:30])
    assert np.allclose(np.asarray(table["p_double"]), members.mean(axis=0)[:, 1])
    assert np.all(np.asarray(table["mutual_info"]) >= 0)
    assert np.max(table["mutual_info"]) > 1e-3  # random backbones of three seeds disagree
    ens.save(tmp_path / "ens")
    again = Ensemble.load(tmp_path / "ens", device="cpu")
    assert np.allclose(again.predict_proba(x_test[:30]), members.mean(axis=0))
    with pytest.raises(InputError, match="at least two"):
        Ensemble(ens.classifiers[:1])
