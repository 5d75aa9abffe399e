# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""astrofm train --calibration-fraction --ood, then astrofm classify --conformal."""

import numpy as np
import pytest
from astropy.table import QTable

torch = pytest.importorskip("torch")

from astrofmtools.backbones import BackboneSpec, register_backbone  # noqa: E402
from astrofmtools.catalog import read_table  # noqa: E402
from astrofmtools.cli import main  # noqa: E402
from astrofmtools.cutouts import CutoutStack  # noqa: E402


def test_conformal_sets_and_ood_columns_from_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    register_backbone(BackboneSpec(
        name="vit_tiny_trust_cli", timm_name="vit_tiny_patch16_224", patch_size=8,
        input_size=32, feature_dim=32, licence="none",
        timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 32,
                     "num_heads": 2}), overwrite=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:24, :24] - 11.5
    images = [30 * (np.exp(-((xx - d) ** 2 + yy ** 2) / 4.5)
                    + np.exp(-((xx + d) ** 2 + yy ** 2) / 4.5)) + rng.normal(size=(24, 24))
              for d in np.tile([0.0, 5.0], 40)]
    labels = np.tile(["compact", "double"], 40)
    CutoutStack(np.array(images, dtype=np.float32),
                QTable({"id": np.arange(1, 81), "label": labels})).write("c.fits")
    torch.set_num_threads(1)
    common = ["--model", "vit_tiny_trust_cli", "--weights", "random", "-q"]
    assert main(["train", "c.fits", "--calibration-fraction", "0.3", "--ood", "knn",
                 "-o", "model", *common]) == 0
    assert main(["classify", "c.fits", "--model", "model", "--conformal", "0.1",
                 "-o", "p.ecsv", "-q"]) == 0
    table = read_table("p.ecsv")
    assert {"prediction_set", "set_size", "ood_score", "ood_flag"} <= set(table.colnames)
    assert np.all(np.asarray(table["set_size"]) >= 1)
    assert main(["train", "c.fits", "-o", "plain", *common]) == 0
    capsys.readouterr()
    assert main(["classify", "c.fits", "--model", "plain", "--conformal", "0.1",
                 "-o", "q.ecsv", "-q"]) == 2
    assert "--calibration-fraction" in capsys.readouterr().err
    assert not (tmp_path / "q.ecsv").exists()
