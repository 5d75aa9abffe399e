# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Self-supervised pretraining on unlabelled radio pools, then FR-DEEP with and without it.

1. BYOL (`astrofmtools.pretrain.Pretrainer`) of EfficientNet-Lite0 (ImageNet start) on an
   unlabelled radio pool: MeerKAT MGCLS extended sources, VLASS cutouts and the FR-DEEP
   FIRST and NVSS *training* images used without their labels (the 50 test images are never
   in the pool). A k-NN monitor on the FR-DEEP FIRST training split (5-fold CV) is printed
   before and during pretraining.
2. FR-DEEP FIRST classification (550 train / 50 test) with the same backbone started from
   ImageNet and from the BYOL weights, at 10 %, 30 % and 100 % of the training labels, over
   several seeds, for a frozen backbone (logistic head) and for end-to-end fine-tuning.
   The test split only reports: nothing is chosen on it.

Prints the tables and writes ``pretrain_frdeep.ecsv``, ``label_efficiency.png`` and the
backbone folder into ``--out``.

    python benchmarks/pretrain_frdeep.py --quick                 # a CPU smoke run (minutes)
    python benchmarks/pretrain_frdeep.py --device cuda --epochs 40 --input-size 128

``--data`` is the shared data folder, or a folder holding ``frdeep_first.npz``,
``frdeep_nvss.npz``, ``mgcls64.npz`` and ``vlass96.npz`` (the packed copies used on a
borrowed GPU).
"""

import argparse
import time
from pathlib import Path

import numpy as np

_SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _find(data, *names):
    for name in names:
        for path in (data / name, *data.glob(f"*/{name}")):
            if path.is_file():
                return path
    return None


def load_pool(data, max_mgcls=None):
    """The unlabelled pool (list of arrays of raw cutouts) and a description of it."""
    from astropy.io import fits
    parts, described = [], []
    for name in ("frdeep_first.npz", "frdeep_nvss.npz"):
        d = np.load(_find(data, name), allow_pickle=False)
        train = d["images"][d["split"].astype(str) == "train"].astype(np.float32)
        parts.append(train)
        described.append(f"{len(train)} {name.split('_')[1].split('.')[0].upper()} "
                         "FR-DEEP training images (no labels)")
    mgcls = _find(data, "mgcls64.npz", "mgcls_extended.npz")
    if mgcls is not None:
        images = np.load(mgcls, allow_pickle=False)["images"]
        if images.shape[-1] != 64:
            import torch
            images = torch.nn.functional.interpolate(
                torch.from_numpy(images).float()[:, None], size=(64, 64),
                mode="area")[:, 0].numpy()
        images = images[:max_mgcls].astype(np.float32)
        parts.append(images)
        described.append(f"{len(images)} MGCLS extended sources")
    vlass = _find(data, "vlass96.npz")
    if vlass is not None:
        images = np.load(vlass, allow_pickle=False)["images"].astype(np.float32)
    else:
        files = sorted((data / "vlass" / "fits").glob("*.fits"))
        images = np.array([_centre(np.squeeze(fits.getdata(f)).astype(np.float32), 96)
                           for f in files])
    if len(images):
        parts.append(np.nan_to_num(images))
        described.append(f"{len(images)} VLASS cutouts")
    return parts, described


def _centre(image, size):
    h, w = image.shape
    y0, x0 = max(0, (h - size) // 2), max(0, (w - size) // 2)
    out = np.zeros((size, size), np.float32)
    crop = image[y0:y0 + size, x0:x0 + size]
    out[:crop.shape[0], :crop.shape[1]] = crop
    return out


def _resized(parts, size):
    """Every part at size x size (area average or bilinear), stacked."""
    import torch
    out = []
    for images in parts:
        x = torch.from_numpy(np.ascontiguousarray(images))[:, None]
        if x.shape[-1] != size:
            x = torch.nn.functional.interpolate(x, size=(size, size), mode="area"
                                                if x.shape[-1] > size else "bilinear")
        out.append(x[:, 0].numpy())
    return np.concatenate(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--data", default=str(_SHARED))
    parser.add_argument("--out", default="pretrain_frdeep_out")
    parser.add_argument("--device", default=None)
    parser.add_argument("--method", default="byol")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--input-size", type=int, default=128)
    parser.add_argument("--pool-size", type=int, default=96,
                        help="side the pool's cutouts are brought to before preprocessing")
    parser.add_argument("--max-mgcls", type=int, default=None)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--fractions", default="0.1,0.3,1.0")
    parser.add_argument("--strategies", default="frozen,finetune")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 2 epochs, 400 MGCLS, 64 px, 1 seed, frozen only")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.max_mgcls, args.input_size, args.seeds = 2, 400, 64, 1
        args.batch_size, args.strategies, args.fractions = 64, "frozen", "0.3,1.0"

    from astropy.table import Table
    from astrofmtools.adapt import get_strategy
    from astrofmtools.classify import Classifier
    from astrofmtools.pretrain import Pretrainer

    data = Path(args.data)
    out = Path(args.out)
    out.mkdir(exist_ok=True)
    first = np.load(_find(data, "frdeep_first.npz"), allow_pickle=False)
    names = np.array([str(c) for c in first["class_names"]])
    images = first["images"].astype(np.float32)
    labels = names[first["labels"]]
    split = first["split"].astype(str)
    train, test = split == "train", split == "test"

    parts, described = load_pool(data, args.max_mgcls)
    pool = _resized(parts, args.pool_size)
    print(f"pool: {len(pool)} cutouts at {args.pool_size} px: " + "; ".join(described))

    t0 = time.perf_counter()
    pre = Pretrainer("efficientnet_lite0", method=args.method, epochs=args.epochs,
                     batch_size=args.batch_size, lr=args.lr, input_size=args.input_size,
                     monitor_every=max(1, args.epochs // 8), device=args.device,
                     warmup_epochs=max(1, args.epochs // 10))
    pre.fit(pool, monitor=(images[train], labels[train]))
    seconds = time.perf_counter() - t0
    folder = out / f"frdeep_{args.method}"
    pre.save(folder, overwrite=True)
    print(f"\n{args.method} pretraining: {args.epochs} epochs in {seconds:.0f} s "
          f"({args.epochs * len(pool) / seconds:.0f} images/s); k-NN error of the FR-DEEP "
          "training split (5-fold CV) by epoch:")
    for row in pre.history_:
        if np.isfinite(row["knn_error"]):
            print(f"  epoch {row['epoch']:3d}  loss {row['loss']:+.3f}  "
                  f"k-NN error {100 * row['knn_error']:.1f} %")

    rows = []
    fractions = [float(f) for f in args.fractions.split(",")]
    for strategy in args.strategies.split(","):
        for init, backbone in (("ImageNet", "efficientnet_lite0"), (args.method, str(folder))):
            for fraction in fractions:
                for seed in range(args.seeds):
                    t = time.perf_counter()
                    # a closed-form head on fixed features; a linear one trained end to end
                    head = "linear" if get_strategy(strategy).trains_backbone else "logistic"
                    clf = Classifier(backbone, strategy=strategy, head=head,
                                     label_fraction=fraction, seed=seed, device=args.device,
                                     preprocess={"input_size": args.input_size})
                    clf.fit(images[train], labels[train])
                    predicted = clf.predict(images[test])["label"]
                    error = float(np.mean(np.asarray(predicted) != labels[test]))
                    rows.append((strategy, init, fraction, clf.n_train_ + clf.n_val_, seed,
                                 error, time.perf_counter() - t))
                    print(f"  {strategy:9s} {init:9s} {fraction:4.0%} seed {seed}: "
                          f"test error {100 * error:.0f} % ({time.perf_counter() - t:.0f} s)",
                          flush=True)
    table = Table(rows=rows, names=("strategy", "init", "fraction", "n_labels", "seed",
                                    "test_error", "seconds"))
    table.meta.update({"pool": described, "pretraining": pre._settings(),
                       "pretraining_seconds": seconds})
    table.write(out / "pretrain_frdeep.ecsv", overwrite=True)

    print(f"\nFR-DEEP FIRST test error (50 images), mean ± std over {args.seeds} seeds, "
          f"EfficientNet-Lite0 at {args.input_size} px:")
    print(f"{'strategy':10s}{'labels':>8s}{'ImageNet':>16s}{args.method:>16s}")
    summary = {}
    for strategy in args.strategies.split(","):
        for fraction in fractions:
            cells = []
            for init in ("ImageNet", args.method):
                sel = ((table["strategy"] == strategy) & (table["init"] == init)
                       & (table["fraction"] == fraction))
                e = 100 * np.asarray(table["test_error"][sel])
                summary[(strategy, init, fraction)] = (e.mean(), e.std(),
                                                       int(np.median(table["n_labels"][sel])))
                cells.append(f"{e.mean():6.1f} ± {e.std():4.1f} %")
            n = summary[(strategy, "ImageNet", fraction)][2]
            print(f"{strategy:10s}{n:8d}{cells[0]:>16s}{cells[1]:>16s}")

    from matplotlib.figure import Figure
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    for strategy in args.strategies.split(","):
        for init, style in (("ImageNet", "o--"), (args.method, "s-")):
            values = [summary[(strategy, init, f)] for f in fractions]
            ax.errorbar([v[2] for v in values], [v[0] for v in values],
                        yerr=[v[1] for v in values], fmt=style, capsize=3,
                        label=f"{strategy}, {init}")
    ax.set_xscale("log")
    ax.set_xlabel("training labels")
    ax.set_ylabel("FR-DEEP test error (%)")
    ax.set_title(f"EfficientNet-Lite0, {args.input_size} px, {args.seeds} seeds")
    ax.legend()
    fig.savefig(out / "label_efficiency.png", dpi=110)


if __name__ == "__main__":
    main()
