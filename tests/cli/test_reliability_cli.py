# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Reliability of the command line (issue 15): bad input is refused before any work."""

import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.table import MaskedColumn, QTable
from astropy.utils.exceptions import AstropyUserWarning

from astrofmtools.cli import main
from astrofmtools.datasets import example_image_path
from astrofmtools.exceptions import InputError

EXAMPLE = example_image_path()


def _stack(path="c.fits", n=3, positions=True):
    """A small cutout stack, with or without source positions in its table."""
    from astrofmtools.cutouts import CutoutStack
    table = QTable({"id": np.arange(1, n + 1)})
    if positions:
        table["x"], table["y"] = np.full(n, 3.5), np.full(n, 3.5)
    CutoutStack(np.zeros((n, 8, 8), dtype=np.float32), table).write(path)
    return path


@pytest.mark.parametrize("argv, option", [
    (["train", "c.fits", "--epochs", "-1", "-o", "out"], "--epochs"),
    (["train", "c.fits", "--epochs", "0", "-o", "out"], "--epochs"),
    (["train", "c.fits", "--label-fraction", "1.5", "-o", "out"], "--label-fraction"),
    (["train", "c.fits", "--calibration-fraction", "1", "-o", "out"], "--calibration-fraction"),
    (["train", "c.fits", "--batch-size", "0", "-o", "out"], "--batch-size"),
    (["classify", "c.fits", "--model", "m", "--conformal", "0", "-o", "out.ecsv"],
     "--conformal"),
    (["classify", "c.fits", "--model", "m", "--mc-dropout", "-2", "-o", "out.ecsv"],
     "--mc-dropout"),
    (["label-curve", "c.fits", "--fractions", "0.5,2", "-o", "out.ecsv"], "--fractions"),
    (["label-curve", "c.fits", "--folds", "1", "-o", "out.ecsv"], "--folds"),
    (["label-curve", "c.fits", "--seeds", "0", "-o", "out.ecsv"], "--seeds"),
    (["pretrain", "c.fits", "--blur", "2", "-o", "out"], "--blur"),
    (["pretrain", "c.fits", "--size", "-64", "-o", "out"], "--size"),
    (["pretrain", "c.fits", "--zoom", "0.5", "-o", "out"], "--zoom"),
    (["pretrain", "c.fits", "--seed", "-1", "-o", "out"], "--seed"),
    (["embed", "c.fits", "--batch-size", "-8", "-o", "out.fits"], "--batch-size"),
    (["embed", "c.fits", "--workers", "0", "-o", "out.fits"], "--workers"),
    (["map", "f.fits", "--neighbors", "1", "-o", "out.png"], "--neighbors"),
    (["map", "f.fits", "--min-dist", "nan", "-o", "out.png"], "--min-dist"),
    (["map", "f.fits", "--n-components", "0", "-o", "out.png"], "--n-components"),
    (["similar", "f.fits", "--query", "1", "-k", "0", "-o", "out.png"], "-k"),
    (["attention", "c.fits", "--crop", "0.5", "-o", "out.png"], "--crop"),
    (["sources", "x.fits", "--snr", "-5", "-o", "out.ecsv"], "--snr"),
    (["cutouts", "x.fits", "t.ecsv", "--size", "0", "-o", "out.fits"], "--size"),
    (["cutouts", "x.fits", "t.ecsv", "--output-size", "-3", "-o", "out.fits"],
     "--output-size"),
    (["train-detector", "x.fits", "--crop-size", "0", "-o", "out"], "--crop-size"),
    (["detect", "x.fits", "--model", "m", "--tile", "0", "-o", "out.ecsv"], "--tile"),
    (["detect", "x.fits", "--model", "m", "--score-threshold", "1.5", "-o", "out.ecsv"],
     "--score-threshold"),
    (["morphology", "c.fits", "--gain", "0", "-o", "out.ecsv"], "--gain"),
])
def test_numeric_options_are_checked_when_parsed(argv, option, capsys):
    """Issue 15, case 1: a numeric option out of range (``train --epochs -1`` saved an
    untrained head and exited 0) is refused while parsing, with the option named, and
    nothing is written."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "must be" in err, err
    assert not Path("out").exists() and not list(Path(".").glob("out.*"))


def test_blank_labels_are_refused_or_dropped(capsys, doubles_stack):
    """Issue 15, case 2: blank or masked labels became a class named '0.0'; they are an
    error naming the table, the column and the rows, or, with --drop-unlabelled, left
    out with their number said."""
    from astrofmtools.classify import Classifier
    name = doubles_stack(20)
    classes = np.tile(["compact", "double"], 10)
    mask = np.zeros(20, dtype=bool)
    mask[[3, 8]] = True
    # row-shuffled and joined on 'id'; ECSV writes a masked value as a blank cell
    QTable({"id": np.arange(20, 0, -1),
            "class": MaskedColumn(classes[::-1], mask=mask)}).write("labels.ecsv")
    base = ["train", "c.fits", "--labels", "labels.ecsv", "--label-column", "class",
            "--model", name, "--weights", "random", "--head", "logistic", "--device", "cpu"]
    assert main(base + ["-o", "model", "-q"]) == 2
    err = capsys.readouterr().err
    assert "labels.ecsv" in err and "'class'" in err and "rows 3, 8" in err, err
    assert "--drop-unlabelled" in err and not Path("model").exists()

    assert main(base + ["--drop-unlabelled", "-o", "model"]) == 0
    err = capsys.readouterr().err
    assert "2 of 20 cutouts of c.fits left out" in err, err
    assert sorted(map(str, Classifier.load("model").classes_)) == ["compact", "double"]

    # in the library too: a blank label is no class
    with pytest.raises(InputError, match="blank or missing in 1 row"):
        Classifier(name, weights="random", head="logistic").fit(
            np.random.default_rng(0).normal(size=(4, 8, 8)).astype(np.float32),
            ["a", "b", " ", "a"])


def test_cutouts_wholly_outside_the_image(capsys):
    """Issue 15, case 3: positions all outside the image gave a stack of NaN stamps and
    exit 0; now exit 2 naming the image and the table, and a warning with the count when
    only some are outside (a warning of make_cutouts too)."""
    from astrofmtools.cutouts import CutoutStack, make_cutouts
    QTable({"x": [5000.0, -900.0], "y": [150.0, 150.0]}).write("away.ecsv")
    assert main(["cutouts", EXAMPLE, "away.ecsv", "-o", "c.fits", "--size", "16"]) == 2
    err = capsys.readouterr().err
    assert "away.ecsv" in err and Path(EXAMPLE).name in err and "outside" in err, err
    assert not Path("c.fits").exists()

    QTable({"x": [150.0, 5000.0], "y": [150.0, 150.0]}).write("some.ecsv")
    assert main(["cutouts", EXAMPLE, "some.ecsv", "-o", "c.fits", "--size", "16"]) == 0
    assert "1 of 2 cutouts lie wholly outside" in capsys.readouterr().err
    assert len(CutoutStack.read("c.fits")) == 2

    # the library warns when no cutout overlaps the image, or when asked, when some do not
    with pytest.warns(AstropyUserWarning, match="2 of 2 cutouts lie wholly outside") as w:
        make_cutouts(EXAMPLE, QTable.read("away.ecsv"), size=16)
    with pytest.warns(AstropyUserWarning, match="1 of 2 cutouts lie wholly outside") as w:
        make_cutouts(EXAMPLE, QTable.read("some.ecsv"), size=16, warn_outside=True)
    assert (w[0].message.n_outside, w[0].message.n) == (1, 2)
    with warnings.catch_warnings():  # else, and for cutouts partly on the image, no warning
        warnings.simplefilter("error")
        make_cutouts(EXAMPLE, QTable.read("some.ecsv"), size=16)
        make_cutouts(EXAMPLE, QTable({"x": [-7.0], "y": [3.0]}), size=16, warn_outside=True)


def test_learning_rate_is_refused_before_loading_the_backbone(monkeypatch, capsys):
    """Issue 15, case 8: ``--lr -1`` reached torch ('Invalid learning rate') after the
    backbone had loaded; it is refused while parsing, before anything loads."""
    pytest.importorskip("torch")
    from astrofmtools import backbones, classify, pretrain

    def loaded(*args, **kwargs):
        raise AssertionError("nothing may load before the options are checked")

    monkeypatch.setattr(backbones, "load_backbone", loaded)
    monkeypatch.setattr(classify.Classifier, "__init__", loaded)
    monkeypatch.setattr(pretrain.Pretrainer, "__init__", loaded)
    _stack()
    for argv in (["train", "c.fits", "--lr", "-1", "-o", "m"],
                 ["label-curve", "c.fits", "--lr", "-0.1", "-o", "runs.ecsv"],
                 ["pretrain", "c.fits", "--lr", "0", "-o", "p"],
                 ["train-detector", "c.fits", "--lr", "inf", "-o", "d"]):
        assert main(argv) == 2, argv
        assert "argument --lr: must be a number > 0" in capsys.readouterr().err


def test_map_metric_is_a_known_one(capsys):
    """Issue 15, case 10: ``map --metric banana`` ended in a bare ValueError of UMAP; it is
    refused with the metrics listed, on the command line and by FeatureMap."""
    from astrofmtools.embed import FeatureMap
    from astrofmtools.embed.feature_map import METRICS
    assert main(["map", "f.fits", "--metric", "banana", "-o", "m.png"]) == 2
    err = capsys.readouterr().err
    assert "argument --metric: invalid choice: 'banana'" in err
    assert all(repr(m) in err for m in METRICS)
    with pytest.raises(InputError, match="Unknown metric 'banana'; known: euclidean, cosine"):
        FeatureMap(metric="banana")


def test_cutouts_larger_than_memory_are_refused(monkeypatch, capsys):
    """Issue 15, case 12: ``cutouts --size 100000`` died in a MemoryError; the memory the
    stack needs is checked first, and the message says how much and what to do."""
    import astrofmtools.io
    from astrofmtools.cutouts import make_cutouts
    monkeypatch.setattr(astrofmtools.io, "available_memory", lambda: 1 << 20)
    QTable({"x": [150.0, 100.0], "y": [140.0, 60.0]}).write("pos.ecsv")
    assert main(["cutouts", EXAMPLE, "pos.ecsv", "-o", "c.fits", "--size", "1000"]) == 2
    err = capsys.readouterr().err
    assert "2 cutouts of 1000x1000 pixels" in err and "need 7.63 MiB" in err, err
    assert "1 MiB is available" in err and "smaller size or fewer rows" in err
    assert not Path("c.fits").exists()
    with pytest.raises(InputError, match="need 3.81 MiB"):
        make_cutouts(EXAMPLE, QTable.read("pos.ecsv")[:1], size=1000)
    assert len(make_cutouts(EXAMPLE, QTable.read("pos.ecsv"), size=64)) == 2


def test_every_output_is_checked_before_any_work(monkeypatch, capsys):
    """Issue 15, case 18: ``classify --regions`` that could not write its regions wrote the
    table, then exited 2; every output is checked before the work, all or nothing."""
    from astrofmtools.classify import Classifier
    loads = []

    class Fake:
        def predict(self, stack, **kwargs):
            table = QTable(stack.table, copy=True)
            table["label"] = ["a"] * len(stack)
            return table

    monkeypatch.setattr(Classifier, "load",
                        classmethod(lambda cls, path, device=None: loads.append(path) or Fake()))
    _stack("nopos.fits", positions=False)
    assert main(["classify", "nopos.fits", "--model", "m", "-o", "p.ecsv",
                 "--regions", "p.reg"]) == 2
    assert "--regions p.reg" in capsys.readouterr().err
    assert not Path("p.ecsv").exists() and loads == []  # refused before loading the model
    # CRTF regions need a WCS, which these cutouts lack
    _stack("c.fits")
    assert main(["classify", "c.fits", "--model", "m", "-o", "p.ecsv",
                 "--regions", "p.crtf"]) == 2
    assert "CRTF" in capsys.readouterr().err and not Path("p.ecsv").exists()
    assert main(["classify", "c.fits", "--model", "m", "-o", "p.ecsv", "--regions", "p.reg",
                 "-q"]) == 0
    assert Path("p.ecsv").exists() and Path("p.reg").exists()
    # an existing extra output: nothing written, whatever its place on the command line
    assert main(["classify", "c.fits", "--model", "m", "-o", "q.ecsv", "--regions", "p.reg",
                 "-q"]) == 2
    assert "exists" in capsys.readouterr().err and not Path("q.ecsv").exists()
    # one file named by two options
    assert main(["label-curve", "c.fits", "-o", "runs.ecsv", "--summary", "./runs.ecsv"]) == 2
    assert "name the same output" in capsys.readouterr().err
    # outputs in a missing folder, before the inputs are even read
    for argv in (["map", "missing.fits", "-o", "m.png", "--table", "nowhere/m.ecsv"],
                 ["similar", "missing.fits", "--query", "1", "-o", "nowhere/s.png"],
                 ["morphology", "missing.fits", "-o", "m.ecsv", "--png", "nowhere/m.png"],
                 ["detect", "missing.fits", "--model", "m", "-o", "nowhere/d.ecsv"]):
        assert main(argv) == 2, argv
        assert "folder 'nowhere' does not exist" in capsys.readouterr().err


def test_output_names_must_match_what_is_written(capsys):
    """Issue 15, case 19: ``map -o m.txt`` wrote a PNG into a .txt file and ``--regions
    out.xyz`` DS9 text; unknown extensions are refused with the known ones listed, and a
    .crtf region file is written as CRTF."""
    from regions import Regions
    cases = [(["map", "f.fits", "-o", "m.txt"], ".png"),
             (["sources", EXAMPLE, "-o", "s.ecsv", "--regions", "s.xyz"], ".reg, .ds9, .crtf"),
             (["sources", EXAMPLE, "-o", "s.txt"], ".ecsv, .fits"),
             (["sources", EXAMPLE, "-o", "s.ecsv", "--background-map", "b.png"], ".fits"),
             (["cutouts", EXAMPLE, "t.ecsv", "-o", "c.npz"], ".fits, .fit"),
             (["embed", "c.fits", "-o", "f.ecsv"], ".fits"),
             (["classify", "c.fits", "--model", "m", "-o", "p.png"], ".vot"),
             (["label-curve", "c.fits", "-o", "r.ecsv", "--png", "r.pdf"], ".png"),
             (["morphology", "c.fits", "-o", "m.ecsv", "--png", "m.jpg"], ".png")]
    for argv, known in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "name; use a name ending in" in err and known in err, (argv, err)
        assert not list(Path(".").glob("[mscfpr].*")), argv
    assert main(["sources", EXAMPLE, "-o", "s.ecsv", "--regions", "s.crtf", "-q"]) == 0
    assert len(Regions.read("s.crtf", format="crtf")) == len(QTable.read("s.ecsv"))
