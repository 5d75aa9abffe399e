# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""A study: the grid, the cache of cells (resume, widen), the tables, the CLI and the checks."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("torch")

from astrofmtools.cli import main  # noqa: E402
from astrofmtools.study import (SECONDS_PER_CUTOUT, StudyConfig, cell_key,  # noqa: E402
                                estimate_cost, run_study, study_cells, time_backbone)
from astrofmtools.exceptions import InputError  # noqa: E402


@pytest.fixture
def config():
    from astrofmtools.datasets import make_radio_cutouts
    make_radio_cutouts(n_per_class=20, size=32).write("cutouts.fits")
    return {"data": "cutouts.fits", "labels": "class", "backbones": ["efficientnet_lite0"],
            "preprocess": {"small": {"input_size": 32}},
            "methods": ["frozen/linear", "frozen/knn"], "fractions": [0.5, 1.0],
            "seeds": [0, 1], "classifier": {"tta": False, "epochs": 20}}


#: The namespace run_study runs in (the module object it was defined in: doctest collection
#: with --import-mode=importlib may import the module file a second time under its name).
_STUDY = run_study.__globals__

#: The real cell runner (the tests wrap it to count cells).
_RUN_CELL = _STUDY["_run_cell"]


class Interrupted(RuntimeError):
    """A study stopped part-way (a killed job)."""


def _counting(monkeypatch, fail_after=None):
    """Count the cells run (and raise after ``fail_after`` of them: an interruption)."""
    ran = []

    def run(task, shared):
        if fail_after is not None and len(ran) >= fail_after:
            raise Interrupted
        ran.append(task[0]["name"])
        return _RUN_CELL(task, shared)

    monkeypatch.setitem(_STUDY, "_run_cell", run)
    return ran


def test_grid_has_one_cell_per_setting_and_seed(config):
    cells = study_cells(config)
    assert len(cells) == 1 * 1 * 2 * 2 * 2
    assert len({c["name"] for c in cells}) == 8
    assert {(c["head"], c["label_fraction"], c["seed"]) for c in cells} == {
        (h, f, s) for h in ("linear", "knn") for f in (0.5, 1.0) for s in (0, 1)}
    keys = {cell_key(c, "data") for c in cells}
    assert len(keys) == 8 and keys.isdisjoint(cell_key(c, "other") for c in cells)
    estimate = estimate_cost(config)
    assert set(estimate) == {c["name"] for c in cells}
    assert all(v > 0 for v in estimate.values())


def test_the_estimate_charges_features_once_and_training_per_epoch(config):
    config = dict(config, methods=["frozen/linear", "frozen/knn",
                                   {"strategy": "finetune", "head": "linear", "epochs": 4}])
    cost = estimate_cost(config, n_train=100, n_test=50)
    frozen = [cost[c["name"]] for c in study_cells(config) if c["strategy"] == "frozen"]
    area = (32 / 224) ** 2
    head, forward, step = (SECONDS_PER_CUTOUT["head"], SECONDS_PER_CUTOUT["features"] * area,
                           SECONDS_PER_CUTOUT["epoch"] * area)
    assert frozen[0] == pytest.approx(head + forward * 150)  # every cutout, once
    assert all(v == head for v in frozen[1:])  # the feature cache shares them
    # label fraction 0.5: 50 labelled, 42.5 fitted (15 % validation), 3 warm-up epochs
    tuned = cost["efficientnet_lite0/small/finetune/linear(epochs=4)/f0.5/s0"]
    assert tuned == pytest.approx(step * 42.5 * 1 + forward * (42.5 * 3 + 7.5 * 4 + 50))
    timed = estimate_cost(config, n_train=100, n_test=50, calibrate=True)
    rates = time_backbone("efficientnet_lite0", "random", 32)
    assert 0 < rates["features"] < rates["epoch"]
    expected = rates["epoch"] * 42.5 + rates["features"] * (42.5 * 3 + 7.5 * 4 + 50)
    name = "efficientnet_lite0/small/finetune/linear(epochs=4)/f0.5/s0"
    assert timed[name] == pytest.approx(expected, rel=2)  # two timings of one model


