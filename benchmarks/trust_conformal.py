# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Calibration and conformal coverage of a Classifier on real data: FR-DEEP (radio,
FRI/FRII) and Galaxy Zoo 1 (optical, four classes).

Run by hand (never in CI), a few minutes on a 2-core CPU::

    python benchmarks/trust_conformal.py --data frdeep
    python benchmarks/trust_conformal.py --data gz1

Only training data is used: FR-DEEP's train split (its 50-image test split
is never touched); for GZ1 every image (the two spiral directions merged,
since flips erase handedness; "don't know" dropped). Half of the images
(stratified) train an EfficientNet-Lite0 frozen-feature linear head (three
seeds); the other half is split at random 20 times into calibration and test
halves. The table gives the expected calibration error before and after
temperature scaling (fitted on the classifier's own validation split) and,
for each conformal method and alpha, the coverage and mean set size, mean ±
std over seeds and splits.
"""

import argparse
import time
from pathlib import Path

import numpy as np

_SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def load(name):
    """(images, labels) of the training data of a set."""
    if name == "frdeep":
        from _frdeep import DEFAULT_DATA, load_frdeep
        images, labels, split = load_frdeep(DEFAULT_DATA)
        return images[split == "train"], labels[split == "train"]
    import csv
    from PIL import Image
    rows = list(csv.DictReader(open(_SHARED / "gz1" / "labels.csv")))
    rows = [r for r in rows if r["class_name"] != "dont_know"]
    names = np.array([r["class_name"].replace("_clockwise", "").replace("_anticlockwise", "")
                      for r in rows])
    images = np.stack([np.asarray(Image.open(_SHARED / "gz1" / "images" / f"{r['objid']}.jpeg")
                                  .convert("RGB"), dtype=np.float32) for r in rows])
    return images, names


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--data", choices=["frdeep", "gz1"], default="frdeep")
    parser.add_argument("--splits", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch
    from astrofmtools.classify import Classifier
    from astrofmtools.classify.train import train_val_split
    from astrofmtools.trust import (calibrate_conformal, coverage, expected_calibration_error,
                                    mean_set_size, prediction_sets)
    from astrofmtools.utils import set_progress
    torch.set_num_threads(args.threads)
    set_progress(False)
    t0 = time.perf_counter()
    images, labels = load(args.data)
    classes, y = np.unique(labels, return_inverse=True)
    print(f"{args.data}: {len(y)} images, classes {dict(zip(classes, np.bincount(y)))}")
    train, pool = train_val_split(y, 0.5, seed=0)
    rows = {}
    for seed in range(args.seeds):
        clf = Classifier("efficientnet_lite0", head="linear", tta=False, seed=seed,
                         device="cpu").fit(images[train], labels[train])
        proba = clf.predict_proba(images[pool])
        temperature, clf.temperature_ = clf.temperature_, 1.0
        raw = clf.predict_proba(images[pool])
        truth = y[pool]
        rows.setdefault("ECE, temperature 1", []).append(expected_calibration_error(raw, truth))
        rows.setdefault("ECE, temperature scaled", []).append(
            expected_calibration_error(proba, truth))
        rows.setdefault("temperature", []).append(temperature)
        rows.setdefault("accuracy", []).append(float(np.mean(proba.argmax(1) == truth)))
        for split in range(args.splits):
            cal, test = train_val_split(truth, 0.5, seed=1000 * seed + split)
            for method, mondrian in (("lac", False), ("aps", False), ("aps", True)):
                state = calibrate_conformal(proba[cal], truth[cal], method=method,
                                            mondrian=mondrian)
                for alpha in (0.1, 0.05):
                    sets = prediction_sets(proba[test], state, alpha)
                    name = f"{method}{' mondrian' if mondrian else ''} alpha={alpha}"
                    rows.setdefault(f"coverage {name}", []).append(coverage(sets, truth[test]))
                    rows.setdefault(f"set size {name}", []).append(mean_set_size(sets))
                    if mondrian:
                        worst = min(coverage(sets[truth[test] == k], truth[test][truth[test] == k])
                                    for k in np.unique(truth[test]))
                        rows.setdefault(f"worst-class coverage {name}", []).append(worst)
    print(f"{'quantity':45s} {'mean':>8s} {'std':>8s}   n")
    for name, values in rows.items():
        print(f"{name:45s} {np.mean(values):8.4f} {np.std(values):8.4f} {len(values):3d}")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
