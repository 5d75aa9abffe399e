# Licensed under a 3-clause BSD style license - see LICENSE.rst
import json

import numpy as np
import pytest

from astrofmtools import InputError
from astrofmtools.trust import (CONFORMAL_METHODS, calibrate_conformal, conformal_quantile,
                                conformal_scores, coverage, mean_set_size, prediction_sets)

N_SPLITS = 20


def _draw(rng, n, concentration):
    """Dirichlet probabilities and labels drawn from them: a perfectly calibrated model."""
    p = rng.dirichlet(concentration, size=n)
    y = (p.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    return p, np.minimum(y, len(concentration) - 1)


@pytest.fixture(scope="module")
def pool():
    return _draw(np.random.default_rng(0), 6000, np.full(10, 0.3))


def _splits(n, n_cal):
    for seed in range(N_SPLITS):
        order = np.random.default_rng(seed).permutation(n)
        yield seed, order[:n_cal], order[n_cal:]


def _mean_over_splits(p, y, alpha, n_cal=2000, **kwargs):
    cov, size = [], []
    for seed, cal, test in _splits(len(p), n_cal):
        calibration = calibrate_conformal(p[cal], y[cal], **kwargs)
        sets = prediction_sets(p[test], calibration, alpha, rng=seed)
        cov.append(coverage(sets, y[test]))
        size.append(mean_set_size(sets))
    return np.mean(cov), np.min(cov), np.mean(size)


P3 = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])


def test_scores_by_hand():
    y = [1, 2, 0]
    assert conformal_scores(P3, y, "lac").tolist() == pytest.approx([0.7, 0.7, 0.9])
    # APS: probability of the classes ranked at or above the true one; the tie of
    # the last row (0.1, 0.1) is broken by column order, so class 0 ranks second
    assert conformal_scores(P3, y, "aps").tolist() == pytest.approx([0.9, 0.8, 0.9])
    assert conformal_scores(P3, [1, 2, 1], "aps").tolist() == pytest.approx([0.9, 0.8, 1.0])
    # RAPS adds lam per rank beyond k_reg (ranks 2, 2 and 3 here)
    assert conformal_scores(P3, [1, 2, 1], "raps", lam=0.1, k_reg=1).tolist() == \
        pytest.approx([1.0, 0.9, 1.2])
    assert conformal_scores(P3, [1, 2, 1], "raps", lam=0.1, k_reg=2).tolist() == \
        pytest.approx([0.9, 0.8, 1.1])
    # randomised APS: the true class's own probability counts 1 - u
    u = np.random.default_rng(5).random(3)
    expected = np.array([0.9, 0.8, 0.9]) - u * np.array([0.3, 0.3, 0.1])
    np.testing.assert_allclose(conformal_scores(P3, y, "aps", rng=5), expected)
    # ... reproducibly, and LAC ignores the generator
    assert conformal_scores(P3, y, "aps", rng=5).tolist() == \
        conformal_scores(P3, y, "aps", rng=np.random.default_rng(5)).tolist()
    assert conformal_scores(P3, y, "lac", rng=5).tolist() == pytest.approx([0.7, 0.7, 0.9])
    # ties do not change a class's LAC score
    assert conformal_scores(P3, [1, 2, 1], "lac").tolist() == pytest.approx([0.7, 0.7, 0.9])


def test_quantile():
    scores = np.arange(1, 101) / 100.0           # n = 100
    # ceil(101 * 0.9) = 91st smallest; alpha = 0.1 with n = 99 must not round 90.0000001 up
    assert conformal_quantile(scores, 0.1) == 0.91
    assert conformal_quantile(scores[:99], 0.1) == 0.90
    assert conformal_quantile(scores, 0.05) == 0.96
    # the empirical quantile at level ceil((n+1)(1-alpha))/n (the inverse of the
    # empirical CDF: 81st smallest); numpy's method="higher" would give the 82nd
    assert conformal_quantile(scores[::-1], 0.2) == 0.81 == \
        np.quantile(scores, np.ceil(101 * 0.8) / 100, method="inverted_cdf")
    assert np.quantile(scores, np.ceil(101 * 0.8) / 100, method="higher") == 0.82
    # n >= 1/alpha - 1 is needed for a finite threshold
    assert conformal_quantile(scores[:9], 0.1) == 0.09
    assert conformal_quantile(scores[:8], 0.1) == np.inf
    assert conformal_quantile([], 0.5) == np.inf


