"""
FRI/FRII classification of FIRST images (FR-DEEP) with foundation-model backbones.

Macro-F1 on FR-DEEP's own test split for each strategy/head and label
fraction, with the time each took, printed as a table. Run by hand:

    python benchmarks/classify_frdeep.py [--data ../shared/data/frdeep/frdeep_first.npz]
        [--fractions 0.1 0.3 0.5 1.0] [--strategies frozen/linear frozen/mlp ...]
        [--dinov2 ../shared/weights/dinov2_vits14_imgfocus_fp16.safetensors]

FR-DEEP (Tang, Scaife & Leahy 2019): 550 train and 50 test FIRST cutouts,
150x150, background clipped to 0 and scaled to 0-255 by each image's maximum;
0 = FRI, 1 = FRII. The DINOv2 checkpoint in shared/weights is a third-party
DINOv2-architecture ViT-S/14 (see its README), used here only when present.
"""

import argparse
import time
from pathlib import Path

import numpy as np

from _frdeep import add_frdeep_arguments, backbone_weights, load_frdeep

DEFAULT_RUNS = ["frozen/logistic", "frozen/linear", "frozen/mlp", "frozen/whitening",
                "lora/linear", "finetune/linear"]


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_frdeep_arguments(parser)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.3, 0.5, 1.0])
    parser.add_argument("--runs", nargs="+", default=DEFAULT_RUNS,
                        help="strategy/head pairs (default: %(default)s)")
    parser.add_argument("--backbones", nargs="+", default=["efficientnet_lite0", "dinov2_vits14"])
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs of end-to-end strategies (default: the Classifier's)")
    parser.add_argument("--input-size", type=int, default=None,
                        help="model input side (default: the backbone's native size)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="also write the table (ECSV) here")
    args = parser.parse_args()

    from astropy.table import Table
    from astrofmtools.adapt import get_strategy
    from astrofmtools.classify import Classifier
    from astrofmtools.evaluate import classification_metrics

    images, labels, split = load_frdeep(args.data)
    train = split == "train"
    x_train, y_train, x_test, y_test = images[train], labels[train], images[~train], labels[~train]
    print(f"FR-DEEP FIRST: {len(x_train)} train, {len(x_test)} test images of "
          f"{x_train.shape[1]}x{x_train.shape[2]}; classes {sorted(set(y_train))}")
    rows = []
    for backbone in args.backbones:
        weights = backbone_weights(backbone, args.dinov2)
        if weights is False:
            continue
        for run in args.runs:
            strategy, head = run.split("/")
            for fraction in args.fractions:
                options = {}
                if args.epochs is not None and get_strategy(strategy).trains_backbone:
                    options["epochs"] = args.epochs
                if args.input_size is not None:
                    options["preprocess"] = {"input_size": args.input_size}
                clf = Classifier(backbone, head=head, strategy=strategy, weights=weights,
                                 label_fraction=fraction, seed=args.seed, **options)
                t0 = time.perf_counter()
                clf.fit(x_train, y_train)
                fit_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                pred = clf.predict(x_test)
                predict_s = time.perf_counter() - t0
                m = classification_metrics(y_test, np.asarray(pred["label"]))
                rows.append({"backbone": backbone, "strategy": strategy, "head": head,
                             "label_fraction": fraction, "macro_f1": m["macro_f1"],
                             "error": 1 - m["accuracy"], "trainable": clf.n_trainable_,
                             "fit_s": fit_s, "predict_s": predict_s})
                r = rows[-1]
                print(f"{backbone:18s} {strategy:9s} {head:10s} {fraction:5.0%}  "
                      f"macro-F1 {r['macro_f1']:.3f}  error {r['error']:.3f}  "
                      f"trainable {r['trainable']:>9d}  fit {fit_s:7.1f} s  "
                      f"predict {predict_s:5.1f} s", flush=True)
    table = Table(rows)
    for name in ("macro_f1", "error"):
        table[name].format = ".3f"
    for name in ("fit_s", "predict_s"):
        table[name].format = ".1f"
    print()
    table.pprint_all()
    if args.out:
        table.write(args.out, overwrite=True)
        from astrofmtools.evaluate import plot_label_efficiency
        table["strategy"] = [f"{r['backbone']} {r['strategy']}/{r['head']}" for r in table]
        png = str(Path(args.out).with_suffix(".png"))
        plot_label_efficiency(table, path=png, overwrite=True)
        print(f"table: {args.out}; label-efficiency curves: {png}")


if __name__ == "__main__":
    main()
