# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""A strategy from a plug-in module trains from the command line, is saved by name, and
the saved model classifies in a later command."""

import json
import textwrap

import numpy as np
import pytest
from astropy.table import QTable

torch = pytest.importorskip("torch")

from astrofmtools import plugins  # noqa: E402
from astrofmtools.adapt import list_strategies  # noqa: E402
from astrofmtools.backbones import BackboneSpec, register_backbone  # noqa: E402
from astrofmtools.cli import main  # noqa: E402
from astrofmtools.cutouts import CutoutStack  # noqa: E402

PLUGIN = '''
from astrofmtools.adapt import Finetune, register_strategy


@register_strategy
class TopGroupOnly(Finetune):
    """The head and the last layer group train."""
    name = "top_group_plugin_test"
    defaults = {"epochs": 2, "lr": 1e-3, "batch_size": 16, "patience": 2,
                "head_warmup_epochs": 0}

    def trainable_groups(self, backbone):
        return super().trainable_groups(backbone)[:1]
'''


def test_strategy_from_a_plugin_module_works_in_the_cli(tmp_path, monkeypatch, capsys):
    (tmp_path / "plugin_top_group.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("ASTROFM_PLUGINS", "plugin_top_group")
    monkeypatch.chdir(tmp_path)
    register_backbone(BackboneSpec(
        name="vit_tiny_plugin", timm_name="vit_tiny_patch16_224", patch_size=8, input_size=32,
        feature_dim=32, licence="none",
        timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 32,
                     "num_heads": 2}), overwrite=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:24, :24] - 11.5
    images = [30 * (np.exp(-((xx - d) ** 2 + yy ** 2) / 4.5)
                    + np.exp(-((xx + d) ** 2 + yy ** 2) / 4.5)) + rng.normal(size=(24, 24))
              for d in np.tile([0.0, 5.0], 20)]
    labels = np.tile(["compact", "double"], 20)
    CutoutStack(np.array(images, dtype=np.float32),
                QTable({"id": np.arange(1, 41), "label": labels})).write("c.fits")
    torch.set_num_threads(1)
    assert main(["train", "c.fits", "--model", "vit_tiny_plugin", "--weights", "random",
                 "--strategy", "top_group_plugin_test", "-o", "model", "-q"]) == 0
    assert "top_group_plugin_test" in list_strategies()
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["params"]["strategy"] == "top_group_plugin_test"
    assert main(["classify", "c.fits", "--model", "model", "-o", "p.ecsv", "-q"]) == 0
    # a plug-in that cannot be imported: exit 2, naming it
    monkeypatch.setenv("ASTROFM_PLUGINS", "no_such_plugin_module")
    assert main(["info", "c.fits"]) == 2
    assert "no_such_plugin_module" in capsys.readouterr().err
    plugins._LOADED.discard("plugin_top_group")