@pytest.mark.parametrize("alpha", [0.1, 0.05])
@pytest.mark.parametrize("method", CONFORMAL_METHODS)
def test_marginal_coverage(pool, method, alpha):
    p, y = pool
    mean, worst, _ = _mean_over_splits(p, y, alpha, method=method)
    assert abs(mean - (1 - alpha)) < 0.02
    assert worst > 1 - alpha - 0.03


@pytest.mark.parametrize("method", ["aps", "raps"])
def test_randomised_coverage(pool, method):
    p, y = pool
    mean, _, _ = _mean_over_splits(p, y, 0.1, method=method, rng=11)
    assert abs(mean - 0.9) < 0.02


def test_set_sizes(pool):
    p, y = pool
    size = {m: _mean_over_splits(p, y, 0.1, method=m)[2] for m in CONFORMAL_METHODS}
    # LAC gives the smallest sets (measured 3.63 for LAC, 3.94 for APS)
    assert size["aps"] > size["lac"] + 0.15
    assert size["raps"] > size["lac"]
    assert 2 < size["lac"] < 5
    # more coverage, larger sets
    assert _mean_over_splits(p, y, 0.05, method="lac")[2] > size["lac"] + 0.5


def test_set_rules():
    p, y = _draw(np.random.default_rng(2), 600, np.full(5, 0.3))
    for method in ("aps", "raps"):
        sets = prediction_sets(p, calibrate_conformal(p[:300], y[:300], method), 0.5)
        assert sets[np.arange(600), p.argmax(axis=1)].all()
    lac = prediction_sets(p, calibrate_conformal(p[:300], y[:300], "lac"), 0.5)
    assert (lac.sum(axis=1) == 0).any()        # LAC may give empty sets
    # a threshold of inf (too few calibration scores) admits every class
    tiny = calibrate_conformal(p[:5], y[:5], "lac")
    assert prediction_sets(p, tiny, 0.1).all()
    # sets grow as alpha shrinks
    cal = calibrate_conformal(p[:300], y[:300], "aps")
    assert (prediction_sets(p, cal, 0.05) >= prediction_sets(p, cal, 0.2)).all()


def test_mondrian_per_class_coverage():
    # imbalanced classes (about 52, 27, 13, 6 and 3 %)
    concentration = np.array([6.0, 3.0, 1.5, 0.6, 0.3])
    p, y = _draw(np.random.default_rng(4), 8000, concentration)
    alpha = 0.1
    per_class = {False: [], True: []}
    for mondrian in (False, True):
        for seed, cal, test in _splits(len(p), 3000):
            calibration = calibrate_conformal(p[cal], y[cal], "lac", mondrian=mondrian)
            sets = prediction_sets(p[test], calibration, alpha)
            per_class[mondrian].append([coverage(sets[y[test] == k], y[test][y[test] == k])
                                        for k in range(5)])
    mondrian = np.mean(per_class[True], axis=0)
    marginal = np.mean(per_class[False], axis=0)
    assert np.all(mondrian >= 1 - alpha - 0.03)
    # marginal calibration covers the rare classes far less (measured 0.41 and 0.32)
    assert marginal[-1] < 0.6 and marginal[0] > 0.99
    json.dumps(calibration)
    assert calibration["labels"] == y[cal].tolist()


