# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""astrofm train --calibration-fraction --ood, then astrofm classify --conformal."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from astrofmtools.catalog import read_table  # noqa: E402
from astrofmtools.cli import main  # noqa: E402


def test_conformal_sets_and_ood_columns_from_the_command_line(tmp_path, capsys,
                                                              doubles_stack):
    common = ["--model", doubles_stack(80), "--weights", "random", "-q"]
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
