# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrofm models``: the backbones, which weights are here, where the missing ones go."""

import json

import pytest

from astrofmtools.cli import main

pytest.importorskip("torch")


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    """An empty local weights folder, and no Hugging Face cache."""
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv("ASTROFM_WEIGHTS", str(folder))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    monkeypatch.chdir(tmp_path)
    return folder


def test_models_lists_every_backbone_and_its_weights(weights_dir, capsys):
    from astrofmtools.backbones import list_backbones
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["name", "family", "input", "licence"]
    for name in list_backbones()["name"]:
        assert any(line.startswith(f"{name} ") for line in lines), name
    lite0 = next(line for line in lines if line.startswith("efficientnet_lite0 "))
    assert "embedded:" in lite0 and "Apache-2.0" in lite0
    dinov2 = next(line for line in lines if line.startswith("dinov2_vits14 "))
    assert "missing: download https://huggingface.co/timm/vit_small_patch14_dinov2" in dinov2
    assert str(weights_dir / "vit_small_patch14_dinov2.lvd142m.safetensors") in dinov2


def test_models_json_and_a_file_found_locally(weights_dir, capsys):
    (weights_dir / "resnet18.tv_in1k.safetensors").write_bytes(b"")
    assert main(["models", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["resnet18"]["weights"] == "local"
    assert rows["resnet18"]["path"] == str(weights_dir / "resnet18.tv_in1k.safetensors")
    assert rows["resnet18"]["message"].startswith("found locally at ")
    assert rows["resnet50"]["weights"] == "missing"
    assert rows["resnet50"]["download"].endswith("resnet50.tv_in1k/resolve/main/"
                                                 "model.safetensors")
    assert rows["efficientnet_lite0"]["weights"] == "embedded"
    assert rows["dinov2_vits14"]["input_size"] == 224
    assert rows["dinov2_vits14"]["family"] == "self-supervised"


def test_models_writes_a_table(weights_dir):
    from astrofmtools.catalog import read_table
    assert main(["models", "--family", "supervised", "-o", "models.ecsv", "-q"]) == 0
    table = read_table("models.ecsv")
    assert set(table["family"]) == {"supervised"}
    assert {"name", "family", "input_size", "licence", "weights", "path"} <= set(table.colnames)
    assert main(["models", "-o", "models.ecsv", "-q"]) == 2  # refuses to overwrite


def test_weights_status_matches_what_load_backbone_finds(weights_dir):
    from astrofmtools.backbones import WeightsNotFoundError, load_backbone, weights_status
    status = weights_status("resnet18")
    assert status["status"] == "missing"
    with pytest.raises(WeightsNotFoundError, match=str(status["path"]).replace(".", r"\.")):
        load_backbone("resnet18")
    assert weights_status("efficientnet_lite0")["status"] == "embedded"


def test_detector_defaults_to_a_backbone_that_ships(weights_dir):
    """Detector() builds offline: its default backbone's weights ship with the ml extra."""
    pytest.importorskip("torchvision")
    from astrofmtools.detect import Detector
    det = Detector()
    assert det.model == "efficientnet_lite0"
    spec = det._spec()
    model = det._build(spec, None, ["source"], ((16,), (32,), (64,), (128,)), (1.0,), 16, 32)
    torch = pytest.importorskip("torch")
    with torch.no_grad():
        out = model.eval()([torch.zeros(3, 64, 64)])
    assert sorted(out[0]) == ["boxes", "labels", "scores"]
