# Licensed under a 3-clause BSD style license - see LICENSE.rst
import ast
import json
from pathlib import Path

import numpy as np
import pytest
from astropy.table import QTable, Table

pytest.importorskip("sklearn")

from sklearn.covariance import LedoitWolf  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from astrofmtools import InputError  # noqa: E402
from astrofmtools.trust import (OOD_METHODS, KNNDistance, MahalanobisDistance,  # noqa: E402
                                ood_columns, ood_threshold)
from astrofmtools.trust import ood, uncertainty  # noqa: E402

DIM = 16


def _blob(rng, centre_axis, n, scale=8.0):
    centre = np.zeros(DIM)
    centre[centre_axis] = scale
    return centre + rng.normal(size=(n, DIM))


@pytest.fixture(scope="module")
def blobs():
    """Two in-distribution Gaussian blobs (train, calibration, test) and a far third one."""
    rng = np.random.default_rng(42)

    def both(n):
        x = np.concatenate([_blob(rng, 0, n), _blob(rng, 1, n)])
        return x, np.repeat(["spiral", "elliptical"], n)

    train, y_train = both(400)
    cal, _ = both(500)
    test, _ = both(500)
    out = _blob(rng, 2, 200)
    return {"train": train, "y_train": y_train, "cal": cal, "test": test, "out": out}


def _fitted(name, blobs):
    detector = OOD_METHODS[name]()
    if name == "mahalanobis":
        return detector.fit(blobs["train"], blobs["y_train"])
    return detector.fit(blobs["train"])


def test_public_names():
    assert ood.__all__ == ["KNNDistance", "MahalanobisDistance", "OOD_METHODS",
                           "ood_threshold", "ood_columns"]
    assert OOD_METHODS == {"knn": KNNDistance, "mahalanobis": MahalanobisDistance}


