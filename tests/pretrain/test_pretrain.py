"""Self-supervised pretraining: the loss falls, the momentum network moves, resume is exact,
and the result is a backbone every stage loads by name or path."""

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightly")

from astrofmtools.backbones import (BackboneSpec, get_backbone_spec, load_backbone,  # noqa: E402
                                    register_backbone)
from astrofmtools.backbones import weights as weights_module  # noqa: E402
from astrofmtools.exceptions import InputError  # noqa: E402
from astrofmtools.pretrain import (BYOL, DINO, Pretrainer, SkyViews, knn_error,  # noqa: E402
                                   list_methods)

TINY_VIT = BackboneSpec(
    name="pretrain_tiny_vit", timm_name="vit_tiny_patch16_224", kind="vit", patch_size=8,
    input_size=32, feature_dim=32, licence="none",
    timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 32, "num_heads": 2})

SMALL = {"hidden_dim": 64, "projection_dim": 32}


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No user weights or network; one thread (reproducible and fair to the other tests)."""
    monkeypatch.setenv("ASTROFM_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setattr(weights_module, "_weights_dirs", lambda: [tmp_path / "weights"])
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def radio_pool(n=48, size=32, seed=0):
    """Compact sources and doubles (two lobes), with noise: a pool with two kinds."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    images, kinds = [], []
    for i in range(n):
        d = 0.0 if i % 2 == 0 else rng.uniform(5, 8)
        angle = rng.uniform(0, np.pi)
        dx, dy = d * np.cos(angle), d * np.sin(angle)
        image = (np.exp(-((xx - dx) ** 2 + (yy - dy) ** 2) / 4.0)
                 + np.exp(-((xx + dx) ** 2 + (yy + dy) ** 2) / 4.0))
        images.append(20 * image + rng.normal(size=(size, size)))
        kinds.append("double" if d else "compact")
    return np.array(images, dtype=np.float32), np.array(kinds)


def byol(**kwargs):
    settings = dict(backbone="efficientnet_lite0", method="byol", epochs=2, batch_size=16,
                    input_size=32, method_options=SMALL, device="cpu", warmup_epochs=0,
                    lr=1e-3)
    settings.update(kwargs)
    return Pretrainer(**settings)


def test_methods_are_registry_entries_and_options_are_checked():
    assert {"byol", "dino"} <= set(list_methods())
    with pytest.raises(InputError, match="byol.*dino|dino.*byol"):
        Pretrainer(method="simclr_not_here")
    with pytest.raises(InputError, match="momentum"):
        Pretrainer(method="byol", method_options={"temperature": 0.1})
    with pytest.raises(InputError, match="epochs"):
        Pretrainer(epochs=0)


def test_byol_loss_is_finite_and_falls_and_the_target_moves():
    pool, _ = radio_pool()
    pre = byol(epochs=4, lr=2e-3).fit(pool)
    loss = np.asarray(pre.history_["loss"][1:])
    assert np.all(np.isfinite(loss))
    assert loss[-1] < loss[0] - 0.05, loss  # negative cosine similarity: lower is better
    method = pre.method_
    online = dict(method.backbone.named_parameters())
    target = dict(method.target_backbone.named_parameters())
    start = dict(load_backbone("efficientnet_lite0", device="cpu").named_parameters())
    name = "model.conv_stem.weight"
    moved = (target[name] - start[name]).abs().max().item()
    assert moved > 0  # the moving average followed the online network...
    assert (online[name] - target[name]).abs().max().item() > 0  # ...but lags it
    assert not any(p.requires_grad for p in method.target_backbone.parameters())


def test_resume_from_a_checkpoint_gives_the_uninterrupted_weights(tmp_path):
    pool, _ = radio_pool(n=32)
    straight = byol(epochs=2).fit(pool)
    # an interrupted run: killed right after the checkpoint of its first epoch
    interrupted = byol(epochs=2, checkpoint_dir=tmp_path / "run2")
    from astrofmtools.adapt import TrainLoop
    original = TrainLoop._save_checkpoint

    def stop_after_first(self, epoch):
        original(self, epoch)
        raise KeyboardInterrupt

    TrainLoop._save_checkpoint = stop_after_first
    try:
        with pytest.raises(KeyboardInterrupt):
            interrupted.fit(pool)
    finally:
        TrainLoop._save_checkpoint = original
    resumed = byol(epochs=2, checkpoint_dir=tmp_path / "run2").fit(pool)
    a = straight.backbone_.state_dict()
    b = resumed.backbone_.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert np.allclose(straight.history_["loss"][1:], resumed.history_["loss"][1:])


def test_knn_monitor_is_measured_before_and_during_pretraining():
    pool, kinds = radio_pool(n=40)
    pre = byol(epochs=2, monitor_every=1).fit(pool, monitor=(pool, kinds))
    knn = np.asarray(pre.history_["knn_error"])
    assert len(knn) == 3 and np.all(np.isfinite(knn))
    assert np.all((knn >= 0) & (knn <= 1))
    assert knn[0] <= 0.3  # compact vs double separate in the ImageNet features already
    assert pre.history_["epoch"][0] == 0 and math.isnan(pre.history_["loss"][0])


def test_knn_error_of_separated_and_mixed_classes():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 8))
    y = np.repeat([0, 1], 30)
    shift = np.zeros((60, 8))
    shift[np.arange(60), y] = 6.0  # the classes point in different directions
    assert knn_error(x + shift, y) == 0.0
    assert 0.25 < knn_error(x, y) < 0.75  # no structure: chance


