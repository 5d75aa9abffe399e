# Licensed under a 3-clause BSD style license - see LICENSE.rst
import subprocess
import sys

import numpy as np
import pytest
from astropy.table import Table
import astropy.units as u

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from astrofmtools import InputError  # noqa: E402
from astrofmtools.evaluate import (classification_metrics, confusion_table,  # noqa: E402
                                   label_efficiency_table, plot_confusion_matrix,
                                   plot_label_efficiency)
from astrofmtools.evaluate.plots import DPI  # noqa: E402


def _from_confusion(cm, classes):
    """Label arrays that reproduce a given confusion matrix (rows true)."""
    y_true, y_pred = [], []
    for i, ci in enumerate(classes):
        for j, cj in enumerate(classes):
            y_true += [ci] * cm[i][j]
            y_pred += [cj] * cm[i][j]
    return y_true, y_pred


CM = [[50, 3, 2],
      [4, 20, 6],
      [1, 2, 12]]


def _hand_scores(cm):
    cm = np.asarray(cm, dtype=float)
    tp = np.diag(cm)
    precision = tp / cm.sum(axis=0)
    recall = tp / cm.sum(axis=1)
    f1 = 2 * precision * recall / (precision + recall)
    return precision, recall, f1


@pytest.mark.parametrize("classes", [["FRI", "FRII", "compact"], [0, 1, 2], [7, 3, 5]])
def test_metrics_known_confusion(classes):
    y_true, y_pred = _from_confusion(CM, classes)
    rng = np.random.default_rng(1)
    order = rng.permutation(len(y_true))
    y_true, y_pred = np.array(y_true)[order], np.array(y_pred)[order]
    m = classification_metrics(y_true, y_pred, classes=classes)
    np.testing.assert_array_equal(m["confusion"], CM)
    assert m["classes"] == list(classes)
    precision, recall, f1 = _hand_scores(CM)
    # by hand: class 0 P=50/55 R=50/55; class 1 P=20/25 R=20/30; class 2 P=12/20 R=12/15
    np.testing.assert_allclose(precision, [50 / 55, 0.8, 0.6])
    np.testing.assert_allclose(m["per_class"]["precision"], precision)
    np.testing.assert_allclose(m["per_class"]["recall"], recall)
    np.testing.assert_allclose(m["per_class"]["f1"], f1)
    assert m["per_class"]["support"].tolist() == [55, 30, 15]
    assert m["per_class"]["class"].tolist() == list(classes)
    assert m["macro_f1"] == pytest.approx(np.mean(f1))
    assert m["macro_f1"] == pytest.approx((50 / 55 + 8 / 11 + 24 / 35) / 3)
    assert m["accuracy"] == pytest.approx(82 / 100)
    assert m["balanced_accuracy"] == pytest.approx(np.mean(recall))
    assert m["n"] == 100
    assert "date" in m["per_class"].meta
    assert m["per_class"]["f1"].description


def test_default_class_order_is_sorted_union():
    m = classification_metrics(["b", "a", "c"], ["a", "a", "d"])
    assert m["classes"] == ["a", "b", "c", "d"]
    assert m["confusion"].shape == (4, 4)
    assert m["confusion"][0, 0] == 1 and m["confusion"][2, 3] == 1


def test_unbalanced_accuracy_high_macro_f1_low():
    # 95 common objects all right, a rare class of 5 always called common
    y_true = ["compact"] * 95 + ["FRII"] * 5
    y_pred = ["compact"] * 100
    m = classification_metrics(y_true, y_pred)
    assert m["accuracy"] == pytest.approx(0.95)
    # F1(compact) = 2*95/(2*95+5) = 190/195, F1(FRII) = 0
    assert m["macro_f1"] == pytest.approx(190 / 195 / 2)
    assert m["macro_f1"] < 0.5
    assert m["balanced_accuracy"] == pytest.approx(0.5)
    row = m["per_class"][m["per_class"]["class"] == "FRII"][0]
    assert row["precision"] == 0 and row["recall"] == 0 and row["f1"] == 0
    assert row["support"] == 5


def test_class_missing_from_predictions_no_warning():
    # class 2 never predicted: precision 0/0 -> 0 without a warning (filterwarnings=error)
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 0, 1, 1, 1, 0]
    m = classification_metrics(y_true, y_pred)
    np.testing.assert_allclose(m["per_class"]["precision"], [2 / 3, 2 / 3, 0])
    np.testing.assert_allclose(m["per_class"]["recall"], [1, 1, 0])
    np.testing.assert_allclose(m["macro_f1"], (0.8 + 0.8 + 0) / 3)


