# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Strategies come from one registry that the Classifier, the Detector and the command line
share: BitFit, added as one file, trains in all three."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from astrofmtools import InputError  # noqa: E402
from astrofmtools.adapt import (Strategy, TrainSettings, get_strategy,  # noqa: E402
                                list_strategies, register_strategy)
from astrofmtools.backbones import BackboneSpec, load_backbone  # noqa: E402
from astrofmtools.classify import Classifier  # noqa: E402
from astrofmtools.datasets import make_radio_field  # noqa: E402
from astrofmtools.detect import Detector  # noqa: E402

TINY_VIT = BackboneSpec(
    name="vit_tiny_strategies", timm_name="vit_tiny_patch16_224", patch_size=8, input_size=32,
    feature_dim=32, licence="none",
    timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 32, "num_heads": 2,
                 "dynamic_img_size": True})
TINY_CNN = BackboneSpec(
    name="resnet_tiny_strategies", timm_name="resnet18", kind="cnn", patch_size=32,
    input_size=32, feature_dim=512, licence="none", timm_kwargs={"layers": (1, 1, 1, 1)})


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def doubles(n, seed):
    """Compact sources (0) and doubles (1) in noise: a task with a known answer."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:24, :24] - 11.5
    labels = np.arange(n) % 2
    images = []
    for label in labels:
        d = rng.uniform(4, 7) * label
        a = rng.uniform(0, np.pi)
        image = sum(np.exp(-((xx - s * d * np.cos(a)) ** 2 + (yy - s * d * np.sin(a)) ** 2)
                           / 4) for s in (-1, 1))
        images.append(20 * image + rng.normal(size=image.shape))
    return np.array(images, dtype=np.float32), np.where(labels, "double", "compact")


def test_registry_lists_builtins_and_refuses_unknown():
    assert list_strategies()[:5] == ["frozen", "partial", "finetune", "lora", "bitfit"]
    with pytest.raises(InputError, match="Unknown strategy 'full'; choose one of frozen"):
        get_strategy("full")
    with pytest.raises(InputError, match="options: n_blocks"):
        get_strategy("partial", lora_r=2)
    with pytest.raises(InputError, match="Unknown Classifier setting 'epoch'"):
        Classifier(TINY_VIT, epoch=3)
    # each strategy's schedule, and a checked override
    assert get_strategy("frozen").settings().epochs == 200
    assert get_strategy("lora").settings(lr=5e-3).lr == 5e-3
    for bad in ({"epochs": -1}, {"lr": -1}, {"batch_size": 0}, {"layer_decay": 1.5}):
        with pytest.raises(InputError, match=next(iter(bad))):
            Classifier(TINY_VIT, strategy="finetune", **bad)


def test_bitfit_trains_only_biases_and_norms():
    torch.manual_seed(0)
    backbone = load_backbone(TINY_VIT, weights="random")
    strategy = get_strategy("bitfit")
    strategy.configure(backbone)
    trained = {n for n, p in backbone.named_parameters() if p.requires_grad}
    assert trained and all(n.endswith("bias") or ".norm" in n or n.startswith("model.norm")
                           for n in trained)
    assert strategy.n_trainable(backbone) == sum(p.numel() for n, p in
                                                 backbone.named_parameters() if n in trained)
    assert strategy.n_trainable(backbone) < 0.05 * sum(p.numel() for p in backbone.parameters())
    assert set(strategy.saved_state(backbone)) == trained


@pytest.mark.slow
def test_bitfit_classifier_learns_saves_only_its_tensors_and_reloads(tmp_path):
    from safetensors.torch import load_file, save_file
    torch.manual_seed(0)
    base = load_backbone(TINY_VIT, weights="random")
    save_file(base.model.state_dict(), tmp_path / "tiny.safetensors")
    x, y = doubles(160, seed=0)
    x_test, y_test = doubles(60, seed=1)
    clf = Classifier(TINY_VIT, weights=tmp_path / "tiny.safetensors", strategy="bitfit",
                     epochs=4, batch_size=16, head_warmup_epochs=0, tta=False, device="cpu",
                     cache=False)
    clf.fit(x, y)
    assert clf.score(x_test, y_test) >= 0.9
    after = clf.backbone_.state_dict()
    changed = {k for k, v in base.state_dict().items() if not torch.equal(v, after[k])}
    assert changed and all(k.endswith("bias") or "norm" in k for k in changed)
    clf.save(tmp_path / "bitfit")
    config = json.loads((tmp_path / "bitfit" / "config.json").read_text())
    assert config["params"]["strategy"] == "bitfit" and not config["includes_backbone"]
    stored = {k[len("backbone."):] for k in load_file(tmp_path / "bitfit" / "weights.safetensors")
              if k.startswith("backbone.")}
    assert stored == set(get_strategy("bitfit").saved_state(clf.backbone_))
    again = Classifier.load(tmp_path / "bitfit", device="cpu")
    assert np.allclose(again.predict_proba(x_test), clf.predict_proba(x_test), atol=1e-6)


@pytest.mark.parametrize("spec", [TINY_VIT, pytest.param(TINY_CNN, marks=pytest.mark.slow)],
                         ids=["vit", "cnn"])
def test_bitfit_detector_trains_biases_only_and_reloads(spec, tmp_path):
    image, truth = make_radio_field((96, 96), n_compact=8, n_extended=0, n_artefacts=0,
                                    snr_range=(30, 100), seed=2)
    torch.manual_seed(0)
    det = Detector(spec, strategy="bitfit", weights="random", epochs=1, batch_size=2,
                   crop_size=64, fpn_channels=8, representation_size=16, device="cpu")
    torch.manual_seed(0)
    det.fit([image], [truth])
    torch.manual_seed(0)
    reference = Detector._build(det.spec_, "random", ["source"], det.anchor_sizes_,
                                det.aspect_ratios_, 8, 16)
    before = reference.backbone.body.state_dict()
    after = det.model_.backbone.body.state_dict()
    changed = {k for k in after if not torch.equal(before[k], after[k])}
    trainable = set(get_strategy("bitfit").saved_state(det.model_.backbone.body))
    assert changed and changed <= trainable | {k for k in after if "running_" in k
                                               or "num_batches" in k}
    assert not any(k.endswith(("running_mean", "running_var")) for k in changed)
    assert np.isfinite(det.history_["loss"]).all()
    det.save(tmp_path / "det")
    again = Detector.load(tmp_path / "det", device="cpu")
    assert again.strategy == "bitfit"
    assert all(torch.equal(v, det.model_.state_dict()[k])
               for k, v in again.model_.state_dict().items())


def test_lora_detector_keeps_base_weights(tmp_path):
    image, truth = make_radio_field((96, 96), n_compact=8, n_extended=0, n_artefacts=0,
                                    snr_range=(30, 100), seed=3)
    det = Detector(TINY_VIT, strategy="lora", strategy_options={"lora_r": 2}, weights="random",
                   epochs=1, batch_size=2, crop_size=64, fpn_channels=8, representation_size=16,
                   device="cpu", head_warmup_epochs=0).fit([image], [truth])
    body = det.model_.backbone.body
    assert any("lora_B" in n and p.abs().sum() > 0 for n, p in body.named_parameters())
    det.save(tmp_path / "det")
    again = Detector.load(tmp_path / "det", device="cpu")
    assert again.strategy_.config()["lora_r"] == 2
    assert all(torch.equal(v, det.model_.state_dict()[k])
               for k, v in again.model_.state_dict().items())


def test_a_new_strategy_is_one_class_and_works_everywhere(tmp_path):
    """A strategy registered outside the library trains in the Classifier and appears among
    the command line's choices."""
    from astrofmtools.cli.parser import build_parser

    @register_strategy
    class LastBlockOnly(Strategy):
        name = "last_block_test"
        defaults = {"epochs": 2, "lr": 1e-3, "batch_size": 16, "patience": 2,
                    "head_warmup_epochs": 0}

        def trainable_groups(self, backbone):
            return [(0, list(list(backbone.layer_groups())[-1].parameters()))]

    x, y = doubles(40, seed=3)
    clf = Classifier(TINY_VIT, strategy="last_block_test", weights="random", tta=False,
                     device="cpu").fit(x, y)
    last = {id(p) for p in list(clf.backbone_.layer_groups())[-1].parameters()}
    assert clf.n_trainable_ == (sum(p.numel() for p in clf.backbone_.parameters()
                                    if id(p) in last)
                                + sum(p.numel() for p in clf.head_.parameters()))
    assert clf.settings == TrainSettings(epochs=2, lr=1e-3, batch_size=16, patience=2,
                                         head_warmup_epochs=0)
    args = build_parser().parse_args(["train", "c.fits", "--strategy", "last_block_test",
                                      "-o", "m"])
    assert args.strategy == "last_block_test"
