# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Throughput of the data paths against the bare model: features and fine-tuning.

Run by hand (never in CI)::

    python benchmarks/throughput.py [--device cuda|cpu] [--n 8192] [--size 64]
        [--input-size 224] [--batch 256] [--model efficientnet_lite0]

On synthetic radio cutouts (noise, one to three Gaussian sources, some
blanked pixels), one table:

- preprocessing alone: `Preprocess` with NumPy on the CPU (``to_array`` +
  ``normalize``, what `extract_features` did before) and in torch on the
  device (``to_tensor``);
- features/s of `extract_features` (``cache=False``) with each, against the
  bare forward of the same backbone on ready device tensors (same autocast,
  channels-last and ``inference_mode`` as `extract_features`), and their ratio;
- training images/s of one fine-tuning epoch through the library's loop
  (`TrainLoop`, `SupervisedTask` copying [0, 1] CPU images to the device,
  `SkyAugment` on the device, backbone + linear head, AdamW, the loop's
  autocast), against bare forward + backward + AdamW steps on ready device
  tensors, and their ratio.

``extract_features`` runs on ``--n`` cutouts. To keep the CPU run short, the
other rows use fewer on the CPU: ``n // 4`` for the NumPy and bare-forward
rows and ``n // 32`` training images (on a GPU: 2048 for the NumPy rows, ``n``
for the bare forward and ``n // 4`` for training), in batches of
``--train-batch``. About 2 minutes on a 2-core CPU with ``--n 512``; on a GPU
the defaults take well under a minute.
"""

import argparse
import time

import numpy as np


def radio_cutouts(n, size, seed=0):
    """float32 (n, size, size): beam-scale noise plus one to three Gaussian sources."""
    rng = np.random.default_rng(seed)
    noise = 1e-4
    data = rng.normal(0.0, noise, (n, size, size)).astype(np.float32)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    n_sources = rng.integers(1, 4, n)
    for k in range(3):
        cx, cy = (rng.uniform(0.3 * size, 0.7 * size, n).astype(np.float32) for _ in range(2))
        sigma = rng.uniform(1.0, size / 8, n).astype(np.float32)
        peak = (noise * 10 ** rng.uniform(np.log10(5), np.log10(500), n)).astype(np.float32)
        peak[n_sources <= k] = 0
        r2 = (xx[None] - cx[:, None, None]) ** 2 + (yy[None] - cy[:, None, None]) ** 2
        data += peak[:, None, None] * np.exp(-r2 / (2 * sigma[:, None, None] ** 2))
    blank = rng.random(n) < 0.02
    data[blank, :, : size // 8] = np.nan  # survey edges
    return data


def _sync(device):
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device):
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def _numpy_preprocess(pre):
    """The same settings, kept on the NumPy path (as before the tensor path)."""
    from astrofmtools.backbones import Preprocess

    class NumpyPreprocess(Preprocess):
        tensor_supported = False

    return NumpyPreprocess(**{k: v for k, v in vars(pre).items()})


def _warm_up(device, batch):
    """Images for a warm-up call: the whole batch on CUDA (cuDNN picks its kernels per
    shape), two on the CPU (nothing to tune; a batch would take seconds)."""
    return batch if device.type == "cuda" else 2


def bare_forward(backbone, x, n, device):
    """Seconds of ``n`` images through the backbone as `extract_features` runs it."""
    import torch
    from astrofmtools.backbones.features import _precision
    backbone.to(device).eval()
    fmt = torch.channels_last if backbone.family.channels_last else torch.contiguous_format
    backbone.to(memory_format=fmt)
    x = x.contiguous(memory_format=fmt)
    amp = _precision(device)
    steps = max(1, n // len(x))
    try:
        with torch.inference_mode(), torch.autocast(device.type, dtype=amp,
                                                    enabled=amp != torch.float32):
            backbone(x[:_warm_up(device, len(x))]).float()

            def run():
                for _ in range(steps):
                    backbone(x).float()

            return _timed(run, device), steps * len(x)
    finally:
        backbone.to(memory_format=torch.contiguous_format)


def training(backbone, pre, images, batch, device, loop):
    """Images/s of fine-tuning: the library's loop (``loop=True``) or bare steps."""
    import torch
    from astrofmtools.adapt import SupervisedTask, TrainLoop, get_strategy
    from astrofmtools.adapt.loop import autocast
    from astrofmtools.classify import ClassifierModel, SkyAugment
    head = torch.nn.Linear(backbone.feature_dim_for(backbone.pooling), 2)
    model = ClassifierModel(backbone, head, backbone.pooling, pre.mean, pre.std,
                            get_strategy("finetune")).to(device)
    model.configure(warmup=False)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=1e-4)
    labels = torch.arange(len(images)) % 2
    ctx, scaler = autocast(device)

    def step(xb, yb):
        with ctx:
            loss = torch.nn.functional.cross_entropy(model(xb).float(), yb)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()

    model.train()
    model.set_train_mode()
    xd, yd = images[:batch].to(device), labels[:batch].to(device)
    warm = _warm_up(device, batch)
    step(xd[:warm], yd[:warm])
    if loop:
        task = SupervisedTask(model, images, labels, batch_size=batch, augment=SkyAugment())
        trainer = TrainLoop(model, optimizer, epochs=1, device=device)
        seconds = _timed(lambda: trainer.run(task), device)
        return seconds, len(images) - (len(images) % batch == 1)

    steps = max(1, len(images) // batch)

    def run():
        for _ in range(steps):
            step(xd, yd)

    return _timed(run, device), steps * batch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--device", default=None, help="cuda or cpu (default: as the library)")
    parser.add_argument("--n", type=int, default=8192, help="cutouts for the feature rows")
    parser.add_argument("--size", type=int, default=64, help="cutout side (pixels)")
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=256, help="extract_features batch")
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--train-n", type=int, default=None,
                        help="training images (default: n // 4 on a GPU, n // 32 on the CPU)")
    parser.add_argument("--train-batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()

    import torch
    from astrofmtools.backbones import default_device, extract_features, load_backbone
    from astrofmtools.backbones.features import _precision
    from astrofmtools.backbones.preprocess_tensor import preprocess_tensor
    from astrofmtools.utils import set_progress
    set_progress(False)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = default_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    backbone = load_backbone(args.model, device=device)
    pre = backbone.default_preprocess(input_size=args.input_size)
    numpy_pre = _numpy_preprocess(pre)
    data = radio_cutouts(args.n, args.size)
    cuda = device.type == "cuda"
    n_numpy = min(args.n, 2048) if cuda else max(1, args.n // 4)
    n_bare = args.n if cuda else max(1, args.n // 4)
    n_train = max(2, args.train_n or args.n // (4 if cuda else 32))
    train_batch = min(args.train_batch, n_train)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU, {torch.get_num_threads()} torch threads"
    print(f"{args.model} at {pre.input_size} px, {args.size} px cutouts, batch {args.batch}, "
          f"{device} ({name}), autocast {str(_precision(device)).replace('torch.', '')}, "
          f"torch {torch.__version__}")

    rows = []

    def add(label, seconds, n):
        rows.append((label, n, seconds, n / seconds))
        print(f"  {label}: {n / seconds:.1f}/s", flush=True)

    # preprocessing alone
    pre.to_tensor(data[:_warm_up(device, args.batch)], device=device)
    add("preprocess, NumPy on the CPU", _timed(
        lambda: [numpy_pre(data[s:s + args.batch]) for s in range(0, n_numpy, args.batch)],
        device), n_numpy)
    add(f"preprocess, torch on {device.type}", _timed(
        lambda: [pre.to_tensor(data[s:s + args.batch], device=device)
                 for s in range(0, args.n, args.batch)], device), args.n)

    # features
    def features(p, n):
        return lambda: extract_features(backbone, data[:n], preprocess=p, device=device,
                                        batch_size=args.batch, cache=False)

    features(pre, _warm_up(device, args.batch))()
    add("extract_features, NumPy preprocessing", _timed(features(numpy_pre, n_numpy), device),
        n_numpy)
    add("extract_features", _timed(features(pre, args.n), device), args.n)
    x = pre.to_tensor(data[:min(args.batch, n_bare)], device=device)
    add("bare forward, ready device tensors", *bare_forward(backbone, x, n_bare, device))

    # fine-tuning: [0, 1] images on the CPU, as the classifier keeps them
    images = torch.cat([preprocess_tensor(pre, data[s:s + args.batch], device=device).cpu()
                        for s in range(0, n_train, args.batch)])[:n_train].contiguous()
    add("fine-tune epoch: TrainLoop + SkyAugment", *training(
        backbone, pre, images, train_batch, device, loop=True))
    add("bare forward + backward + AdamW", *training(
        backbone, pre, images, train_batch, device, loop=False))

    print()
    print(f"{'':<42}{'images':>8}{'seconds':>9}{'images/s':>10}")
    for label, n, seconds, rate in rows:
        print(f"{label:<42}{n:>8}{seconds:>9.2f}{rate:>10.1f}")
    rate = {label: r for label, _, _, r in rows}
    for label, a, b in (
            ("ratio extract_features / bare forward", "extract_features",
             "bare forward, ready device tensors"),
            ("ratio (NumPy preprocessing) / bare forward",
             "extract_features, NumPy preprocessing", "bare forward, ready device tensors"),
            ("ratio fine-tune epoch / bare training step",
             "fine-tune epoch: TrainLoop + SkyAugment", "bare forward + backward + AdamW")):
        print(f"{label:<59}{rate[a] / rate[b]:>10.2f}")

if __name__ == "__main__":
    main()
