# Licensed under a 3-clause BSD style license - see LICENSE.rst
import numpy as np
import pytest
from astropy.table import QTable, Table

from astrofmtools import InputError
from astrofmtools.trust import (predictive_entropy, uncertainty_columns,
                                uncertainty_from_samples)
from astrofmtools.trust import uncertainty


def test_public_names():
    assert uncertainty.__all__ == ["predictive_entropy", "uncertainty_from_samples",
                                   "uncertainty_columns"]


@pytest.mark.parametrize("k", [2, 3, 10])
def test_entropy_of_uniform_is_log_k(k):
    h = predictive_entropy(np.full((4, k), 1.0 / k))
    np.testing.assert_allclose(h, np.log(k), rtol=1e-12)


def test_entropy_values():
    h = predictive_entropy([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    # 0 log 0 = 0: a certain prediction has zero entropy, no NaN
    assert h[0] == 0.0
    assert h[1] == pytest.approx(np.log(2), rel=1e-12)
    expected = -(0.2 * np.log(0.2) + 0.3 * np.log(0.3) + 0.5 * np.log(0.5))
    assert h[2] == pytest.approx(expected, rel=1e-12)
    assert h[2] == pytest.approx(1.0297, abs=1e-4)


def test_samples_that_agree_have_no_mutual_information():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(4), size=20)
    u = uncertainty_from_samples(np.stack([p] * 5))
    np.testing.assert_allclose(u["mean"], p, rtol=1e-12)
    np.testing.assert_allclose(u["entropy"], predictive_entropy(p), rtol=1e-12)
    np.testing.assert_allclose(u["expected_entropy"], u["entropy"], rtol=1e-12)
    assert np.all(u["mutual_info"] >= 0)
    assert np.max(u["mutual_info"]) < 1e-12
    assert np.max(u["std"]) < 1e-12


def test_passes_that_disagree_completely():
    samples = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])  # (S=2, N=1, K=2)
    u = uncertainty_from_samples(samples)
    np.testing.assert_allclose(u["mean"], [[0.5, 0.5]])
    assert u["entropy"][0] == pytest.approx(np.log(2))
    assert u["expected_entropy"][0] == 0.0
    assert u["mutual_info"][0] == pytest.approx(0.6931, abs=1e-4)
    assert u["mutual_info"][0] > 0.3
    np.testing.assert_allclose(u["std"], [[0.5, 0.5]])


def test_decomposition_by_hand():
    samples = np.array([[[0.7, 0.2, 0.1]], [[0.1, 0.6, 0.3]], [[0.4, 0.4, 0.2]]])
    u = uncertainty_from_samples(samples)
    mean = samples.mean(axis=0)[0]
    total = -np.sum(mean * np.log(mean))
    aleatoric = np.mean([-np.sum(s[0] * np.log(s[0])) for s in samples])
    assert u["entropy"][0] == pytest.approx(total, rel=1e-12)
    assert u["expected_entropy"][0] == pytest.approx(aleatoric, rel=1e-12)
    assert u["mutual_info"][0] == pytest.approx(total - aleatoric, rel=1e-10)
    assert u["entropy"][0] == pytest.approx(1.0549, abs=1e-4)
    assert u["mutual_info"][0] == pytest.approx(0.1367, abs=1e-4)  # 1.0549 - 0.9182
    np.testing.assert_allclose(u["std"][0], samples[:, 0].std(axis=0), rtol=1e-12)
    assert {k: v.shape for k, v in u.items()} == {
        "mean": (1, 3), "entropy": (1,), "expected_entropy": (1,), "mutual_info": (1,),
        "std": (1, 3)}


@pytest.mark.parametrize("table_class", [Table, QTable])
def test_uncertainty_columns(table_class):
    table = table_class({"id": [10, 11]})
    samples = [[[0.9, 0.1], [1.0, 0.0]],
               [[0.9, 0.1], [0.0, 1.0]]]
    out = uncertainty_columns(table, samples, ["star", "galaxy"])
    assert out is table
    assert table.colnames == ["id", "entropy", "mutual_info", "std_star", "std_galaxy"]
    np.testing.assert_allclose(table["entropy"], [0.3251, np.log(2)], atol=1e-4)
    np.testing.assert_allclose(table["mutual_info"], [0.0, np.log(2)], atol=1e-12)
    np.testing.assert_allclose(table["std_star"], [0.0, 0.5], atol=1e-12)
    np.testing.assert_allclose(table["std_galaxy"], [0.0, 0.5], atol=1e-12)
    for name in table.colnames[1:]:
        assert table[name].description
    assert "nats" in table["entropy"].description
    assert table.meta["uncertainty_samples"] == 2


@pytest.mark.parametrize("probabilities, message", [
    ([0.5, 0.5], "2-D"),
    (np.zeros((0, 3)), "empty"),
    ([[0.5, np.nan]], "NaN"),
    ([[1.5, -0.5]], ">= 0"),
    ([[0.5, 0.2]], "sum to 1"),
])
def test_entropy_rejects_bad_probabilities(probabilities, message):
    with pytest.raises(InputError, match=message):
        predictive_entropy(probabilities)


def test_samples_must_be_three_dimensional():
    with pytest.raises(InputError, match=r"3-D array of shape \(S, N, K\)"):
        uncertainty_from_samples([[0.5, 0.5]])


def test_uncertainty_columns_checks_lengths():
    samples = np.full((3, 2, 2), 0.5)
    with pytest.raises(InputError, match="2 classes but 3 class names"):
        uncertainty_columns(Table({"id": [1, 2]}), samples, ["a", "b", "c"])
    with pytest.raises(InputError, match="2 objects but the table has 3 rows"):
        uncertainty_columns(Table({"id": [1, 2, 3]}), samples, ["a", "b"])
    with pytest.raises(InputError, match="distinct"):
        uncertainty_columns(Table({"id": [1, 2]}), samples, [1, "1"])