def test_saved_backbone_loads_by_path_and_by_name_into_every_stage(tmp_path):
    from astrofmtools.classify import Classifier
    pool, kinds = radio_pool(n=32)
    pre = byol(epochs=1, lr=1e-4).fit(pool)
    folder = tmp_path / "weights" / "my_radio_byol"
    folder.parent.mkdir()
    spec = pre.save(folder)
    assert spec.name == "my_radio_byol" and spec.input_size == 32
    config = json.loads((folder / "backbone.json").read_text())
    assert config["base"]["name"] == "efficientnet_lite0"
    assert config["pretraining"]["method"] == "byol" and config["n_pool"] == 32
    assert (folder / "history.png").stat().st_size > 1000

    # a fresh process knows nothing of the registration: the name is found in the weights folder
    from astrofmtools.backbones.registry import _REGISTRY
    _REGISTRY.remove("my_radio_byol")
    for reference in ("my_radio_byol", str(folder)):
        loaded = load_backbone(reference, device="cpu")
        saved = pre.backbone_.model.state_dict()
        assert all(torch.equal(saved[k], v) for k, v in loaded.model.state_dict().items())
    assert get_backbone_spec(str(folder)).name == "my_radio_byol"

    clf = Classifier("my_radio_byol", strategy="frozen", head="logistic", device="cpu",
                     tta=False, preprocess={"input_size": 32})
    clf.fit(pool, kinds)
    assert clf.spec_.name == "my_radio_byol"
    assert (clf.predict(pool)["label"] == kinds).mean() > 0.9


@pytest.mark.slow
def test_saved_backbone_trains_a_detector_by_name(tmp_path):
    from astrofmtools.datasets import make_radio_field
    from astrofmtools.detect import Detector
    pool, _ = radio_pool(n=16)
    pre = byol(backbone="resnet18", weights="random", epochs=1, batch_size=8).fit(pool)
    (tmp_path / "weights").mkdir()
    pre.save(tmp_path / "weights" / "my_resnet_byol")
    image, truth = make_radio_field((96, 96), n_compact=6, seed=1, beam_fwhm=3.0)
    det = Detector("my_resnet_byol", epochs=1, batch_size=1, crop_size=96, fpn_channels=32,
                   representation_size=64, device="cpu")
    det.fit([image], [truth])
    assert det.spec_.name == "my_resnet_byol"
    assert "my_resnet_byol" in det.weights_source_


def test_dino_on_a_vision_transformer_gives_a_finite_loss():
    register_backbone(TINY_VIT, overwrite=True)
    pool, _ = radio_pool(n=32)
    pre = Pretrainer("pretrain_tiny_vit", method="dino", weights="random", epochs=2,
                     batch_size=16, input_size=32, device="cpu", warmup_epochs=1,
                     method_options={"output_dim": 64, "hidden_dim": 64,
                                     "bottleneck_dim": 16}).fit(pool)
    loss = np.asarray(pre.history_["loss"][1:])
    assert np.all(np.isfinite(loss)) and np.all(loss > 0)
    assert isinstance(pre.method_, DINO)
    center = pre.method_.criterion.center
    assert float(center.abs().sum()) > 0  # the teacher's centre was updated


def test_views_differ_and_keep_the_flux_scale():
    images = torch.zeros(8, 3, 32, 32)
    images[:, :, 12:20, 12:20] = 1.0
    views = SkyViews(blur_probability=1.0)(images, torch.Generator().manual_seed(0))
    assert len(views) == 2 and not torch.equal(views[0], views[1])
    for view in views:
        assert float(view.max()) <= 1.0 + 1e-6 and float(view.min()) >= -1e-6
        # the source stays near the centre (rotation and an 80-100 % crop)
        mass = view[:, 0].sum(dim=(1, 2))
        assert torch.all(mass > 0.5 * 64)
    with pytest.raises(InputError, match="n_views"):
        SkyViews(n_views=1)


def test_byol_is_a_method_class_with_lightly_parts():
    backbone = load_backbone("efficientnet_lite0", device="cpu")
    method = BYOL(backbone, **SMALL)
    assert type(method.criterion).__module__.startswith("lightly")
    assert type(method.projection).__module__.startswith("lightly")


@pytest.mark.slow
def test_two_processes_under_torchrun_match_one(tmp_path):
    """DDP on the CPU (Gloo): two processes, each half of every batch, train the same model."""
    script = tmp_path / "ddp.py"
    script.write_text(textwrap.dedent(f"""
        import numpy as np, torch, sys, os
        sys.path.insert(0, {str(os.path.dirname(__file__))!r})
        from test_pretrain import radio_pool, SMALL
        from astrofmtools.pretrain import Pretrainer
        torch.set_num_threads(1)
        pool, _ = radio_pool(n=32)
        pre = Pretrainer("resnet18", weights="random", epochs=1, batch_size=16,
                         input_size=32, method_options=SMALL, device="cpu",
                         warmup_epochs=0).fit(pool)
        if pre.rank_ == 0:
            pre.save("ddp_backbone")
            print("world", pre.world_, "loss", float(pre.history_["loss"][-1]))
    """))
    env = {**os.environ, "ASTROFM_WEIGHTS": str(tmp_path / "weights"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
                           "2", "--master_port", "29517", str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "world 2" in done.stdout
    loss = float(done.stdout.split("loss")[-1])
    assert math.isfinite(loss)
    loaded = load_backbone(str(tmp_path / "ddp_backbone"), device="cpu")
    assert loaded.spec.name == "ddp_backbone"
