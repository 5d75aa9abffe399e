# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Shared data of the command-line tests that train a model."""

import numpy as np
import pytest
from astropy.table import QTable


@pytest.fixture
def doubles_stack(tmp_path, monkeypatch):
    """
    A factory: ``doubles_stack(n)`` writes ``c.fits`` in the (current) temporary folder,
    ``n`` cutouts alternating compact sources and doubles with a ``label`` column, registers
    a tiny random-weight ViT and returns its name (torch on one thread).
    """
    torch = pytest.importorskip("torch")
    from astrofmtools.backbones import BackboneSpec, register_backbone
    from astrofmtools.cutouts import CutoutStack
    monkeypatch.chdir(tmp_path)
    register_backbone(BackboneSpec(
        name="vit_tiny_cli_train", timm_name="vit_tiny_patch16_224", patch_size=8,
        input_size=32, feature_dim=32, licence="none",
        timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 32,
                     "num_heads": 2}), overwrite=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)

    def make(n):
        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[:24, :24] - 11.5
        images = [30 * (np.exp(-((xx - d) ** 2 + yy ** 2) / 4.5)
                        + np.exp(-((xx + d) ** 2 + yy ** 2) / 4.5)) + rng.normal(size=(24, 24))
                  for d in np.tile([0.0, 5.0], n // 2)]
        labels = np.tile(["compact", "double"], n // 2)
        CutoutStack(np.array(images, dtype=np.float32),
                    QTable({"id": np.arange(1, n + 1), "label": labels})).write("c.fits")
        return "vit_tiny_cli_train"

    yield make
    torch.set_num_threads(threads)
