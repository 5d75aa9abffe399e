# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Attention maps of vision transformers: where the CLS token looks in each cutout."""

import numpy as np

from ..exceptions import InputError
from ..utils import check_output_path, is_random_weights, save_figure, weights_note

__all__ = ["attention_maps", "cls_attention", "plot_attention"]

__doctest_requires__ = {("attention_maps", "cls_attention"): ["torch", "timm", "matplotlib"],
                        "plot_attention": ["matplotlib"]}


def _vit_model(backbone):
    """The timm VisionTransformer inside a backbone, checked for what attention maps need."""
    from ..backbones import Backbone
    name = backbone.spec.name if isinstance(backbone, Backbone) else type(backbone).__name__
    if isinstance(backbone, Backbone):
        backbone.family.check_attention(name)  # a CNN: a clear InputError
    model = backbone.model if isinstance(backbone, Backbone) else backbone
    blocks = getattr(model, "blocks", None)
    if blocks is None or not len(blocks) or not hasattr(model, "patch_embed"):
        raise InputError(f"Attention maps need a timm VisionTransformer (with .blocks and "
                         f".patch_embed); {name!r} has none.")
    if getattr(model, "cls_token", None) is None or getattr(model, "num_prefix_tokens", 0) < 1:
        raise InputError(f"Backbone {name!r} has no CLS token (it pools its patch tokens), so "
                         "there is no CLS attention to show.")
    return model, name


def cls_attention(backbone, images, block=-1, renormalize=True):
    """
    Per-head attention of the CLS token to the image patches in one block of a ViT.

    The block's attention probabilities are taken from timm's own
    computation: its attention layer is switched, for this call only, from
    the fused kernel (`torch.nn.functional.scaled_dot_product_attention`,
    which never forms them) to the explicit ``softmax(q k^T / sqrt(d))``
    path, and a hook on its attention dropout (the identity in eval mode)
    reads them. Register and other prefix tokens (``num_prefix_tokens``) are
    left out of the map; any input side that the model accepts works,
    non-square included (models built with ``dynamic_img_size``).

    Parameters
    ----------
    backbone : `~astrofmtools.backbones.Backbone` or timm VisionTransformer
        A ViT with a CLS token.
    images : `torch.Tensor` or array
        (N, C, H, W) normalised images, as `~astrofmtools.backbones.Preprocess`
        makes them.
    block : int, optional
        Which block (default -1: the last).
    renormalize : bool, optional
        Scale each head's map to sum to 1 over the patches. False: the raw
        probabilities, which sum to 1 minus the attention the CLS token pays
        to itself and to register tokens.

    Returns
    -------
    attention : `~numpy.ndarray`
        (N, heads, H / patch, W / patch) float32.

    Examples
    --------
    A small random timm ViT, fed a non-square input:

    >>> import timm
    >>> import torch
    >>> from astrofmtools.embed import cls_attention
    >>> _ = torch.manual_seed(0)
    >>> vit = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2,
    ...                         embed_dim=32, num_heads=4, num_classes=0,
    ...                         dynamic_img_size=True)
    >>> a = cls_attention(vit, torch.randn(2, 3, 32, 48))
    >>> a.shape, a.sum(axis=(2, 3)).round(4).tolist()[0]
    ((2, 4, 4, 6), [1.0, 1.0, 1.0, 1.0])
    """
    import torch
    model, name = _vit_model(backbone)
    x = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images,
                        dtype=torch.float32)
    if x.ndim != 4:
        raise InputError(f"images must be (N, C, H, W), not shape {tuple(x.shape)}.")
    try:
        target = model.blocks[block]
    except IndexError:
        raise InputError(f"block={block} is out of range: {name!r} has {len(model.blocks)} "
                         "blocks.") from None
    attn = getattr(target, "attn", None)
    if attn is None or not hasattr(attn, "fused_attn") or not hasattr(attn, "attn_drop"):
        raise InputError(f"The blocks of {name!r} do not use timm's standard Attention layer "
                         "(with fused_attn and attn_drop); cannot read its attention.")
    device = next(model.parameters()).device
    captured = []
    hook = attn.attn_drop.register_forward_hook(
        lambda module, inputs, output: captured.append(output.detach().float()))
    fused, training = attn.fused_attn, model.training
    attn.fused_attn = False
    model.eval()
    try:
        with torch.inference_mode():
            model.forward_features(x.to(device))
    finally:
        hook.remove()
        attn.fused_attn = fused
        model.train(training)
    if not captured:
        raise InputError(f"The attention of block {block} of {name!r} was not computed.")
    probs = captured[-1]  # (N, heads, T, T)
    prefix = int(model.num_prefix_tokens)
    row = probs[:, :, 0, prefix:]
    h, w = x.shape[-2:]
    feat = getattr(model.patch_embed, "dynamic_feat_size", None)
    grid = feat((h, w)) if feat is not None else model.patch_embed.grid_size
    if grid[0] * grid[1] != row.shape[-1]:
        raise InputError(f"{row.shape[-1]} patch tokens for a {h}x{w} input do not form the "
                         f"{grid[0]}x{grid[1]} patch grid of {name!r}.")
    if renormalize:
        row = row / row.sum(dim=-1, keepdim=True).clamp_min(1e-30)
    return row.reshape(row.shape[0], row.shape[1], *grid).cpu().numpy().astype(np.float32)