def test_no_torch_import():
    for module in (ood, uncertainty):
        tree = ast.parse(Path(module.__file__).read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        assert not [n for n in names if n.split(".")[0] in ("torch", "torchvision", "timm")]


@pytest.mark.parametrize("name", ["knn", "mahalanobis"])
def test_in_distribution_passes_and_far_blob_is_flagged(name, blobs):
    detector = _fitted(name, blobs)
    threshold = ood_threshold(detector.score(blobs["cal"]), quantile=0.95)
    test, out = detector.score(blobs["test"]), detector.score(blobs["out"])
    flagged = np.mean(test > threshold)
    assert 0.02 <= flagged <= 0.10
    assert np.mean(test <= threshold) >= 0.90
    assert np.all(out > threshold)
    y = np.r_[np.zeros(len(test)), np.ones(len(out))]
    assert roc_auc_score(y, np.r_[test, out]) >= 0.99


@pytest.mark.parametrize("name", ["knn", "mahalanobis"])
def test_leave_one_out_training_threshold(name, blobs):
    """Without a held-out split, training scores with exclude_self set the threshold."""
    detector = _fitted(name, blobs)
    threshold = ood_threshold(detector.score(blobs["train"], exclude_self=True), 0.95)
    flagged = np.mean(detector.score(blobs["test"]) > threshold)
    assert 0.02 <= flagged <= 0.10
    assert np.all(detector.score(blobs["out"]) > threshold)


def test_knn_scores_by_hand():
    detector = KNNDistance(k=1).fit([[1.0, 0.0], [0.0, 2.0]])
    scores = detector.score([[3.0, 0.0], [1.0, 1.0], [-1.0, 0.0], [0.0, 0.0]])
    # [-1, 0] is orthogonal to its nearest neighbour [0, 2]; a zero vector has no direction
    np.testing.assert_allclose(scores, [0.0, 1 - np.sqrt(0.5), 1.0, 1.0], atol=1e-6)
    assert KNNDistance(k=1).fit([[2.0, 0.0]]).score([[-1.0, 0.0]])[0] == pytest.approx(2.0)
    np.testing.assert_allclose(np.linalg.norm(detector.bank_, axis=1), 1.0, rtol=1e-6)
    assert detector.bank_.dtype == np.float32


def test_knn_matches_brute_force_in_chunks(blobs, monkeypatch):
    monkeypatch.setattr(ood, "_CHUNK", 7)  # many chunks, including a short last one
    detector = KNNDistance(k=5).fit(blobs["train"])
    queries = blobs["test"][:50]

    def unit(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    cos = unit(queries) @ unit(blobs["train"]).T
    expected = 1 - np.sort(cos, axis=1)[:, -5]
    np.testing.assert_allclose(detector.score(queries), expected, atol=1e-6)
    # leave-one-out: the query itself (cosine 1) is skipped, the 6th is used
    cos_self = unit(blobs["train"][:50]) @ unit(blobs["train"]).T
    expected_self = 1 - np.sort(cos_self, axis=1)[:, -6]
    np.testing.assert_allclose(detector.score(blobs["train"][:50], exclude_self=True),
                               expected_self, atol=1e-6)


def test_knn_small_bank_uses_its_farthest_member():
    detector = KNNDistance(k=10).fit([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    assert detector.score([[1.0, 0.0]])[0] == pytest.approx(1.0, abs=1e-6)


def test_mahalanobis_matches_ledoit_wolf(blobs):
    x, y = blobs["train"], blobs["y_train"]
    detector = MahalanobisDistance().fit(x, y)
    assert detector.classes_.tolist() == ["elliptical", "spiral"]
    means = np.array([x[y == "elliptical"].mean(0), x[y == "spiral"].mean(0)])
    np.testing.assert_allclose(detector.means_, means, rtol=1e-6, atol=1e-6)
    centred = x - np.where((y == "spiral")[:, None], means[1], means[0])
    precision = LedoitWolf(assume_centered=True).fit(centred).precision_
    np.testing.assert_allclose(detector.precision_, precision, rtol=1e-5, atol=1e-6)
    # the score is the smallest distance to a class mean
    q = blobs["test"][:20]
    p = detector.precision_.astype(float)
    d = [np.sqrt(np.einsum("nd,de,ne->n", q - m, p, q - m)) for m in detector.means_]
    np.testing.assert_allclose(detector.score(q), np.min(d, axis=0), rtol=1e-9)
    # in-distribution distances are about sqrt(D) = 4 standard deviations
    assert np.median(detector.score(blobs["test"])) == pytest.approx(np.sqrt(DIM - 0.5),
                                                                     rel=0.1)


def test_mahalanobis_without_labels_is_one_gaussian():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 2)) * [1.0, 4.0]
    detector = MahalanobisDistance().fit(x)
    assert detector.means_.shape == (1, 2)
    assert detector.classes_ is None
    np.testing.assert_allclose(detector.precision_, LedoitWolf().fit(x).precision_,
                               rtol=1e-5)
    scores = detector.score([[4.0, 0.0], [0.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(scores, [4.0, 1.0, 0.0], atol=0.15)


@pytest.mark.parametrize("name", ["knn", "mahalanobis"])
def test_state_round_trip_scores_identically(name, blobs):
    detector = _fitted(name, blobs)
    state = detector.to_state()
    expected_keys = {"knn": {"bank", "k"}, "mahalanobis": {"means", "precision"}}[name]
    assert set(state) == expected_keys
    # as the Classifier saves it: arrays as float32 tensors, the rest as JSON
    arrays = {k: np.array(v, dtype=np.float32) for k, v in state.items()
              if isinstance(v, np.ndarray)}
    config = json.loads(json.dumps({k: v for k, v in state.items()
                                    if not isinstance(v, np.ndarray)}))
    restored = type(detector).from_state({**config, **arrays})
    queries = np.concatenate([blobs["test"], blobs["out"]])
    assert np.array_equal(restored.score(queries), detector.score(queries))
    if name == "knn":
        assert state["bank"].shape == (800, DIM) and state["bank"].dtype == np.float32
        assert state["k"] == 10 and type(state["k"]) is int
    else:
        assert state["means"].shape == (2, DIM) and state["precision"].shape == (DIM, DIM)


def test_ood_threshold():
    assert ood_threshold(np.arange(101.0), 0.95) == pytest.approx(95.0)
    assert ood_threshold([0.1, 0.2, 0.3, 0.4, 0.5], quantile=0.75) == pytest.approx(0.4)
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(InputError, match=r"quantile must be in \(0, 1\)"):
            ood_threshold([1.0, 2.0], bad)
    with pytest.raises(InputError, match="No in-distribution scores"):
        ood_threshold([])
    with pytest.raises(InputError, match="NaN"):
        ood_threshold([1.0, np.nan])


@pytest.mark.parametrize("table_class", [Table, QTable])
def test_ood_columns(table_class):
    table = table_class({"id": [1, 2, 3]})
    out = ood_columns(table, np.array([0.1, 0.5, 0.9]), threshold=0.5)
    assert out is table
    assert table.colnames == ["id", "ood_score", "ood_flag"]
    np.testing.assert_allclose(table["ood_score"], [0.1, 0.5, 0.9])
    assert table["ood_flag"].dtype == bool
    assert table["ood_flag"].tolist() == [False, False, True]
    assert table["ood_score"].description and "0.5" in table["ood_flag"].description
    assert table.meta["ood_threshold"] == 0.5
    with pytest.raises(InputError, match="3 rows but the scores have shape"):
        ood_columns(table, [0.1, 0.2], 0.5)


def test_detectors_reject_bad_input(blobs):
    with pytest.raises(InputError, match="integer >= 1"):
        KNNDistance(k=0)
    with pytest.raises(InputError, match="integer >= 1"):
        KNNDistance(k=2.5)
    with pytest.raises(InputError, match="not fitted"):
        KNNDistance().score(blobs["test"])
    with pytest.raises(InputError, match="not fitted"):
        MahalanobisDistance().to_state()
    knn = KNNDistance().fit(blobs["train"])
    with pytest.raises(InputError, match="have 3 dimensions but the detector was fitted on 16"):
        knn.score(np.ones((2, 3)))
    with pytest.raises(InputError, match="2-D array"):
        knn.score(np.ones(DIM))
    bad = blobs["test"][:3].copy()
    bad[1, 4] = np.nan
    with pytest.raises(InputError, match="NaN or infinite values in 1 rows"):
        knn.score(bad)
    with pytest.raises(InputError, match="bank of at least 2"):
        KNNDistance().fit([[1.0, 0.0]]).score([[1.0, 0.0]], exclude_self=True)
    with pytest.raises(InputError, match="at least 2 training features"):
        MahalanobisDistance().fit([[1.0, 0.0]])
    with pytest.raises(InputError, match="one label per training feature"):
        MahalanobisDistance().fit(blobs["train"], blobs["y_train"][:5])
    with pytest.raises(InputError, match=r"missing \(got \['bank'\]\)"):
        KNNDistance.from_state({"bank": np.ones((2, 2), np.float32)})
    with pytest.raises(InputError, match="expected \\(2, 2\\)"):
        MahalanobisDistance.from_state({"means": np.ones((1, 2)), "precision": np.eye(3)})
