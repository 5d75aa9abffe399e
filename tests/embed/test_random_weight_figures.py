# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""A figure or table made with random weights says so."""

import numpy as np
import pytest

from astrofmtools.utils import RANDOM_WEIGHTS_NOTE, weights_note

pytest.importorskip("matplotlib")


def test_weights_note():
    assert weights_note("map", "random") == f"map ({RANDOM_WEIGHTS_NOTE})"
    assert weights_note("map", "random", sep="\n") == f"map\n({RANDOM_WEIGHTS_NOTE})"
    assert weights_note("map", "/data/w.safetensors") == "map"
    assert weights_note("map", None) == "map"
    assert weights_note(None, "random") == f"({RANDOM_WEIGHTS_NOTE})"
    assert weights_note(weights_note("map", "random"), "random").count(RANDOM_WEIGHTS_NOTE) == 1


@pytest.fixture
def tiny_vit():
    pytest.importorskip("timm")
    from astrofmtools.backbones import BackboneSpec, register_backbone
    register_backbone(BackboneSpec(
        name="vit_random_figure_test", timm_name="vit_tiny_patch16_224", patch_size=8,
        input_size=32, feature_dim=32, licence="none",
        timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 1, "embed_dim": 32,
                     "num_heads": 2, "dynamic_img_size": True}), overwrite=True)
    return "vit_random_figure_test"


def _cutouts():
    rng = np.random.default_rng(0)
    data = rng.normal(0, 1e-4, (6, 32, 32))
    data[:, 14:18, 14:18] += 1e-2
    return data


def test_attention_figure_of_random_weights_says_so(tiny_vit, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt  # noqa: F401 - the Agg backend for the figure
    from astrofmtools.embed import attention_maps, plot_attention
    monkeypatch.chdir(tmp_path)
    attention_maps(_cutouts()[:2], model=tiny_vit, weights="random", output="a.png")
    assert (tmp_path / "a.png").is_file()
    rng = np.random.default_rng(0)
    fig = plot_attention(rng.random((2, 16, 16)), rng.random((2, 2, 16, 16)),
                         model="dinov2_vits14", weights="random")
    assert fig._suptitle.get_text() == ("CLS attention of the last block, dinov2_vits14\n"
                                        f"({RANDOM_WEIGHTS_NOTE})")
    fig = plot_attention(rng.random((2, 16, 16)), rng.random((2, 2, 16, 16)),
                         model="dinov2_vits14", weights="/data/dinov2.safetensors")
    assert RANDOM_WEIGHTS_NOTE not in fig._suptitle.get_text()


def test_cli_attention_with_random_weights_says_so(tiny_vit, tmp_path, monkeypatch, capsys):
    from astrofmtools.cli import main
    from astrofmtools.cutouts import CutoutStack
    monkeypatch.chdir(tmp_path)
    CutoutStack(_cutouts()).write("c.fits")
    assert main(["attention", "c.fits", "--model", tiny_vit, "--weights", "random",
                 "--rows", "0:2", "-o", "att.png"]) == 0
    assert (tmp_path / "att.png").is_file()
    assert "has random weights" in capsys.readouterr().err


def test_map_and_similar_of_random_features_say_so(tmp_path):
    pytest.importorskip("umap")
    from astropy.table import Table
    from astrofmtools.embed import Embedding, plot_map, similar
    rng = np.random.default_rng(0)
    features = rng.normal(size=(6, 8)).astype(np.float32)
    table = Table({"id": np.arange(1, 7), "map_x": rng.random(6), "map_y": rng.random(6)})
    table.meta.update(backbone="resnet18", weights="random")
    fig = plot_map(table)
    assert RANDOM_WEIGHTS_NOTE in fig.axes[0].get_title()
    fig = plot_map(table, title="my map")  # a title given is marked too
    assert fig.axes[0].get_title() == f"my map\n({RANDOM_WEIGHTS_NOTE})"
    table.meta["weights"] = "/data/resnet18.safetensors"
    assert RANDOM_WEIGHTS_NOTE not in plot_map(table).axes[0].get_title()
    emb = Embedding(features, Table({"id": np.arange(1, 7)}),
                    meta={"backbone": "resnet18", "weights": "random"})
    found = similar(emb, [1], k=2, output=tmp_path / "s.png", cutouts=_cutouts())
    assert found.meta["weights"] == "random"
    assert (tmp_path / "s.png").is_file()


def test_similar_figure_of_random_features_says_so():
    from astropy.table import Table
    from astrofmtools.embed import plot_similar
    table = Table({"query": [0, 0], "rank": [0, 1], "row": [0, 1],
                   "similarity": [1.0, 0.5]})
    table.meta.update(queries=[{"kind": "id", "row": 0, "id": 1}], backbone="resnet18",
                      weights="random")
    fig = plot_similar(table, _cutouts())
    assert fig._suptitle.get_text() == f"resnet18 features ({RANDOM_WEIGHTS_NOTE})"
    table.meta["weights"] = "efficientnet-lite0"
    assert plot_similar(table, _cutouts())._suptitle is None
