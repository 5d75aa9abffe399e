# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""astrofm label-curve: runs table, summary and figure from the command line."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from astrofmtools.catalog import read_table  # noqa: E402
from astrofmtools.cli import main  # noqa: E402


def test_label_curve_of_two_models(tmp_path, capsys, doubles_stack):
    name = doubles_stack(40)
    assert main(["label-curve", "c.fits", "--model", name, "--model", f"{name}@random",
                 "--weights", "random", "--head", "knn", "--fractions", "0.5,1",
                 "--seeds", "1", "--folds", "2", "--no-tta", "-o", "curve.ecsv",
                 "--summary", "summary.ecsv", "--png", "curve.png"]) == 0
    runs = read_table("curve.ecsv")
    assert len(runs) == 2 * 2 * 2
    assert sorted(set(runs["model"])) == [name, f"{name}@random"]
    assert set(runs["weights"]) == {"random"}
    assert runs.meta["validation"] == "2-fold cross-validation"
    summary = read_table("summary.ecsv")
    assert summary["n_labels"].tolist() == [10.0, 20.0, 10.0, 20.0]
    assert np.all(summary["n_runs"] == 2)
    assert (tmp_path / "curve.png").stat().st_size > 1000
    err = capsys.readouterr().err
    assert "8 runs (2-fold cross-validation)" in err and "error" in err
    # outputs are refused before any work; bad options name themselves
    assert main(["label-curve", "c.fits", "--model", name, "-o", "curve.ecsv", "-q"]) == 2
    assert "curve.ecsv" in capsys.readouterr().err
    assert main(["label-curve", "c.fits", "--model", f"{name}@", "-o", "x.ecsv", "-q"]) == 2
    assert "NAME@WEIGHTS" in capsys.readouterr().err
    assert main(["label-curve", "c.fits", "--test-labels", "l.ecsv", "-o", "x.ecsv", "-q"]) == 2
    assert "--test" in capsys.readouterr().err
    assert not (tmp_path / "x.ecsv").exists()


def test_label_curve_on_a_test_stack(tmp_path, doubles_stack):
    name = doubles_stack(24)
    assert main(["label-curve", "c.fits", "--test", "c.fits", "--model", name, "--weights",
                 "random", "--head", "knn", "--fractions", "1", "--seeds", "2", "--no-tta",
                 "-o", "curve.ecsv", "-q"]) == 0
    runs = read_table("curve.ecsv")
    assert runs["fold"].tolist() == [-1, -1] and runs["n_test"].tolist() == [24, 24]
