# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Fine-tuning a pretrained CNN on small batches of cutouts: batch-norm
statistics fixed (what `~astrofmtools.classify.Classifier` does for a
pretrained backbone) against re-estimated on every batch.

Run by hand (never in CI), about 2 minutes on a 2-core CPU::

    python benchmarks/finetune_batchnorm.py [--epochs 4] [--n-per-class 40]

EfficientNet-Lite0 (ImageNet weights, no download) is fine-tuned
(``strategy="finetune"``, one head epoch, batches of 16) on synthetic
compact/extended radio cutouts (`~astrofmtools.datasets.make_radio_cutouts`)
and scored on others. The table shows the validation macro-F1 of each
epoch; the classifier keeps its best epoch, so the test F1 can hide a
collapse that the epoch columns show.
"""

import argparse

import numpy as np


def _batch_stats_strategy():
    """``finetune`` with batch-norm statistics re-estimated on every batch: one registry
    entry (the choice under test), not a patch of the library."""
    from astrofmtools.adapt import Finetune, list_strategies, register_strategy
    if "finetune_batch_stats" not in list_strategies():
        @register_strategy
        class FinetuneBatchStats(Finetune):
            name = "finetune_batch_stats"

            def learns_norm_statistics(self, train_norm_stats):
                return True
    return "finetune_batch_stats"


def run(train, test, epochs, train_stats):
    from sklearn.metrics import f1_score
    from astrofmtools.classify import Classifier
    strategy = _batch_stats_strategy() if train_stats else "finetune"
    clf = Classifier("efficientnet_lite0", strategy=strategy, head="linear",
                     epochs=epochs, head_warmup_epochs=1, batch_size=16, device="cpu",
                     seed=0, cache=False, preprocess={"input_size": 64})
    clf.fit(train, np.asarray(train.table["class"]))
    table = clf.predict(test)
    f1 = f1_score(np.asarray(test.table["class"]), np.asarray(table["label"]),
                  average="macro")
    return list(clf.history_["val_macro_f1"]), f1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--n-per-class", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch
    from astrofmtools.datasets import make_radio_cutouts
    from astrofmtools.utils import set_progress
    torch.set_num_threads(args.threads)
    set_progress(False)
    train = make_radio_cutouts(n_per_class=args.n_per_class, size=32, seed=0)
    test = make_radio_cutouts(n_per_class=30, size=32, seed=1)
    print(f"validation macro-F1 per epoch (epoch 1: head only); test macro-F1 on "
          f"{len(test)} cutouts")
    epochs = "".join(f"{'ep ' + str(e + 1):>7}" for e in range(args.epochs))
    print(f"{'batch-norm statistics':<24}{epochs}   test")
    for label, train_stats in (("fixed (default)", False), ("re-estimated", True)):
        val, f1 = run(train, test, args.epochs, train_stats)
        print(f"{label:<24}" + "".join(f"{v:7.3f}" for v in val) + f"  {f1:.3f}")


if __name__ == "__main__":
    main()
