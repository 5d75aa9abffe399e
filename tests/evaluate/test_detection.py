# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Tests of the detection scores of astrofmtools.evaluate: COCO mAP on hand-made
cases with known answers, and completeness / reliability against SNR.
"""

import numpy as np
import pytest
import astropy.units as u
from astropy.stats import binom_conf_interval
from astropy.table import QTable, vstack

from astrofmtools.datasets import make_radio_field, make_wcs
from astrofmtools.evaluate import (completeness_reliability, detection_map, match_positions,
                                   plot_completeness_reliability)
from astrofmtools.exceptions import InputError


def boxes_table(boxes, scores=None, labels=None, image=None):
    """A table with bbox_* columns from (x1, y1, x2, y2) pixel edges."""
    b = np.asarray(boxes, float).reshape(-1, 4)
    t = QTable({"bbox_xmin": b[:, 0], "bbox_xmax": b[:, 2] - 1,
                "bbox_ymin": b[:, 1], "bbox_ymax": b[:, 3] - 1})
    if scores is not None:
        t["score"] = np.asarray(scores, float)
    if labels is not None:
        t["label"] = labels
    if image is not None:
        t["image"] = [image] * len(t)
    return t


def squares(n, side=10, step=20, y=0):
    return [[step * i, y, step * i + side, y + side] for i in range(n)]


# ----------------------------------------------------------------------------
# mAP


@pytest.fixture(scope="module")
def torchmetrics():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    pytest.importorskip("pycocotools")
    return pytest.importorskip("torchmetrics")


def test_map_perfect_predictions(torchmetrics):
    rng = np.random.default_rng(0)
    truths, preds = [], []
    for k in range(3):
        xy = rng.uniform(0, 500, (20, 2))
        size = rng.uniform(4, 30, (20, 2))
        b = np.column_stack([xy, xy + size])
        truths.append(boxes_table(b))
        preds.append(boxes_table(b, scores=rng.uniform(0.1, 1, 20)))
    m = detection_map(preds, truths)
    assert m["map"] == pytest.approx(1.0) and m["map_50"] == pytest.approx(1.0)
    assert m["map_75"] == pytest.approx(1.0) and m["mar"] == pytest.approx(1.0)
    assert (m["n_images"], m["n_truth"], m["n_predictions"]) == (3, 60, 60)


def test_map_half_found_is_recall_limited(torchmetrics):
    truth = boxes_table(squares(4))
    found = boxes_table(squares(2), scores=[0.9, 0.8])
    m = detection_map(found, truth)
    # precision 1 up to recall 0.5, then nothing: 51 of COCO's 101 recall points
    assert m["map_50"] == pytest.approx(51 / 101, abs=1e-6)
    assert m["map"] == pytest.approx(51 / 101, abs=1e-6)
    assert m["mar"] == pytest.approx(0.5)


def test_map_over_several_images(torchmetrics):
    # image a: both found; image b: a false detection ranked first, one of two found
    truth_a, truth_b = boxes_table(squares(2)), boxes_table(squares(2, y=100))
    pred_a = boxes_table(squares(2), scores=[0.9, 0.8])
    pred_b = boxes_table([[300, 300, 310, 310]] + squares(1, y=100), scores=[0.95, 0.7])
    m = detection_map([pred_a, pred_b], [truth_a, truth_b])
    # ranked over all images: F T T T -> precision envelope 3/4 up to recall 3/4
    assert m["map_50"] == pytest.approx(0.75 * 76 / 101, abs=1e-6)
    pairs = detection_map([(pred_a, truth_a), (pred_b, truth_b)])
    assert pairs["map_50"] == m["map_50"] and pairs["map"] == m["map"]
    for t, name in ((pred_a, "a"), (pred_b, "b"), (truth_a, "a"), (truth_b, "b")):
        t["image"] = name
    stacked = detection_map(vstack([pred_a, pred_b]), vstack([truth_a, truth_b]))
    assert stacked["map_50"] == m["map_50"] and stacked["n_images"] == 2
    # an image with no truth: its detections are false positives
    lonely = boxes_table([[0, 0, 10, 10]], scores=[0.99], image="c")
    more = detection_map(vstack([pred_a, pred_b, lonely]), vstack([truth_a, truth_b]))
    assert more["n_images"] == 3 and more["map_50"] < m["map_50"]


def test_map_iou_thresholds(torchmetrics):
    truth = boxes_table([[10, 10, 20, 20]])
    shifted = boxes_table([[12, 10, 22, 20]], scores=[0.9])  # IoU 8/12 = 0.667
    m = detection_map(shifted, truth)
    assert m["map_50"] == pytest.approx(1.0) and m["map_75"] == pytest.approx(0.0)
    assert m["map"] == pytest.approx(0.4)  # matched at 0.50, 0.55, 0.60, 0.65
    only = detection_map(shifted, truth, iou_thresholds=[0.7, 0.8])
    assert only["map"] == pytest.approx(0.0) and np.isnan(only["map_50"])


def test_map_counts_more_than_100_detections(torchmetrics):
    b = np.array([[20 * (i % 15), 20 * (i // 15), 20 * (i % 15) + 8, 20 * (i // 15) + 8]
                  for i in range(150)], float)
    truth = boxes_table(b)
    found = boxes_table(b, scores=np.linspace(1, 0.1, 150))
    assert detection_map(found, truth)["map"] == pytest.approx(1.0)
    capped = detection_map(found, truth, max_detections=100)  # COCO's default
    assert capped["map_50"] == pytest.approx(67 / 101, abs=1e-6)  # recall 2/3


def test_map_per_class(torchmetrics):
    truth = boxes_table(squares(4), labels=["A", "A", "B", "B"])
    # both A found; both B boxed but called A (ranked last)
    found = boxes_table(squares(4), scores=[0.9, 0.8, 0.7, 0.6], labels=["A"] * 4)
    aware = detection_map(found, truth, class_agnostic=False)
    assert aware["map_50"] == pytest.approx(0.5)  # (1 + 0) / 2
    per = aware["per_class"]
    assert per["label"].tolist() == ["A", "B"]
    assert per["map_50"].tolist() == pytest.approx([1.0, 0.0])
    assert per["n_truth"].tolist() == [2, 2] and per["n_predictions"].tolist() == [4, 0]
    assert detection_map(found, truth)["map_50"] == pytest.approx(1.0)


def test_map_edge_cases_and_errors(torchmetrics):
    truth = boxes_table(squares(3))
    none = boxes_table(np.zeros((0, 4)), scores=[])
    assert detection_map(none, truth)["map"] == pytest.approx(0.0)
    assert np.isnan(detection_map(boxes_table(squares(2), scores=[1, 1]),
                                  boxes_table(np.zeros((0, 4))))["map"])
    snr = boxes_table(squares(3))
    snr["snr"] = [30.0, 20.0, 10.0]
    assert detection_map(snr, truth, score="snr")["map"] == pytest.approx(1.0)
    with pytest.raises(InputError, match="'score'"):
        detection_map(boxes_table(squares(3)), truth)
    with pytest.raises(InputError, match="bbox_xmax"):
        detection_map(QTable({"score": [1.0]}), truth)
    with pytest.raises(InputError, match="2 tables but truth has 1"):
        detection_map([none, none], [truth])
    with pytest.raises(InputError, match="Only the predictions"):
        detection_map(boxes_table(squares(1), scores=[1], image="a"), truth)
    with pytest.raises(InputError, match="'label'"):
        detection_map(boxes_table(squares(1), scores=[1]), truth, class_agnostic=False)
    with pytest.raises(InputError, match="iou_thresholds"):
        detection_map(none, truth, iou_thresholds=[0.0])


# ----------------------------------------------------------------------------
# matching


def greedy_brute_force(p, t, max_sep):
    """All pairs, nearest first, each object used once: plain Python."""
    pairs = sorted((np.hypot(*(p[j] - t[i])), i, j) for i in range(len(t))
                   for j in range(len(p)) if np.hypot(*(p[j] - t[i])) <= max_sep)
    used_t, used_p, out = set(), set(), []
    for d, i, j in pairs:
        if i not in used_t and j not in used_p:
            used_t.add(i)
            used_p.add(j)
            out.append((i, j))
    return sorted(out)


def test_match_positions_agrees_with_brute_force():
    rng = np.random.default_rng(1)
    t = rng.uniform(0, 60, (150, 2))
    p = np.vstack([t[:120] + rng.normal(0, 0.8, (120, 2)), rng.uniform(0, 60, (60, 2))])
    truth = QTable({"x": t[:, 0], "y": t[:, 1]})
    found = QTable({"x": p[:, 0] * u.pix, "y": p[:, 1] * u.pix})  # units are fine
    pi, ti, sep = match_positions(found, truth, max_sep=2.0)
    expected = greedy_brute_force(p, t, 2.0)
    assert len(expected) > 100
    assert sorted(zip(ti.tolist(), pi.tolist())) == expected
    assert np.all(sep <= 2.0) and len(set(pi)) == len(pi)
    np.testing.assert_allclose(sep, np.hypot(*(p[pi] - t[ti]).T))


def test_match_on_the_sky_equals_match_in_pixels():
    wcs = make_wcs((200, 200))
    rng = np.random.default_rng(2)
    t = rng.uniform(20, 180, (80, 2))
    p = t + rng.normal(0, 0.5, t.shape)
    truth = QTable({"x": t[:, 0], "y": t[:, 1], "sky_centroid": wcs.pixel_to_world(*t.T)})
    sky = wcs.pixel_to_world(*p.T)
    found = QTable({"x": p[:, 0], "y": p[:, 1], "ra": sky.ra.deg, "dec": sky.dec.deg})
    pix = match_positions(found, truth, max_sep=1.0)
    ang = match_positions(found, truth, max_sep=1.8 * u.arcsec)  # 1 pixel
    np.testing.assert_array_equal(pix[0], ang[0])
    np.testing.assert_allclose(ang[2].to_value(u.arcsec), 1.8 * pix[2], rtol=1e-3)
    with pytest.raises(InputError, match="sky_centroid"):
        match_positions(QTable({"x": [1.0], "y": [1.0]}), truth, max_sep=1 * u.arcsec)
    with pytest.raises(InputError, match="max_sep"):
        match_positions(found, truth, max_sep=1 * u.Jy)


def test_one_to_one():
    truth = QTable({"x": [0.0, 2.0], "y": [0.0, 0.0]})
    # pairs by separation: T0-D2 0.1, T0-D1 0.5, T1-D0 0.9, T0-D0 1.1
    found = QTable({"x": [1.1, -0.5, 0.1], "y": [0.0, 0.0, 0.0]})
    pi, ti, sep = match_positions(found, truth, max_sep=1.5)
    assert ti.tolist() == [0, 1] and pi.tolist() == [2, 0]  # D1 left over, a false one
    np.testing.assert_allclose(sep, [0.1, 0.9])


# ----------------------------------------------------------------------------
# completeness and reliability


def test_completeness_reliability_by_hand():
    truth = QTable({"x": [10.0, 30, 50, 70, 90, 110], "y": [10.0] * 6,
                    "snr": [4.0, 6, 8, 30, 60, 200]})
    found = QTable({"x": [30.4, 50.0, 70.2, 90.0, 111.0, 140.0, 160.0], "y": [10.0] * 7,
                    "snr": [6.5, 8.0, 29.0, 55.0, 180.0, 5.5, 12.0]})
    t = completeness_reliability(found, truth, snr_bins=[3, 10, 100, np.inf], max_sep=1.5)
    assert t["n_true"].tolist() == [3, 2, 1] and t["n_found"].tolist() == [2, 2, 1]
    assert t["n_detected"].tolist() == [3, 3, 1] and t["n_real"].tolist() == [2, 2, 1]
    np.testing.assert_allclose(t["completeness"], [2 / 3, 1, 1])
    np.testing.assert_allclose(t["reliability"], [2 / 3, 2 / 3, 1])
    lo, hi = binom_conf_interval(np.array([2, 2, 1]), np.array([3, 2, 1]),
                                 confidence_level=0.682689492137, interval="wilson")
    np.testing.assert_allclose(t["completeness_lo"], lo)
    np.testing.assert_allclose(t["completeness_hi"], hi)
    assert t.meta["completeness"] == pytest.approx(5 / 6)
    assert t.meta["reliability"] == pytest.approx(5 / 7)
    assert t.meta["n_matched"] == 5 and t.meta["max_sep_unit"] == "pix"
    for name in t.colnames:
        assert t[name].info.description
    # empty bins have NaN fractions, not errors
    e = completeness_reliability(found, truth, snr_bins=[1000, 2000], max_sep=1.5)
    assert e["n_true"][0] == 0 and np.isnan(e["completeness"][0])
    # no SNR for the detections: only the total reliability
    no_snr = completeness_reliability(found[["x", "y"]], truth, snr_bins=[3, 10, 100],
                                      max_sep=1.5)
    assert np.all(np.isnan(no_snr["reliability"]))
    assert no_snr.meta["reliability"] == pytest.approx(5 / 7)
    np.testing.assert_allclose(no_snr["completeness"], [2 / 3, 1])


def test_bad_inputs():
    truth = QTable({"x": [1.0], "y": [1.0], "snr": [5.0]})
    found = QTable({"x": [1.0], "y": [1.0]})
    for bins in ([5], [5, 3], [np.inf, 1], "abc"):
        with pytest.raises(InputError, match="snr_bins"):
            completeness_reliability(found, truth, snr_bins=bins, max_sep=1)
    with pytest.raises(InputError, match="'flux'"):
        completeness_reliability(found, truth, snr_column="flux", max_sep=1)
    with pytest.raises(InputError, match="max_sep"):
        completeness_reliability(found, truth)
    with pytest.raises(InputError, match="max_sep"):
        completeness_reliability(found, truth, max_sep=-1)
    with pytest.raises(InputError, match="'x' and 'y'"):
        completeness_reliability(QTable({"a": [1]}), truth, max_sep=1)


@pytest.fixture(scope="module")
def radio():
    image, truth = make_radio_field(shape=(512, 512), n_compact=80, n_extended=0,
                                    n_artefacts=0, snr_range=(3, 300), seed=4)
    return image, truth


def test_find_sources_on_a_radio_field(radio):
    from astrofmtools.sources import find_sources

    image, truth = radio
    found = find_sources(image, snr=5)
    t = completeness_reliability(found, truth, image=image)  # max_sep: half the beam
    assert t.meta["max_sep"] == pytest.approx(1.5)  # 5.4" beam, 1.8" pixels
    bright = t["snr_min"] >= 20
    assert np.all(t["completeness"][bright] == 1.0)
    faint = t["snr_max"] <= 5
    assert np.all(t["completeness"][faint] < 0.7)
    assert np.all(t["reliability"][t["snr_min"] >= 7] == 1.0)
    assert t["n_true"].sum() == np.count_nonzero(truth["snr"] >= 3)
    assert t["n_detected"].sum() == np.count_nonzero(found["snr"] >= 3)


def test_snr_measured_on_the_image(radio):
    image, truth = radio
    model, _ = make_radio_field(shape=(512, 512), n_compact=80, n_extended=0,
                                n_artefacts=0, snr_range=(3, 300), seed=4, add_noise=False)
    boxes = truth["bbox_xmin", "bbox_xmax", "bbox_ymin", "bbox_ymax", "x", "y"]
    t = completeness_reliability(boxes, truth, image=model, noise=1.5e-4, max_sep=0.5)
    assert t["n_detected"].tolist() == t["n_true"].tolist()  # same SNR, same bins
    assert t.meta["reliability"] == 1.0
    from astrofmtools.evaluate.completeness import _measure_snr
    snr = _measure_snr(boxes, model, 1.5e-4)
    np.testing.assert_allclose(snr, truth["snr"], rtol=1e-3)
    noisy = _measure_snr(boxes, image, None)  # noise from the NOISE card
    offset = noisy - truth["snr"]  # the noise at the peak: 1 sigma, beam-correlated
    assert np.all(np.abs(offset) < 3.5) and abs(np.median(offset)) < 0.3


def test_plot(tmp_path):
    truth = QTable({"x": [10.0, 30, 50, 70], "y": [10.0] * 4, "snr": [4.0, 6, 30, 60]})
    found = QTable({"x": [30.4, 50.0, 70.2, 90.0], "y": [10.0] * 4,
                    "snr": [6.5, 29.0, 55.0, 5.5]})
    t = completeness_reliability(found, truth, max_sep=1.5)
    fig = plot_completeness_reliability({"a": t, "b": t}, path="cr.png", title="test")
    assert len(fig.axes) == 2 and fig.axes[0].get_xscale() == "log"
    from matplotlib.image import imread
    assert imread("cr.png").shape[:2] == (380, 900)
    with pytest.raises(InputError, match="exists"):
        plot_completeness_reliability(t, path="cr.png")
    plot_completeness_reliability(t, path="cr.png", overwrite=True)
    with pytest.raises(InputError, match="completeness_reliability table"):
        plot_completeness_reliability(QTable({"a": [1]}))
    from matplotlib.figure import Figure
    mine = Figure()
    axes = mine.subplots(1, 2)
    assert plot_completeness_reliability(t, axes=axes) is mine
    assert axes[1].get_ylabel() == "Reliability"
    with pytest.raises(InputError, match="two matplotlib Axes"):
        plot_completeness_reliability(t, axes=axes[:1])
