# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""CUDA paths against the CPU: features under mixed precision, classifier strategies with
AMP and a gradient scaler, the detector, and the whole pipeline.

Skipped without a GPU (CI has none); run them on a GPU machine with
``python -m pytest tests/test_gpu.py``. Every other test runs on the CPU
(the conftest sets ``ASTROFM_DEVICE=cpu``), so these are the only ones that
touch CUDA.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)

from scipy.spatial import cKDTree  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402

from astrofmtools.backbones import BackboneSpec, extract_features, load_backbone  # noqa: E402
from astrofmtools.classify import Classifier  # noqa: E402
from astrofmtools.datasets import make_radio_cutouts, make_radio_field  # noqa: E402

TINY_VIT = BackboneSpec(
    name="vit_tiny_gpu_test", timm_name="vit_tiny_patch16_224", patch_size=8, input_size=32,
    feature_dim=32, licence="none",
    timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 32, "num_heads": 2})


@pytest.fixture(scope="module")
def cutouts():
    train = make_radio_cutouts(n_per_class=40, size=32, seed=0)
    test = make_radio_cutouts(n_per_class=20, size=32, seed=1)
    return train, test


def _cosine(a, b):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def test_default_device_is_the_gpu(monkeypatch):
    from astrofmtools.backbones import default_device
    monkeypatch.delenv("ASTROFM_DEVICE")
    assert default_device().type == "cuda"
    monkeypatch.setenv("ASTROFM_DEVICE", "cpu")
    assert default_device().type == "cpu"


def test_features_under_mixed_precision_match_the_cpu(cutouts):
    """bfloat16 autocast on the GPU: the same directions as float32 on the CPU."""
    train, _ = cutouts
    backbone = load_backbone("efficientnet_lite0", device="cpu")
    pre = backbone.default_preprocess(input_size=96)
    cpu = extract_features(backbone, train.data, preprocess=pre, device="cpu", cache=False)
    gpu = extract_features(backbone, train.data, preprocess=pre, device="cuda", cache=False)
    assert gpu.dtype == np.float32 and gpu.shape == cpu.shape
    cos = _cosine(cpu, gpu)
    # bfloat16 keeps 8 bits of mantissa: on an H100, cosine 0.995-0.9996 (median 0.998)
    assert cos.min() > 0.99 and np.median(cos) > 0.995
    # the same neighbours: leave-one-out 1-NN labels agree
    labels = np.asarray(train.table["class"])
    nn = []
    for f in (cpu, gpu):
        f = f / np.linalg.norm(f, axis=1, keepdims=True)
        s = f @ f.T
        np.fill_diagonal(s, -np.inf)
        nn.append(labels[s.argmax(1)])
    assert np.mean(nn[0] == nn[1]) >= 0.95


def test_frozen_efficientnet_classifier_on_the_gpu(cutouts):
    train, test = cutouts
    clf = Classifier("efficientnet_lite0", head="linear", preprocess={"input_size": 64},
                     device="cuda", seed=0)
    table = clf.fit(train, np.asarray(train.table["class"])).predict(test)
    truth = np.asarray(test.table["class"])
    assert f1_score(truth, np.asarray(table["label"]), average="macro") >= 0.85
    cpu = Classifier("efficientnet_lite0", head="linear", preprocess={"input_size": 64},
                     device="cpu", seed=0)
    cpu_table = cpu.fit(train, np.asarray(train.table["class"])).predict(test)
    assert np.mean(np.asarray(cpu_table["label"]) == np.asarray(table["label"])) >= 0.9


@pytest.mark.parametrize("strategy, head", [("finetune", "linear"), ("lora", "mlp"),
                                            ("partial", "whitening")])
def test_strategies_train_with_amp_and_reload_on_the_cpu(cutouts, strategy, head, tmp_path):
    """Fine-tuning on CUDA (autocast + GradScaler) trains, saves, and reloads on the CPU with
    the same predictions up to mixed-precision rounding."""
    train, test = cutouts
    clf = Classifier(TINY_VIT, weights="random", strategy=strategy, head=head, hidden=(16,),
                     epochs=4, head_warmup_epochs=1, n_blocks=1, lora_r=2, batch_size=16,
                     device="cuda", seed=0)
    clf.fit(train, np.asarray(train.table["class"]))
    loss = np.asarray(clf.history_["train_loss"])
    assert np.isfinite(loss).all()
    # the loss jumps when the random backbone is unfrozen after the head epoch (on the CPU
    # too), then falls while the whole model trains
    assert loss[-1] < loss[1]
    gpu = clf.predict_proba(test)
    clf.save(tmp_path / "model")
    cpu = Classifier.load(tmp_path / "model", device="cpu").predict_proba(test)
    assert np.abs(gpu - cpu).max() < 0.05
    assert np.mean(gpu.argmax(1) == cpu.argmax(1)) >= 0.95


def test_detector_trains_and_finds_sources_on_the_gpu(tmp_path):
    from astrofmtools.detect import Detector
    field = dict(n_extended=0, n_artefacts=0, snr_range=(5, 300))
    train = [make_radio_field((192, 192), n_compact=22, seed=s, **field) for s in (1, 2)]
    det = Detector("resnet18", weights="random", epochs=4, batch_size=4, crop_size=96,
                   lr=2e-3, fpn_channels=64, representation_size=256, device="cuda", seed=0)
    det.fit([im for im, _ in train], [t for _, t in train])
    image, truth = make_radio_field((256, 256), n_compact=40, seed=9, **field)
    found = det.predict(image, score_threshold=0.5)
    tiled = det.predict(image, tile=128, overlap=32, score_threshold=0.5)
    bright = np.asarray(truth["snr"]) >= 20
    for table in (found, tiled):
        dist, _ = cKDTree(np.c_[table["x"], table["y"]]).query(np.c_[truth["x"], truth["y"]])
        assert np.mean(dist[bright] < 3) >= 0.9
    # the saved detector reloads on the CPU and finds the same sources
    det.save(tmp_path / "det")
    cpu = Detector.load(tmp_path / "det", device="cpu").predict(image, score_threshold=0.5)
    dist, _ = cKDTree(np.c_[cpu["x"], cpu["y"]]).query(np.c_[found["x"], found["y"]])
    assert abs(len(cpu) - len(found)) <= max(2, 0.1 * len(found))
    assert np.mean(dist < 1) >= 0.9


def test_pipeline_on_the_gpu_matches_the_cpu(tmp_path):
    from astrofmtools.datasets import example_image_path
    from astrofmtools.pipeline import run_pipeline
    gpu = run_pipeline(example_image_path(), tmp_path / "gpu", device="cuda")
    cpu = run_pipeline(example_image_path(), tmp_path / "cpu", device="cpu")
    assert len(gpu.sources) == len(cpu.sources) > 0
    assert np.array_equal(gpu.sources["x"], cpu.sources["x"])
    assert _cosine(gpu.features.features, cpu.features.features).min() > 0.99
    assert np.mean(np.asarray(gpu.sources["label"]) == np.asarray(cpu.sources["label"])) >= 0.8
