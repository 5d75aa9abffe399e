# Licensed under a 3-clause BSD style license - see LICENSE.rst
import numpy as np
import pytest

from astrofmtools import InputError
from astrofmtools.trust import (apply_temperature, expected_calibration_error, fit_temperature,
                                maximum_calibration_error, plot_reliability, reliability_table)


def _draw(rng, n, concentration):
    """Dirichlet probabilities and labels drawn from them: a perfectly calibrated model."""
    p = rng.dirichlet(concentration, size=n)
    y = (p.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    return p, np.minimum(y, len(concentration) - 1)


@pytest.fixture(scope="module")
def calibrated():
    return _draw(np.random.default_rng(0), 20000, np.ones(10))


# a hand-checked case: two objects at confidence 0.9, both right (gap 0.1), two at
# 0.6, one right (gap 0.1)
P4 = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
Y4 = np.array([0, 0, 0, 0])


def test_ece_mce_by_hand():
    assert expected_calibration_error(P4, Y4, n_bins=10) == pytest.approx(0.1)
    assert maximum_calibration_error(P4, Y4, n_bins=10) == pytest.approx(0.1)
    # all right at confidence 0.9, 0.9, 0.6, 0.6 -> gaps 0.1 and 0.4
    assert expected_calibration_error(P4, [0, 0, 0, 1], n_bins=10) == pytest.approx(0.25)
    assert maximum_calibration_error(P4, [0, 0, 0, 1], n_bins=10) == pytest.approx(0.4)
    # one bin: |mean confidence 0.75 - accuracy 0.25|
    assert expected_calibration_error(P4, [1, 1, 0, 0], n_bins=1) == pytest.approx(0.5)


def test_ece_calibrated_and_overconfident(calibrated):
    p, y = calibrated
    ece = expected_calibration_error(p, y)
    assert ece < 0.01
    sharp = apply_temperature(np.log(p), 0.3)
    assert np.array_equal(sharp.argmax(axis=1), p.argmax(axis=1))
    ece_sharp = expected_calibration_error(sharp, y)
    assert 0.3 < ece_sharp < 0.4          # measured 0.340
    assert maximum_calibration_error(sharp, y) >= ece_sharp


def test_fit_temperature_recovers_sharpening(calibrated):
    p, y = calibrated
    # probabilities sharpened by T = 0.3 have logits log(p) / 0.3: T = 1 / 0.3 undoes it
    t = fit_temperature(np.log(p) / 0.3, y)
    assert t == pytest.approx(1 / 0.3, rel=0.10)
    # an under-confident model (softened by T = 2) is sharpened back
    assert fit_temperature(0.5 * np.log(p), y) == pytest.approx(0.5, rel=0.10)
    # log-probabilities and logits give the same temperature (same up to a row constant)
    logits = np.log(p) / 0.3 + 7.0 * np.arange(len(p))[:, None] % 5
    assert fit_temperature(logits, y) == pytest.approx(t, rel=1e-4)
    # and rescaling brings the ECE back to that of the calibrated probabilities
    assert expected_calibration_error(apply_temperature(np.log(p) / 0.3, t), y) < 0.01


def test_fit_temperature_from_gaussian_logits():
    rng = np.random.default_rng(3)
    z = rng.normal(0, 2, size=(5000, 4))
    y = (apply_temperature(z, 1.0).cumsum(axis=1) < rng.random((5000, 1))).sum(axis=1)
    assert fit_temperature(3 * z, y) == pytest.approx(3.0, rel=0.10)
    assert fit_temperature(z, y) == pytest.approx(1.0, rel=0.10)
    # perfectly separable labels want T -> 0: the search stops at its lower bound
    assert fit_temperature(z, z.argmax(axis=1)) == pytest.approx(0.05, rel=1e-3)


def test_fit_temperature_accepts_zero_probabilities():
    p = np.array([[0.7, 0.3, 0.0], [0.2, 0.8, 0.0], [0.6, 0.4, 0.0], [0.1, 0.9, 0.0]])
    with np.errstate(divide="ignore"):
        t = fit_temperature(np.log(p), [0, 1, 1, 1])
    assert np.isfinite(t) and 0.05 <= t <= 20


def test_apply_temperature():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 30, size=(100, 6))
    for t in (0.05, 1.0, 20.0):
        p = apply_temperature(z, t)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-12)
        assert np.array_equal(p.argmax(axis=1), z.argmax(axis=1))
    small = rng.normal(size=(5, 3))
    expected = np.exp(small / 2) / np.exp(small / 2).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(apply_temperature(small, 2.0), expected, rtol=1e-12)
    # huge logits do not overflow; -inf gives exactly 0; 1-D input stays 1-D
    np.testing.assert_allclose(apply_temperature([1e308, 1e308 - 1e293, -np.inf], 1.0),
                               [1.0, 0.0, 0.0])
    assert apply_temperature([0.0, np.log(3.0)], 1.0).tolist() == pytest.approx([0.25, 0.75])