def test_run_resume_and_widen(config, monkeypatch):
    # an interrupted study: one cell done, then the interruption
    ran = _counting(monkeypatch, fail_after=1)
    with pytest.raises(Interrupted):
        run_study(config, "study", maps=False)
    cells = Path("study/cells")
    assert len(ran) == 1 and len(list(cells.glob("*.json"))) == 1
    # resumed: only the seven missing cells run
    ran = _counting(monkeypatch)
    result = run_study(config, "study", maps=False)
    assert len(ran) == 7 and len(result.cached) == 1 and not result.skipped
    table = result.results
    assert len(table) == 8 and len(list(cells.glob("*.json"))) == 8
    assert np.all((table["macro_f1"] >= 0) & (table["macro_f1"] <= 1))
    assert set(table["head"]) == {"linear", "knn"}
    assert np.all(table["n_test"] == 12)  # 30 % of 40, stratified
    assert sorted(set(table["n_labels"].tolist())) == [14, 28]
    assert np.all(table[table["head"] == "knn"]["n_trainable"] == 0)
    assert np.all(table[table["head"] == "linear"]["n_trainable"] > 0)
    summary = result.summary
    assert len(summary) == 4 and np.all(summary["n_seeds"] == 2)
    assert {"macro_f1_mean", "macro_f1_std", "seconds", "n_trainable"} <= set(summary.colnames)
    assert set(table["device"]) == {"cpu"} and np.all(summary["gpu_hours"] == 0)
    from astropy.table import QTable
    assert len(QTable.read("study/results.ecsv")) == 8
    assert len(QTable.read("study/summary.ecsv")) == 4
    # a second run computes nothing
    ran = _counting(monkeypatch)
    again = run_study(config, "study", maps=False)
    assert ran == [] and len(again.cached) == 8
    assert again.results["macro_f1"].tolist() == table["macro_f1"].tolist()
    # a widened grid (one more seed) runs only the new cells
    ran = _counting(monkeypatch)
    wider = run_study(dict(config, seeds=[0, 1, 2]), "study", maps=False)
    assert len(ran) == 4 and all(name.endswith("/s2") for name in ran)
    assert len(wider.results) == 12


def test_threads_and_budget(config, monkeypatch):
    config = dict(config, methods=["frozen/knn"], fractions=[1.0])
    result = run_study(config, "study", scheduler="threads", workers=2, maps=False)
    assert len(result.ran) == 2 and len(result.results) == 2
    # a budget too small for anything skips every cell still to run, and says which
    ran = _counting(monkeypatch)
    small = run_study(dict(config, seeds=[0, 1, 2]), "study", max_hours=1e-9, maps=False)
    assert ran == [] and small.skipped == ["efficientnet_lite0/small/frozen/knn/f1/s2"]
    assert len(small.results) == 2


def test_cli_dry_run_and_run(config, capsys, monkeypatch):
    with open("study.yaml", "w") as f:
        yaml.safe_dump(dict(config, methods=["frozen/knn"], fractions=[1.0]), f)
    ran = _counting(monkeypatch)
    assert main(["study", "study.yaml", "-o", "out", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert ran == [] and "efficientnet_lite0/small/frozen/knn/f1/s0" in printed
    assert "2 cells" in printed and "estimated" in printed
    assert main(["study", "study.yaml", "-o", "out", "-q", "--no-maps"]) == 0
    assert len(ran) == 2
    # resumed: nothing to do
    assert main(["study", "study.yaml", "-o", "out", "-q", "--no-maps"]) == 0
    assert len(ran) == 2
    assert main(["study", "study.yaml", "-o", "out", "-q", "--no-maps", "--overwrite"]) == 0
    assert len(ran) == 4
    assert main(["study", "missing.yaml", "-o", "out", "-q", "--no-maps"]) == 2
    assert "missing.yaml" in capsys.readouterr().err


@pytest.mark.parametrize("change, words", [
    ({"colour": 1}, ["'colour'", "known"]),
    ({"backbones": ["resnet9000"]}, ["'backbones'", "resnet9000", "efficientnet_lite0"]),
    ({"methods": ["full/linear"]}, ["'methods'", "'full'", "frozen", "lora"]),
    ({"methods": ["frozen/forest"]}, ["'methods'", "'forest'", "logistic"]),
    ({"fractions": [0.5, 1.5]}, ["'fractions'", "(0, 1]"]),
    ({"seeds": [0, 0]}, ["'seeds'"]),
    ({"metric": "auc"}, ["'metric'", "macro_f1"]),
    ({"classifier": {"seed": 3}}, ["'classifier'", "seed"]),
    ({"classifier": {"epochz": 3}}, ["'methods'", "epochz"]),
    ({"test_fraction": 1.0}, ["'test_fraction'"]),
    ({"data": None}, ["'data'"]),
])
def test_bad_configs_name_the_key(config, change, words):
    with pytest.raises(InputError) as err:
        StudyConfig(dict(config, **change))
    for word in words:
        assert word in str(err.value), (word, str(err.value))


def test_config_files(config):
    with open("s.json", "w") as f:
        json.dump(config, f)
    assert StudyConfig("s.json").seeds == [0, 1]
    with open("s.yaml", "w") as f:
        f.write("data: cutouts.fits\nseeds: [0\n")
    with pytest.raises(InputError, match="s.yaml"):
        StudyConfig("s.yaml")
    with pytest.raises(InputError, match="'labels'"):
        run_study(dict(config, labels="kind_of"), "study", maps=False)


def test_cells_on_a_dask_client_equal_serial(config):
    distributed = pytest.importorskip("distributed")
    config = dict(config, methods=["frozen/knn", "frozen/logistic"], fractions=[1.0])
    serial = run_study(config, "serial", maps=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        on_dask = run_study(config, "on_dask", scheduler=client, maps=False)
    assert len(on_dask.ran) == 4
    assert on_dask.results["key"].tolist() == serial.results["key"].tolist()
    np.testing.assert_allclose(on_dask.results["macro_f1"], serial.results["macro_f1"])
