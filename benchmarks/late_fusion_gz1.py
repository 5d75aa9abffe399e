# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Late fusion of statmorph morphometrics with frozen EfficientNet-Lite0 features on
Galaxy Zoo 1: macro-F1 of the linear head alone and with the morphometrics.

Run by hand (never in CI)::

    python benchmarks/late_fusion_gz1.py [--folds 5] [--seeds 3] [--out /tmp/astrofm_gz1]

Data: every GZ1 image of ``/work/shared/data/gz1`` (``--data``) but the "don't
know" ones, the two spiral directions merged (flips erase handedness): 3,019
images in four classes (elliptical, edge_on, spiral, merger).

What it does:

1. Reads each 423x423 RGB JPEG and bins it 2x2 (mean; 211x211 px) for the
   classifier: the backbone sees 224 px after the default preprocessing
   either way, and at full size one fold's stack plus the copy that the
   feature cache hashes need about 17 GB.
2. Measures the morphology (`~astrofmtools.morphology.measure_morphology`,
   default settings, no PSF) on the green channel, which is SDSS r in the
   gri colour images, binned 3x3 (141x141 px: the JPEGs are resampled SDSS
   frames, and statmorph's asymmetry centre search takes 3.8 s per image at
   full size, 0.44 s binned), in ``--workers`` processes. The table is
   cached in ``--out`` (``gz1_morphology.ecsv``), so reruns skip this.
   Values are of the JPEGs' asinh-stretched pixels, not of linear flux, so
   they are not comparable with published ones (Sersic indices come out
   low). Values flagged bad (``flag`` > 1, or ``flag_sersic`` > 1 for the
   ``sersic_*`` columns) are set to NaN, so the classifier uses the
   training median for them.
3. Features of all images (cached in ``$ASTROFM_CACHE``); the PCA -
   morphometrics correlation table
   (`~astrofmtools.morphology.feature_morphology_correlation`) is printed
   and its heat map saved to ``--out``.
4. Stratified ``--folds``-fold cross-validation for each of ``--seeds``
   seeds (the seed of the folds and of the Classifier): a
   ``Classifier("efficientnet_lite0", head="linear", tta=False)`` alone and
   with ``extra_columns`` (the morphometrics), on the same folds. The
   feature cache is keyed by the pixels of the exact input, so each fold's
   training and test stacks would be run through the backbone again (4 min
   per fold on 2 cores); the features of a cutout do not depend on the
   others (zoom 1, per-cutout stretch), so the script writes each fold's
   rows of the full feature array into the cache under the key that
   ``extract_features`` computes (``_cache_key``, a private function: if it
   changes, the run is slower, never wrong).

