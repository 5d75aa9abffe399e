# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""A strategy from a plug-in module trains from the command line, is saved by name, and
the saved model classifies in a later command."""

import json
import textwrap

import pytest

torch = pytest.importorskip("torch")

from astrofmtools import plugins  # noqa: E402
from astrofmtools.adapt import list_strategies  # noqa: E402
from astrofmtools.cli import main  # noqa: E402

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


def test_strategy_from_a_plugin_module_works_in_the_cli(tmp_path, monkeypatch, capsys,
                                                        doubles_stack):
    (tmp_path / "plugin_top_group.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("ASTROFM_PLUGINS", "plugin_top_group")
    model = doubles_stack(40)
    assert main(["train", "c.fits", "--model", model, "--weights", "random",
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
