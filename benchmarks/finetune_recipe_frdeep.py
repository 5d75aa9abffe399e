# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Which fine-tuning recipe: cross-validation on the FR-DEEP FIRST training split.

Each recipe is a set of `~astrofmtools.classify.Classifier` settings of an
end-to-end strategy (``finetune`` by default) on EfficientNet-Lite0
(ImageNet). The 550 training images are cut into stratified folds; every
(recipe, seed, fold) trains on the other folds with the classifier's own
validation split and scores the held-out fold. The FR-DEEP test split is
never read. Prints one row per recipe: macro-F1 and error (mean ± std over
folds x seeds) and the mean seconds of one fit.

Run on a CPU at a reduced input size (``--input-size 64``); the ranking, not
the absolute error, is what carries over to 224 px on a GPU.
"""

import argparse
import time

import numpy as np

from _frdeep import DEFAULT_DATA, load_frdeep

#: The candidate recipes: Classifier keyword arguments on top of ``--strategy``.
#: ``old``: the defaults before issue 18 (early stopping on the validation loss,
#: best epoch kept, backbone lr 1e-4, head lr 1e-3). ``full_ls`` won (64 px, 10
#: epochs) and is the end-to-end strategies' default since; ``new`` runs the
#: current defaults as they are.
RECIPES = {
    "old": dict(keep_best=True, patience=8, lr=1e-4, head_lr=None, label_smoothing=0.0),
    "full": dict(keep_best=False, lr=1e-4, head_lr=None, label_smoothing=0.0),
    "full_lr": dict(keep_best=False, lr=5e-4, head_lr=3e-3, label_smoothing=0.0),
    "full_lr_ls": dict(keep_best=False, lr=5e-4, head_lr=3e-3, label_smoothing=0.1),
    "full_ls": dict(keep_best=False, lr=1e-4, head_lr=None, label_smoothing=0.1),
    "new": dict(),  # whatever the strategy's defaults are now
}


def run(recipe, x, y, folds, seed, args):
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    from astrofmtools.classify import Classifier

    out = []
    split = StratifiedKFold(folds, shuffle=True, random_state=1000 + seed)
    for train, test in split.split(x, y):
        options = {k: v for k, v in RECIPES[recipe].items() if v is not None}
        if args.epochs:
            options["epochs"] = args.epochs
        clf = Classifier(args.backbone, strategy=args.strategy, seed=seed, device="cpu",
                         preprocess={"input_size": args.input_size, "zoom": args.zoom},
                         tta=False, cache=False, temperature_scaling=False, **options)
        t0 = time.perf_counter()
        clf.fit(x[train], y[train])
        seconds = time.perf_counter() - t0
        pred = clf.classes_[clf.predict_proba(x[test]).argmax(1)]
        out.append((f1_score(y[test], pred, average="macro"), float(np.mean(pred != y[test])),
                    seconds, len(clf.history_)))
        print(f"  {recipe} seed {seed} fold {len(out)}: F1 {out[-1][0]:.3f} error {out[-1][1]:.3f} "
              f"{seconds:.0f} s, {out[-1][3]} epochs", flush=True)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--recipes", nargs="+", default=["old", "full", "full_ls", "full_lr_ls"],
                        choices=list(RECIPES))
    parser.add_argument("--strategy", default="finetune")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--zoom", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs of every recipe (default: the strategy's)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    images, labels, split = load_frdeep(args.data)
    x, y = images[split == "train"], labels[split == "train"]  # the test split: never
    scores = {recipe: [] for recipe in args.recipes}
    for seed in args.seeds:  # seed by seed: an interrupted run compares like with like
        for recipe in args.recipes:
            scores[recipe] += run(recipe, x, y, args.folds, seed, args)
    rows = []
    for recipe in args.recipes:
        f1, err, sec, n_epochs = (np.array(c) for c in zip(*scores[recipe]))
        rows.append((recipe, f1, err, sec, n_epochs))
    print(f"\n{args.strategy}, {args.backbone}, {args.input_size} px, zoom {args.zoom:g}, "
          f"{args.folds}-fold x {len(args.seeds)} seeds on {len(y)} FR-DEEP training images")
    print(f"{'recipe':<12} {'macro-F1':>15} {'error %':>13} {'epochs':>7} {'s/fit':>6}")
    for recipe, f1, err, sec, n_epochs in rows:
        print(f"{recipe:<12} {f1.mean():.3f} ± {f1.std():.3f}   {100 * err.mean():4.1f} ± "
              f"{100 * err.std():3.1f} {n_epochs.mean():7.1f} {sec.mean():6.0f}")


if __name__ == "__main__":
    main()
