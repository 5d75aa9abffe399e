# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""astrofm pretrain: a backbone folder from a cutout stack and a mosaic, then used by train."""

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightly")

from astrofmtools.cli import main  # noqa: E402


def test_pretrain_writes_a_backbone_that_train_takes(tmp_path, capsys, doubles_stack,
                                                      monkeypatch):
    from astrofmtools.backbones import weights as weights_module
    monkeypatch.setattr(weights_module, "_weights_dirs", lambda: [tmp_path / "weights"])
    doubles_stack(24)
    small = ["--method-option", "hidden_dim=64", "--method-option", "projection_dim=32"]
    assert main(["pretrain", "c.fits", "-o", "my_byol", "--epochs", "2", "--input-size",
                 "32", "--batch-size", "8", "--device", "cpu", "--monitor", "c.fits",
                 "--monitor-every", "1", *small]) == 0
    err = capsys.readouterr().err
    assert "pool: 24 cutouts" in err and "k-NN error of the monitor set" in err
    config = json.loads((tmp_path / "my_byol" / "backbone.json").read_text())
    assert config["spec"]["name"] == "my_byol" and config["n_pool"] == 24
    assert config["pretraining"]["epochs"] == 2
    assert (tmp_path / "my_byol" / "history.png").is_file()
    # the folder is a backbone for every command
    assert main(["train", "c.fits", "--model", "my_byol", "--strategy", "frozen", "--head",
                 "knn", "--no-tta", "-o", "clf", "-q"]) == 0
    assert (tmp_path / "clf").is_dir()
    # outputs are refused before any work, and unknown options name themselves
    assert main(["pretrain", "c.fits", "-o", "my_byol", "-q"]) == 2
    assert "my_byol" in capsys.readouterr().err
    assert main(["pretrain", "c.fits", "-o", "other", "--method-option", "temp=1", "-q"]) == 2
    assert "temp" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()