def _crops(crop):
    """The list of zooms asked for, and whether one value (not a list) was given."""
    single = isinstance(crop, str) or np.isscalar(crop)
    values = [crop] if single else list(crop)
    if not values:
        raise InputError("crop must be a zoom (>= 1, or 'auto') or a list of them, not empty.")
    return values, single


def attention_maps(cutouts, model="dinov2_vits14", weights=None, crop=1.0, output=None, *,
                   preprocess=None, block=-1, upsample="bilinear", batch_size=32, device=None,
                   overwrite=False):
    """
    Per-head CLS attention of a ViT's last block, upsampled onto each cutout.

    Each cutout is preprocessed as for features
    (`~astrofmtools.backbones.Preprocess`: noise floor, stretch, central
    crop, resize to the model's input), run through the backbone, and the
    attention of the CLS token to every patch is read per head
    (`cls_attention`) and upsampled to the cutout's pixels. Large radio
    cutouts around a small source make ViTs spread their attention over the
    empty background (the source falls inside a few patches); a central
    crop (``crop='auto'``, the zoom at which the median source spans a
    patch) brings it back onto the source. Give several crops, e.g.
    ``crop=[1, 'auto']``, to see them side by side.

    Parameters
    ----------
    cutouts : `~astrofmtools.cutouts.CutoutStack`, str or array
        Raw cutouts (a stack, a cutouts file, or an (N, H, W) /
        (N, C, H, W) array). Take a few: ``stack[:8]``.
    model : str or `~astrofmtools.backbones.Backbone`, optional
        A ViT of the registry (``'dinov2_vits14'``, ``'dino_vitb16'``...) or
        a loaded one.
    weights : str, optional
        Weights file (or ``'random'``) when ``model`` is a name.
    crop : float, 'auto' or list, optional
        The zoom of the central crop (`Preprocess`'s ``zoom``: keep the
        central ``1 / crop`` of each side; 1 = the whole cutout; ``'auto'``
        resolved on all the cutouts), or a list of them.
    output : str or `~pathlib.Path`, optional
        Save a PNG grid (`plot_attention`): a row per cutout; for each crop
        the image the model saw, the mean over heads and each head.
    preprocess : `~astrofmtools.backbones.Preprocess` or dict, optional
        Default: the backbone's (its ``zoom`` is replaced by ``crop``).
    block : int, optional
        The block whose attention is read (default -1: the last).
    upsample : {'bilinear', 'nearest'}, optional
        How the patch grid is brought to the cutout's pixels.
    batch_size : int, optional
        Cutouts per forward pass.
    device : str, optional
        Default: "cuda" when available, else "cpu".
    overwrite : bool, optional
        Replace an existing ``output``.

    Returns
    -------
    maps : `~numpy.ndarray`
        float32 (N, heads, H, W) for one crop, H x W the cutouts' size: the
        attention of each patch (renormalised over the patches, so each
        head's patch values sum to 1) at every pixel it covers. For
        ``crop > 1`` the maps cover the central crop, magnified to H x W (as
        the image in the picture). With a list of crops:
        (n_crops, N, heads, H, W).

    Raises
    ------
    astrofmtools.InputError
        A CNN backbone (no attention), a ViT without a CLS token, or bad
        crops.

    Examples
    --------
    With a tiny random ViT (real pictures need trained weights, such as
    DINOv2's):

    >>> import numpy as np
    >>> from astrofmtools.backbones import BackboneSpec, register_backbone
    >>> from astrofmtools.embed import attention_maps
    >>> _ = register_backbone(BackboneSpec(
    ...     name="vit_attention_example", timm_name="vit_tiny_patch16_224", patch_size=8,
    ...     input_size=32, feature_dim=32, licence="none",
    ...     timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 32,
    ...                  "num_heads": 2, "dynamic_img_size": True}), overwrite=True)
    >>> rng = np.random.default_rng(0)
    >>> cutouts = rng.normal(0, 1e-4, (2, 48, 48))
    >>> cutouts[:, 20:28, 20:28] += 1e-2                     # a compact source
    >>> maps = attention_maps(cutouts, model="vit_attention_example", weights="random",
    ...                       crop=[1, 2], output="attention.png")
    >>> maps.shape                                   # 2 crops, 2 cutouts, 2 heads
    (2, 2, 2, 48, 48)
    """
    import torch
    import torch.nn.functional as F
    from ..backbones import Backbone, Preprocess, default_device, load_backbone
    from ..cutouts import parse_cutouts

    if upsample not in ("bilinear", "nearest"):
        raise InputError(f"upsample must be 'bilinear' or 'nearest', not {upsample!r}.")
    if output is not None:
        check_output_path(output, overwrite)
    values, single = _crops(crop)
    if isinstance(cutouts, str) or hasattr(cutouts, "__fspath__"):
        from ..cutouts import CutoutStack
        cutouts = CutoutStack.read(cutouts)
    data, table = parse_cutouts(cutouts, index_table=False)
    device = default_device(device)
    if isinstance(model, Backbone):
        backbone = model
    else:
        from ..backbones import get_backbone_spec, get_family
        spec = get_backbone_spec(model)
        get_family(spec).check_attention(spec.name)  # before loading any weights
        backbone = load_backbone(spec, weights=weights, device=device)
    _vit_model(backbone)
    if preprocess is None:
        base = backbone.default_preprocess()
    elif isinstance(preprocess, dict):
        base = backbone.default_preprocess(**preprocess)
    elif isinstance(preprocess, Preprocess):
        base = preprocess
    else:
        raise InputError(f"preprocess must be a Preprocess or a dict, not "
                         f"{type(preprocess).__name__}.")
    zooms = [base.replace(zoom=value).resolve_zoom(cutouts) for value in values]
    try:
        batch_size = int(batch_size)
    except (TypeError, ValueError):
        batch_size = 0
    if batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, not {batch_size!r}.")

    h, w = data.shape[-2:]
    backbone.to(device)
    all_maps, all_images = [], []
    for zoom in zooms:
        pre = base.replace(zoom=zoom)
        maps, images = [], []
        for start in range(0, len(data), batch_size):
            arrays = pre.to_array(data[start:start + batch_size])
            tokens = cls_attention(backbone, pre.normalize(arrays), block=block)
            t = torch.from_numpy(tokens)
            kwargs = {"align_corners": False} if upsample == "bilinear" else {}
            maps.append(F.interpolate(t, size=(h, w), mode=upsample, **kwargs).numpy())
            im = torch.from_numpy(arrays.mean(axis=1, keepdims=True))
            images.append(F.interpolate(im, size=(h, w), mode="bilinear", align_corners=False,
                                        antialias=True)[:, 0].numpy())
        all_maps.append(np.concatenate(maps).astype(np.float32))
        all_images.append(np.clip(np.concatenate(images), 0, 1))
    result = np.stack(all_maps)
    if output is not None:
        labels = None
        if table is not None and "id" in table.colnames:
            labels = [f"id {v}" for v in table["id"]]
        titles = [f"crop {z:g}" + (" (auto)" if v == "auto" else "")
                  for z, v in zip(zooms, values)]
        plot_attention(np.stack(all_images), result, output, titles=titles, labels=labels,
                       model=backbone.spec.name, weights=backbone.weights,
                       overwrite=overwrite)
    return result[0] if single else result


