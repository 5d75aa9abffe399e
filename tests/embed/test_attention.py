# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Tests of astrofmtools.embed attention maps (tiny random ViTs; no downloads)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")
pytest.importorskip("matplotlib")

from astrofmtools import InputError  # noqa: E402
from astrofmtools.backbones import BackboneSpec, load_backbone, register_backbone  # noqa: E402
from astrofmtools.cli import main  # noqa: E402
from astrofmtools.cutouts import CutoutStack  # noqa: E402
from astrofmtools.embed import attention_maps, cls_attention  # noqa: E402

torch.set_num_threads(1)

TINY = dict(img_size=32, patch_size=8, depth=2, embed_dim=32, num_heads=4,
            dynamic_img_size=True)


def _spec(name, **extra):
    return register_backbone(BackboneSpec(
        name=name, timm_name="vit_tiny_patch16_224", patch_size=8, input_size=32,
        feature_dim=32, licence="none", timm_kwargs={**TINY, **extra}), overwrite=True)


@pytest.fixture(scope="module")
def vit():
    _spec("test_attention_vit")
    torch.manual_seed(0)
    return load_backbone("test_attention_vit", weights="random", device="cpu")


def manual_attention(model, x, block=-1):
    """Softmax(q k^T * scale) of a block, recomputed from its qkv on the normed input."""
    attn = model.blocks[block].attn
    seen = []
    hook = attn.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach()))
    try:
        with torch.no_grad():
            model.forward_features(x)
    finally:
        hook.remove()
    tokens = seen[-1]
    b, n, c = tokens.shape
    with torch.no_grad():
        qkv = attn.qkv(tokens).reshape(b, n, 3, attn.num_heads, attn.head_dim)
        q, k, _ = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        q, k = attn.q_norm(q), attn.k_norm(k)
        return ((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1).numpy()


def test_cls_attention_equals_recomputation_from_qkv(vit):
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    raw = cls_attention(vit, x, renormalize=False)
    full = manual_attention(vit.model, x)
    assert raw.shape == (3, 4, 4, 4)
    np.testing.assert_allclose(full.sum(axis=-1), 1, atol=1e-5)   # every row of softmax
    np.testing.assert_allclose(raw.reshape(3, 4, 16), full[:, :, 0, 1:], atol=1e-6)
    maps = cls_attention(vit, x)
    np.testing.assert_allclose(maps.sum(axis=(2, 3)), 1, atol=1e-5)
    np.testing.assert_allclose(maps, raw / raw.sum(axis=(2, 3), keepdims=True), rtol=1e-5)
    # the model is left as it was: fused attention back on, and the same features
    assert vit.model.blocks[-1].attn.fused_attn == timm.layers.use_fused_attn()
    # an earlier block
    first = cls_attention(vit, x, block=0, renormalize=False)
    np.testing.assert_allclose(first.reshape(3, 4, 16),
                               manual_attention(vit.model, x, block=0)[:, :, 0, 1:], atol=1e-6)
    with pytest.raises(InputError, match="out of range"):
        cls_attention(vit, x, block=5)


def test_register_tokens_and_non_square_inputs():
    torch.manual_seed(2)
    model = timm.create_model("vit_tiny_patch16_224", num_classes=0, reg_tokens=4, **TINY)
    assert model.num_prefix_tokens == 5
    x = torch.randn(2, 3, 24, 40)
    raw = cls_attention(model, x, renormalize=False)
    assert raw.shape == (2, 4, 3, 5)
    full = manual_attention(model, x)
    np.testing.assert_allclose(raw.reshape(2, 4, 15), full[:, :, 0, 5:], atol=1e-6)
    # what the CLS token pays to itself and the registers is left out
    assert np.all(raw.sum(axis=(2, 3)) < 1 - 1e-4)


def test_a_bright_patch_draws_attention(vit):
    blank = torch.zeros(1, 3, 32, 32)
    bright = blank.clone()
    bright[:, :, 16:24, 8:16] = 8.0          # patch (row 2, column 1) of the 4x4 grid
    diff = np.abs(cls_attention(vit, bright)[0] - cls_attention(vit, blank)[0])
    for head in diff:
        assert np.unravel_index(head.argmax(), head.shape) == (2, 1)


def test_maps_shapes_crops_and_picture(vit, tmp_path):
    from matplotlib.image import imread
    rng = np.random.default_rng(0)
    cutouts = rng.normal(0, 1e-4, (3, 40, 40))
    cutouts[:, 18:22, 18:22] += 1e-2
    maps = attention_maps(cutouts, model=vit)
    assert maps.shape == (3, 4, 40, 40) and maps.dtype == np.float32
    # each head's patch values sum to 1: the mean of the map is 1 / (number of patches)
    np.testing.assert_allclose(maps.mean(axis=(2, 3)), 1 / 16, rtol=0.05)
    both = attention_maps(cutouts, model=vit, crop=[1, 2], upsample="nearest",
                          output=tmp_path / "attention.png")
    assert both.shape == (2, 3, 4, 40, 40)
    np.testing.assert_allclose(both[:, :, :, ::10, ::10].sum(axis=(3, 4)), 1, rtol=1e-5)
    assert not np.allclose(both[0], both[1])           # the crop changes what is seen
    png = imread(tmp_path / "attention.png")
    # 2 crops x (image + mean + 4 heads) panels of 110 px, 3 rows + titles
    assert png.shape[1] == round(2 * 6 * 110 + 30) and png.shape[0] == 3 * 110 + 75
    assert png[..., :3].std() > 0.05
    with pytest.raises(InputError, match="crop"):
        attention_maps(cutouts, model=vit, crop=[])
    with pytest.raises(InputError, match="zoom must be >= 1"):
        attention_maps(cutouts, model=vit, crop=0.5)


def test_cnn_and_cls_free_models_are_refused():
    with pytest.raises(InputError, match="'resnet18' is a CNN"):
        attention_maps(np.zeros((1, 32, 32)), model="resnet18", weights="random")
    cnn = load_backbone("resnet18", weights="random", device="cpu")
    with pytest.raises(InputError, match="is a CNN"):
        attention_maps(np.zeros((1, 32, 32)), model=cnn)
    no_cls = timm.create_model("vit_tiny_patch16_224", num_classes=0, class_token=False,
                               global_pool="avg", **TINY)
    with pytest.raises(InputError, match="no CLS token"):
        cls_attention(no_cls, torch.zeros(1, 3, 32, 32))


def test_cli(vit, tmp_path, capsys):
    rng = np.random.default_rng(3)
    CutoutStack(rng.normal(size=(5, 32, 32))).write(tmp_path / "cutouts.fits")
    args = ["attention", str(tmp_path / "cutouts.fits"), "--model", "test_attention_vit",
            "--weights", "random", "--rows", "1:3", "--crop", "1", "--crop", "auto"]
    assert main(args + ["-o", str(tmp_path / "a.png"), "-q"]) == 0
    assert (tmp_path / "a.png").stat().st_size > 1000
    capsys.readouterr()
    assert main(args[:6] + ["--rows", "7", "-o", str(tmp_path / "b.png")]) == 2
    assert "of 5 cutouts" in capsys.readouterr().err
    assert main(["attention", str(tmp_path / "cutouts.fits"), "--model", "resnet18",
                 "--weights", "random", "-o", str(tmp_path / "c.png")]) == 2
    assert "is a CNN" in capsys.readouterr().err