Prints macro-F1 (scikit-learn ``f1_score(average="macro")``) of both, mean ±
std over folds x seeds, the paired difference (fused - alone), and the F1 of
each class and the accuracy. About 15 minutes on 2 cores the first time
(statmorph 10, features 1.5), under 5 when the morphology table and the
features are cached.
"""

import argparse
import csv
import time
from pathlib import Path

import numpy as np

_SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "gz1"

#: The morphometrics appended to the features.
EXTRA_COLUMNS = ["gini", "m20", "concentration", "asymmetry", "smoothness", "sersic_n",
                 "sersic_ellip", "ellipticity_asymmetry"]


def load_gz1(root=_SHARED):
    """
    GZ1 without "don't know", spirals merged: ``(objid, class names, images binned 2x2
    as (N, 3, 211, 211) float32, green channel binned 3x3 as (N, 141, 141) float32)``.
    """
    from PIL import Image
    rows = [r for r in csv.DictReader(open(root / "labels.csv"))
            if r["class_name"] != "dont_know"]
    names = np.array([r["class_name"].replace("_clockwise", "").replace("_anticlockwise", "")
                      for r in rows])
    objid = np.array([int(r["objid"]) for r in rows], dtype=np.int64)
    rgb2, green3 = [], []
    for r in rows:
        image = np.asarray(Image.open(root / "images" / f"{r['objid']}.jpeg").convert("RGB"),
                           dtype=np.float32)
        h, w = (s // 2 * 2 for s in image.shape[:2])
        rgb2.append(image[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
                    .transpose(2, 0, 1))
        g = image[..., 1]
        h, w = (s // 3 * 3 for s in g.shape)
        green3.append(g[:h, :w].reshape(h // 3, 3, w // 3, 3).mean(axis=(1, 3)))
    return objid, names, np.stack(rgb2), np.stack(green3)


def _measure_chunk(images, objid):
    from astropy.table import QTable
    from astrofmtools.cutouts import CutoutStack
    from astrofmtools.morphology import measure_morphology
    from astrofmtools.utils import set_progress
    set_progress(False)
    return measure_morphology(CutoutStack(images, QTable({"objid": objid})))


def gz1_morphology(objid, green, path, workers=2):
    """The morphology table of the green images: read from ``path``, or measured and
    written there."""
    from astropy.table import QTable, vstack
    if path.is_file():
        table = QTable.read(path)
        if len(table) == len(objid) and np.array_equal(np.asarray(table["objid"]), objid):
            print(f"morphology: read {path}")
            return table
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    t0 = time.perf_counter()
    chunks = np.array_split(np.arange(len(objid)), max(1, len(objid) // 100))
    parts = [None] * len(chunks)
    # fork: torch is not imported yet
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = {pool.submit(_measure_chunk, green[c], objid[c]): i
                   for i, c in enumerate(chunks)}
        from concurrent.futures import as_completed
        for done, future in enumerate(as_completed(futures), 1):
            parts[futures[future]] = future.result()
            print(f"morphology: {done}/{len(chunks)} chunks, "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
    table = vstack(parts, metadata_conflicts="silent")
    flags = np.asarray(table["flag"])
    table.meta.update(n_cutouts=len(table), n_failed=int(np.sum(flags == 4)),
                      n_no_source=int(np.sum(flags == 5)),
                      note="GZ1 green channel (SDSS r), JPEG binned 3x3",
                      seconds=round(time.perf_counter() - t0, 1))
    from astrofmtools.cutouts import CUTOUT_COLUMNS
    table.remove_columns([c for c in CUTOUT_COLUMNS if c in table.colnames])
    path.parent.mkdir(parents=True, exist_ok=True)
    table.write(path, overwrite=True)
    print(f"morphology: measured {len(table)} images in {time.perf_counter() - t0:.0f} s, "
          f"wrote {path}")
    return table


def good_values(morph, columns):
    """The morphometrics with values flagged bad set to NaN (the classifier's training
    median stands in for them)."""
    from astropy.table import QTable
    flag = np.asarray(morph["flag"])
    flag_sersic = np.asarray(morph["flag_sersic"])
    out = QTable()
    for name in columns:
        values = np.array(getattr(morph[name], "value", morph[name]), dtype=float)
        bad = flag > 1
        if name.startswith("sersic_"):
            bad |= flag_sersic > 1
        values[bad] = np.nan
        out[name] = values
    return out


def prime_feature_cache(backbone, preprocess, stack, features):
    """Store ``features`` (the stack's rows of the full feature array) in the feature cache
    under the key that ``extract_features`` computes for this stack."""
    import json
    import torch
    from astrofmtools.backbones import feature_cache_dir
    from astrofmtools.backbones.features import _cache_key, _precision
    pre = preprocess.replace(zoom=preprocess.resolve_zoom(stack))
    key, settings = _cache_key(stack.data, backbone, pre, backbone.pooling, False,
                               _precision(torch.device("cpu")))
    path = feature_cache_dir() / key[:2] / f"{key}.npy"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.ascontiguousarray(features, dtype=np.float32), allow_pickle=False)
        path.with_suffix(".json").write_text(json.dumps({**settings, "n": len(stack)}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--data", type=Path, default=_SHARED)
    parser.add_argument("--out", type=Path, default=Path("/tmp/astrofm_gz1"))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="processes for statmorph")
    parser.add_argument("--components", type=int, default=8)
    args = parser.parse_args()
    t_start = time.perf_counter()
    objid, names, images, green = load_gz1(args.data)
    classes, counts = np.unique(names, return_counts=True)
    print(f"GZ1: {len(names)} images, {dict(zip(classes.tolist(), counts.tolist()))}; "
          f"classifier input {images.shape[1:]}, morphology input {green.shape[1:]}")
    morph = gz1_morphology(objid, green, args.out / "gz1_morphology.ecsv", args.workers)
    del green
    flags = np.asarray(morph["flag"])
    print("statmorph flags:", {int(k): int(v) for k, v in zip(*np.unique(flags,
                                                                        return_counts=True))},
          "| flag_sersic:", {int(k): int(v) for k, v in
                             zip(*np.unique(np.asarray(morph["flag_sersic"]),
                                            return_counts=True))})

    import torch
    from astropy.table import QTable, hstack
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold
    from astrofmtools.backbones import extract_features, load_backbone
    from astrofmtools.classify import Classifier
    from astrofmtools.cutouts import CutoutStack
    from astrofmtools.morphology import (feature_morphology_correlation,
                                         plot_feature_morphology_correlation)
    from astrofmtools.utils import set_progress
    torch.set_num_threads(args.threads)
    set_progress(False)

    values = good_values(morph, EXTRA_COLUMNS)
    print("values set to NaN (flagged bad or failed):",
          {c: int(np.sum(np.isnan(values[c]))) for c in EXTRA_COLUMNS})
    stack = CutoutStack(images, hstack([QTable({"objid": objid, "class_name": names}),
                                        values]))
    del images
    t0 = time.perf_counter()
    backbone = load_backbone("efficientnet_lite0", device="cpu")
    preprocess = backbone.default_preprocess()
    features = extract_features(backbone, stack, preprocess=preprocess, device="cpu",
                                pooling=None, tta=False)
    print(f"features {features.shape} in {time.perf_counter() - t0:.0f} s")

    corr = feature_morphology_correlation(features, morph, columns=EXTRA_COLUMNS,
                                          n_components=args.components)
    print(f"\nSpearman rho of the first {len(corr)} principal components of the standardised "
          f"features with the morphometrics ({corr.meta['n_rows']} images with flag <= 1):")
    for name in corr.colnames[1:]:
        corr[name].info.format = ".2f"
    corr.pprint(max_width=200, max_lines=-1)
    ax = plot_feature_morphology_correlation(corr)
    png = args.out / "gz1_pca_morphology.png"
    from astrofmtools.utils import save_figure
    save_figure(ax.figure, png, overwrite=True)
    print(f"heat map: {png}")

    scores, per_class, accuracy = ({"alone": [], "fused": []} for _ in range(3))
    for seed in range(args.seeds):
        folds = StratifiedKFold(args.folds, shuffle=True, random_state=seed)
        for fold, (train, test) in enumerate(folds.split(names, names)):
            t0 = time.perf_counter()
            train_stack, test_stack = stack[train], stack[test]
            prime_feature_cache(backbone, preprocess, train_stack, features[train])
            prime_feature_cache(backbone, preprocess, test_stack, features[test])
            line = []
            for mode, extra in (("alone", None), ("fused", EXTRA_COLUMNS)):
                clf = Classifier("efficientnet_lite0", head="linear", tta=False, seed=seed,
                                 device="cpu", extra_columns=extra)
                clf.fit(train_stack, names[train])
                predicted = clf.classes_[clf.predict_proba(test_stack).argmax(axis=1)]
                scores[mode].append(f1_score(names[test], predicted, average="macro"))
                per_class[mode].append(f1_score(names[test], predicted, labels=classes,
                                                average=None))
                accuracy[mode].append(np.mean(predicted == names[test]))
                line.append(f"{mode} {scores[mode][-1]:.4f} ({clf.fit_seconds_:.0f} s fit)")
            print(f"seed {seed} fold {fold}: {', '.join(line)}, "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)

    alone, fused = np.array(scores["alone"]), np.array(scores["fused"])
    diff = fused - alone
    n = len(diff)
    print(f"\nmacro-F1, stratified {args.folds}-fold CV x {args.seeds} seeds "
          f"(mean ± std over {n} folds):")
    print(f"{'model':52s} {'mean':>7s} {'std':>7s}")
    print(f"{'EfficientNet-Lite0 frozen + linear head':52s} {alone.mean():7.4f} "
          f"{alone.std(ddof=1):7.4f}")
    print(f"{'  + morphometrics (extra_columns)':52s} {fused.mean():7.4f} "
          f"{fused.std(ddof=1):7.4f}")
    print(f"{'paired difference (fused - alone)':52s} {diff.mean():+7.4f} "
          f"{diff.std(ddof=1):7.4f}   fused better in {int(np.sum(diff > 0))}/{n}")
    print(f"extra columns: {', '.join(EXTRA_COLUMNS)}")
    print("\nper class (mean F1 over the folds) and accuracy:")
    print(f"{'model':8s} " + " ".join(f"{c:>10s}" for c in classes) + f" {'accuracy':>10s}")
    for mode in ("alone", "fused"):
        print(f"{mode:8s} " + " ".join(f"{v:10.4f}" for v in np.mean(per_class[mode], axis=0))
              + f" {np.mean(accuracy[mode]):10.4f}")
    print(f"({time.perf_counter() - t_start:.0f} s)")


if __name__ == "__main__":
    main()