def test_class_absent_everywhere_is_nan_and_not_averaged():
    y_true = ["FRI", "FRI", "FRII"]
    y_pred = ["FRI", "FRII", "FRII"]
    m = classification_metrics(y_true, y_pred, classes=["FRI", "FRII", "artefact"])
    assert m["confusion"].shape == (3, 3)
    assert m["confusion"][2].sum() == 0 and m["confusion"][:, 2].sum() == 0
    f1 = np.asarray(m["per_class"]["f1"])
    assert np.isnan(f1[2])
    np.testing.assert_allclose(f1[:2], [2 / 3, 2 / 3])
    assert m["macro_f1"] == pytest.approx(2 / 3)


def test_predicted_class_absent_from_truth_counts_in_macro():
    m = classification_metrics([0, 0, 0, 0], [0, 0, 0, 1])
    # F1(0) = 6/7, F1(1) = 0 (a false positive class)
    assert m["macro_f1"] == pytest.approx(3 / 7)
    assert m["per_class"]["support"].tolist() == [4, 0]
    assert m["balanced_accuracy"] == pytest.approx(0.75)


def test_table_columns_fits_bytes_and_floats():
    # labels read back from FITS are padded bytes; integer labels may come back as floats
    t = Table({"true": np.array([b"FRI ", b"FRII"]), "pred": np.array([b"FRI ", b"FRI "])})
    m = classification_metrics(t["true"], t["pred"])
    assert m["classes"] == ["FRI", "FRII"]
    m = classification_metrics(np.array([0.0, 1.0]), [0, 1])
    assert m["classes"] == [0, 1] and m["accuracy"] == 1


@pytest.mark.parametrize("args, match", [
    (([0, 1], [0]), "2 labels but y_pred has 1"),
    (([], []), "empty"),
    ((["a", "b"], [0, 1]), "mix string and integer"),
    ((["a", "b"], ["a", "c"], ["a", "b"]), r"\['c'\] are not in classes"),
    (([0, 1], [0, 1], ["0", "1"]), "not in classes"),
    (([0, 1], [0, 1], [0, 1, 1]), "repeated"),
    ((np.zeros((2, 2), int), np.zeros((2, 2), int)), "1-D"),
    (([0.5, 1.0], [0, 1]), "strings or integers"),
])
def test_bad_labels(args, match):
    with pytest.raises(InputError, match=match):
        classification_metrics(*args)


def test_masked_labels_rejected():
    y = np.ma.MaskedArray([0, 1, 1], mask=[False, True, False])
    with pytest.raises(InputError, match="masked"):
        classification_metrics(y, [0, 1, 1])


def test_confusion_table_counts_and_normalized():
    classes = ["FRI", "FRII", "compact"]
    y_true, y_pred = _from_confusion(CM, classes)
    t = confusion_table(y_true, y_pred)
    assert t.colnames == ["true_class", "FRI", "FRII", "compact"]
    assert t["true_class"].tolist() == classes
    np.testing.assert_array_equal(np.array([t[c] for c in classes]).T, CM)
    rows = confusion_table(y_true, y_pred, normalize="true")
    np.testing.assert_allclose(np.array([rows[c] for c in classes]).sum(axis=0), 1)
    assert rows["FRII"][1] == pytest.approx(20 / 30)
    cols = confusion_table(y_true, y_pred, normalize="pred")
    np.testing.assert_allclose([cols[c].sum() for c in classes], 1)
    assert cols["compact"][2] == pytest.approx(12 / 20)
    every = confusion_table(y_true, y_pred, normalize="all")
    assert sum(every[c].sum() for c in classes) == pytest.approx(1)
    assert every.meta["normalize"] == "all"


def test_confusion_table_empty_row_is_zero_and_int_names():
    t = confusion_table([0, 0], [0, 0], classes=[0, 1], normalize="true")
    assert t.colnames == ["true_class", "0", "1"]
    assert t["0"].tolist() == [1.0, 0.0] and t["1"].tolist() == [0.0, 0.0]
    with pytest.raises(InputError, match="normalize"):
        confusion_table([0], [0], normalize="rows")


def _png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_plot_confusion_matrix_png(tmp_path):
    from PIL import Image

    classes = ["FRI", "FRII", "compact"]
    y_true, y_pred = _from_confusion(CM, classes)
    path = tmp_path / "cm.png"
    fig = plot_confusion_matrix(y_true, y_pred, path=path)
    width, height = (fig.get_size_inches() * DPI).round().astype(int)
    assert _png_size(path) == (width, height)
    with Image.open(path) as im:
        im.verify()
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == classes
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 9
    assert "50\n0.91" in texts and "20\n0.67" in texts and "12\n0.80" in texts
    assert "macro-F1 0.774" in ax.get_title() and "accuracy 0.820" in ax.get_title()
    # refuses to overwrite, then replaces when asked
    with pytest.raises(InputError, match="exists"):
        plot_confusion_matrix(y_true, y_pred, path=path)
    plot_confusion_matrix(y_true, y_pred, path=path, normalize=None, overwrite=True)
    assert list(tmp_path.iterdir()) == [path]