def plot_attention(images, maps, path=None, titles=None, labels=None, model=None,
                   overwrite=False, panel_size=1.1, weights=None):
    """
    Draw attention maps: a row per cutout; per crop, the image, the mean over heads, each head.

    Parameters
    ----------
    images : array
        (n_crops, N, H, W) images in [0, 1] (what the model saw), or (N, H, W).
    maps : array
        (n_crops, N, heads, H, W) attention maps (`attention_maps`), or
        (N, heads, H, W). Each panel is scaled to its own maximum.
    path : str or `~pathlib.Path`, optional
        Save the figure to this PNG file.
    titles : list of str, optional
        One per crop, above its columns.
    labels : list of str, optional
        One per cutout (e.g. its id), left of each row.
    model : str, optional
        Backbone name for the figure's title.
    overwrite : bool, optional
        Replace an existing ``path``.
    panel_size : float, optional
        Side of each panel in inches (100 pixels per inch).
    weights : str, optional
        The backbone's weights (``Backbone.weights``): ``'random'`` adds
        "(random weights: not a trained model)" to the title
        (`~astrofmtools.utils.weights_note`), as random attention can look
        like real attention.

    Returns
    -------
    fig : `~matplotlib.figure.Figure`

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.embed import plot_attention
    >>> rng = np.random.default_rng(0)
    >>> fig = plot_attention(rng.random((2, 16, 16)), rng.random((2, 3, 16, 16)),
    ...                      model="dinov2_vits14", weights="random")
    >>> print(fig._suptitle.get_text())
    CLS attention of the last block, dinov2_vits14
    (random weights: not a trained model)
    """
    from matplotlib.figure import Figure
    images = np.asarray(images, dtype=np.float32)
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim == 4:
        maps, images = maps[None], images[None]
    if maps.ndim != 5 or images.shape != maps.shape[:2] + maps.shape[3:]:
        raise InputError(f"images {images.shape} and maps {maps.shape} do not match: expected "
                         "(n_crops, N, H, W) and (n_crops, N, heads, H, W).")
    n_crops, n, heads = maps.shape[:3]
    if n > 64:
        raise InputError(f"{n} cutouts are too many rows for one picture; pass a few "
                         "(e.g. stack[:8]).")
    per_crop = heads + 2
    suptitle = f"CLS attention of the last block, {model}" if model else None
    suptitle = weights_note(suptitle, weights, sep="\n")
    top = 0.45 + (0.3 if suptitle else 0.0)  # inches for the column titles (and suptitle)
    width, height = panel_size * per_crop * n_crops + 0.3, panel_size * n + top
    fig = Figure(figsize=(width, height))
    # fixed margins (inches) instead of a layout engine: fast for hundreds of panels
    axes = fig.subplots(n, per_crop * n_crops, squeeze=False, gridspec_kw=dict(
        left=0.3 / width, right=1 - 0.02 / width, bottom=0.05 / height,
        top=1 - top / height, wspace=0.05, hspace=0.05))
    for c in range(n_crops):
        for i in range(n):
            panels = [(images[c, i], "gray", "image"),
                      (maps[c, i].mean(axis=0), "inferno", "mean of heads")]
            panels += [(maps[c, i, j], "inferno", f"head {j}") for j in range(heads)]
            for p, (panel, cmap, name) in enumerate(panels):
                ax = axes[i, c * per_crop + p]
                vmax = float(panel.max()) if p else 1.0
                ax.imshow(panel, origin="lower", cmap=cmap, vmin=0, vmax=vmax or 1.0,
                          interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    title = name if titles is None or p else f"{titles[c]}\n{name}"
                    ax.set_title(title, fontsize=8)
                if p == 0 and c == 0 and labels is not None:
                    ax.set_ylabel(labels[i], fontsize=8)
    if suptitle:
        # two lines (the random-weights note) in the same 0.3 inch as one
        fig.suptitle(suptitle, fontsize=8 if "\n" in suptitle else 10, y=1 - 0.04 / height,
                     va="top",
                     color="tab:red" if is_random_weights(weights) else "black")
    save_figure(fig, path, overwrite=overwrite)
    return fig