def test_reliability_table(calibrated):
    p, y = calibrated
    t = reliability_table(p, y, n_bins=15)
    assert len(t) == 15
    assert t.colnames == ["bin_lower", "bin_upper", "count", "confidence", "accuracy"]
    assert t["count"].sum() == len(p)
    np.testing.assert_allclose(t["bin_lower"][1:], t["bin_upper"][:-1])
    assert t["bin_lower"][0] == 0 and t["bin_upper"][-1] == 1
    full = t["count"] > 0
    # confidences of 10 Dirichlet(1) classes are >= 1/10: the first bin is empty
    assert t["count"][0] == 0 and np.isnan(t["confidence"][0]) and np.isnan(t["accuracy"][0])
    assert np.all((t["confidence"][full] > t["bin_lower"][full])
                  & (t["confidence"][full] <= t["bin_upper"][full]))
    ece = np.nansum(t["count"] * np.abs(t["accuracy"] - t["confidence"])) / len(p)
    assert t.meta["ece"] == pytest.approx(ece)
    assert t.meta["ece"] == pytest.approx(expected_calibration_error(p, y, n_bins=15))
    assert t.meta["n"] == 20000 and "versions" in t.meta
    small = reliability_table(P4, Y4, n_bins=5)
    assert small["count"].tolist() == [0, 0, 2, 0, 2]
    assert small["accuracy"][2] == 0.5 and small["confidence"][4] == pytest.approx(0.9)


def test_plot_reliability_into_given_axes(calibrated):
    from matplotlib.figure import Figure
    p, y = calibrated
    fig = Figure()
    left, right = fig.subplots(1, 2)
    sharp = apply_temperature(np.log(p), 0.3)
    ax = plot_reliability(p, y, ax=left, label="calibrated")
    assert ax is left and ax.figure is fig
    out = plot_reliability(sharp, y, n_bins=10, ax=right, title="Sharpened", label="T = 0.3",
                           path="reliability.png")
    assert out is right and right.get_title() == "Sharpened"
    ece = expected_calibration_error(sharp, y, n_bins=10)
    texts = [t.get_text() for t in right.get_legend().get_texts()]
    assert texts == ["Perfect calibration", f"T = 0.3: ECE = {ece:.3f}"]
    # an accuracy bar and a gap bar per non-empty bin (confidences are >= 0.1 here)
    table = reliability_table(sharp, y, n_bins=10)
    assert table["count"][0] == 0 and np.all(table["count"][1:] > 0)
    assert len(right.patches) == 2 * 9
    heights = sorted(round(b.get_height(), 6) for b in right.containers[0])
    assert heights == sorted(np.round(table["accuracy"][table["count"] > 0], 6).tolist())
    assert left.get_title().startswith(f"ECE {expected_calibration_error(p, y):.3f}")
    from matplotlib.image import imread
    assert imread("reliability.png").shape[2] == 4
    # a new figure when no axes are given
    assert plot_reliability(P4, Y4).figure is not fig


@pytest.mark.parametrize("call, message", [
    (lambda: expected_calibration_error(P4[:, :1], Y4), "sum to 1"),
    (lambda: expected_calibration_error(P4, [0, 1, 2, 0]), "0 .. 1"),
    (lambda: expected_calibration_error(P4, [0, 1]), "4 class indices"),
    (lambda: expected_calibration_error(P4, ["a", "b", "a", "b"]), "integer class indices"),
    (lambda: expected_calibration_error(P4[0], Y4[:1]), "shape \\(N, K\\)"),
    (lambda: expected_calibration_error(P4, Y4, n_bins=0), "n_bins"),
    (lambda: expected_calibration_error(P4 * np.nan, Y4), "NaN"),
    (lambda: reliability_table(np.empty((0, 2)), []), "at least one object"),
    (lambda: apply_temperature(P4, 0.0), "positive"),
    (lambda: apply_temperature(P4, "hot"), "positive"),
    (lambda: fit_temperature(np.full((2, 2), np.nan), [0, 1]), "NaN"),
    (lambda: fit_temperature(np.full((2, 2), -np.inf), [0, 1]), "all -inf"),
    (lambda: fit_temperature(np.zeros((0, 2)), []), "at least one"),
])
def test_input_errors(call, message):
    with pytest.raises(InputError, match=message):
        call()