def test_plot_confusion_matrix_from_metrics_and_counts():
    classes = [0, 1, 2]
    m = classification_metrics(*_from_confusion(CM, classes))
    fig = plot_confusion_matrix(m, normalize="pred")
    assert "12\n0.60" in [t.get_text() for t in fig.axes[0].texts]
    fig2 = plot_confusion_matrix(np.array(CM), classes=["a", "b", "c"])
    title = fig2.axes[0].get_title()
    assert f"macro-F1 {m['macro_f1']:.3f}" in title and "N = 100" in title
    with pytest.raises(InputError, match="square"):
        plot_confusion_matrix(np.ones((2, 3), int))
    with pytest.raises(InputError, match="2 classes"):
        plot_confusion_matrix(np.ones((3, 3), int), classes=["a", "b"])


def test_many_classes_no_cell_text():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 40, 500)
    fig = plot_confusion_matrix(y, y)
    assert len(fig.axes[0].texts) == 0


RESULTS = Table({
    "strategy": ["frozen"] * 6 + ["lora"] * 6,
    "label_fraction": [0.01, 0.01, 0.1, 0.1, 1.0, 1.0] * 2,
    "seed": [0, 1] * 6,
    "macro_f1": [0.50, 0.54, 0.70, 0.72, 0.78, 0.80, 0.30, 0.40, 0.74, 0.76, 0.88, 0.90],
})


def test_label_efficiency_table_averages_seeds():
    t = label_efficiency_table(RESULTS)
    assert t["strategy"].tolist() == ["frozen"] * 3 + ["lora"] * 3
    np.testing.assert_allclose(t["label_fraction"], [0.01, 0.1, 1.0] * 2)
    np.testing.assert_allclose(t["macro_f1"], [0.52, 0.71, 0.79, 0.35, 0.75, 0.89])
    np.testing.assert_allclose(t["macro_f1_std"][3], np.std([0.30, 0.40], ddof=1))
    assert t["n_runs"].tolist() == [2] * 6
    # percent Quantity in, fractions out; model+strategy grouping
    q = Table({"model": ["a", "b"], "strategy": ["frozen", "frozen"],
               "label_fraction": [10, 100] * u.percent, "accuracy": [0.5, 0.6],
               "accuracy_std": [0.01, 0.02]})
    t = label_efficiency_table(q, metric="accuracy")
    np.testing.assert_allclose(t["label_fraction"], [0.1, 1.0])
    np.testing.assert_allclose(t["accuracy_std"], [0.01, 0.02])
    assert t.meta["group"] == ["model", "strategy"]


@pytest.mark.parametrize("table, kwargs, match", [
    (Table({"strategy": ["a"], "label_fraction": [50.0], "macro_f1": [0.5]}), {}, r"\(0, 1\]"),
    (Table({"strategy": ["a"], "macro_f1": [0.5]}), {}, "label_fraction"),
    (Table({"strategy": ["a"], "label_fraction": [0.5]}), {}, "'macro_f1'"),
    (Table({"label_fraction": [0.5], "macro_f1": [0.5]}), {"group": "backbone"}, "backbone"),
])
def test_label_efficiency_bad_input(table, kwargs, match):
    with pytest.raises(InputError, match=match):
        label_efficiency_table(table, **kwargs)


def test_plot_label_efficiency_png(tmp_path):
    path = tmp_path / "eff.png"
    fig = plot_label_efficiency(RESULTS, path=path)
    assert _png_size(path) == (600, 420)
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["frozen", "lora"]
    np.testing.assert_allclose(lines[0].get_xdata(), [1, 10, 100])
    np.testing.assert_allclose(lines[1].get_ydata(), [0.35, 0.75, 0.89])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1%", "10%", "100%"]
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "Macro-F1"
    assert len(ax.collections) == 2  # one std band per strategy
    # a single run per point: no band
    single = RESULTS[RESULTS["seed"] == 0]
    fig = plot_label_efficiency(single)
    assert len(fig.axes[0].collections) == 0


def test_import_does_not_pull_torch_or_sklearn():
    code = ("import sys, astrofmtools.evaluate; "
            "print(any(m in sys.modules for m in ('torch', 'sklearn', 'matplotlib')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
