# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Models saved by astrofmtools before the strategy registry (format 1) still load and
predict the same probabilities."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from astrofmtools.classify import Classifier  # noqa: E402
from astrofmtools.detect import Detector  # noqa: E402

V1 = Path(__file__).parent.parent / "data" / "v1_models"
NAMES = ["frozen_linear", "frozen_logistic", "frozen_knn", "partial_mlp", "finetune_linear",
         "lora_linear"]


def _copy(name, tmp_path):
    """The saved folder with its weights reference pointed at this checkout's copy."""
    folder = tmp_path / name
    shutil.copytree(V1 / name, folder)
    config = json.loads((folder / "config.json").read_text())
    if config.get("weights") not in (None, "random"):
        config["weights"] = str(V1 / "tiny_vit.safetensors")
    (folder / "config.json").write_text(json.dumps(config))
    return folder, config


@pytest.mark.parametrize("name", NAMES)
def test_format_1_classifiers_load_and_predict_alike(name, tmp_path):
    folder, config = _copy(name, tmp_path)
    assert config["format_version"] == 1
    clf = Classifier.load(folder, device="cpu")
    images = np.load(V1 / "images.npy")
    expected = np.array(json.loads((V1 / "expected.json").read_text())[name])
    assert np.allclose(clf.predict_proba(images), expected, atol=1e-5)
    assert clf.strategy == config["params"]["strategy"]
    # saved again, it is the current format and still predicts the same
    clf.save(tmp_path / "again")
    again = json.loads((tmp_path / "again" / "config.json").read_text())
    assert again["format_version"] == 3
    assert np.allclose(Classifier.load(tmp_path / "again", device="cpu").predict_proba(images),
                       expected, atol=1e-5)


def test_format_1_detector_loads(tmp_path):
    det = Detector.load(V1 / "detector", device="cpu")
    assert det.classes_ == ["source"] and det.strategy == "finetune"
    config = json.loads((V1 / "detector" / "config.json").read_text())
    assert len(det.history_) == len(config["history"])