def test_calibration_dict_round_trip(pool):
    p, y = pool
    cal = calibrate_conformal(p[:500], y[:500], "raps", mondrian=True, lam=0.05, k_reg=2)
    assert (cal["method"], cal["mondrian"], cal["lam"], cal["k_reg"], cal["n_classes"]) == \
        ("raps", True, 0.05, 2, 10)
    assert len(cal["scores"]) == 500 and cal["randomized"] is False
    again = json.loads(json.dumps(cal))
    np.testing.assert_array_equal(prediction_sets(p[500:], cal, 0.1),
                                  prediction_sets(p[500:], again, 0.1))
    assert "labels" not in calibrate_conformal(p[:500], y[:500], "aps")
    # randomised calibrations give reproducible sets for a given seed
    rnd = calibrate_conformal(p[:500], y[:500], "aps", rng=1)
    assert rnd["randomized"] is True
    np.testing.assert_array_equal(prediction_sets(p[500:], rnd, 0.1, rng=3),
                                  prediction_sets(p[500:], rnd, 0.1, rng=3))


def test_matches_crepes():
    crepes = pytest.importorskip("crepes")
    from crepes.extras import hinge
    p, y = _draw(np.random.default_rng(6), 500, np.full(5, 0.5))
    cal, test = slice(0, 300), slice(300, 500)
    for alpha in (0.1, 0.07):
        ours = prediction_sets(p[test], calibrate_conformal(p[cal], y[cal], "lac"), alpha)
        cc = crepes.ConformalClassifier().fit(hinge(p[cal], np.arange(5), y[cal]))
        theirs = cc.predict_set(hinge(p[test]), confidence=1 - alpha, smoothing=False)
        np.testing.assert_array_equal(ours, theirs.astype(bool))
        # Mondrian with the class as the category: crepes scores one candidate class at a time
        ours = prediction_sets(p[test], calibrate_conformal(p[cal], y[cal], "lac",
                                                            mondrian=True), alpha)
        cc = crepes.ConformalClassifier().fit(hinge(p[cal], np.arange(5), y[cal]), bins=y[cal])
        for k in range(5):
            theirs = cc.predict_set(hinge(p[test])[:, [k]], bins=np.full(200, k),
                                    confidence=1 - alpha, smoothing=False)
            np.testing.assert_array_equal(ours[:, k], theirs[:, 0].astype(bool))


def test_coverage_and_size_by_hand():
    sets = np.array([[True, False, False], [True, True, False], [False, False, False]])
    assert coverage(sets, [0, 2, 1]) == pytest.approx(1 / 3)
    assert coverage(sets.astype(int), [0, 1, 1]) == pytest.approx(2 / 3)
    assert mean_set_size(sets) == 1.0


@pytest.mark.parametrize("call, message", [
    (lambda: conformal_scores(P3, [0, 1, 2], "hinge"), "lac, aps, raps"),
    (lambda: conformal_scores(P3, [0, 1, 3]), "0 .. 2"),
    (lambda: conformal_scores(P3, [0, 1, 2], "raps", lam=-1), "lam"),
    (lambda: conformal_scores(P3, [0, 1, 2], "raps", k_reg=1.5), "k_reg"),
    (lambda: conformal_quantile([0.1, 0.2], 1.0), "alpha"),
    (lambda: conformal_quantile([[0.1, 0.2]], 0.1), "1-D"),
    (lambda: calibrate_conformal(P3, [0, 1, 2], alpha=0.1), "unknown keyword"),
    (lambda: prediction_sets(P3, {"scores": [0.1]}, 0.1), "calibrate_conformal"),
    (lambda: prediction_sets(P3, calibrate_conformal(P3, [0, 1, 2]), 0), "alpha"),
    (lambda: prediction_sets(P3[:, :2] / P3[:, :2].sum(1, keepdims=True),
                             calibrate_conformal(P3, [0, 1, 2]), 0.1), "3 classes"),
    (lambda: coverage([[0.5, 1]], [0]), "boolean"),
    (lambda: mean_set_size([True, False]), "2-D"),
])
def test_input_errors(call, message):
    with pytest.raises(InputError, match=message):
        call()
