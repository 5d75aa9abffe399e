# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Training helpers: class weights, label fractions, stratified validation
splits and the epoch loop (early stopping, checkpoints, mixed precision).
"""

import json
import math
import time
from pathlib import Path

import numpy as np

from ..exceptions import InputError
from ..utils import load_checkpoint, save_checkpoint, settings_fingerprint

__all__ = ["class_weights", "label_fraction_indices", "train_val_split", "TrainLoop"]


def class_weights(labels, n_classes=None):
    """
    Class weights inversely proportional to the class counts.

    The weights are ``N / (K * n_k)`` (scikit-learn's ``"balanced"``): each
    class contributes the same total weight to the loss, and a balanced set
    gets weights of 1. Classes without samples get weight 0.

    Parameters
    ----------
    labels : array-like of int
        Class indices in ``[0, n_classes)``.
    n_classes : int, optional
        Number of classes K (default: ``max(labels) + 1``).

    Returns
    -------
    weights : `~numpy.ndarray`
        ``(K,)`` float weights.

    Examples
    --------
    >>> from astrofmtools.classify import class_weights
    >>> class_weights([0, 0, 0, 1]).tolist()
    [0.6666666666666666, 2.0]
    """
    labels = np.asarray(labels, dtype=np.int64)
    if n_classes is None:
        n_classes = int(labels.max()) + 1 if labels.size else 0
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    with np.errstate(divide="ignore"):
        weights = np.where(counts > 0, labels.size / (n_classes * counts), 0.0)
    return weights


def label_fraction_indices(labels, fraction, seed=0):
    """
    A seeded, per-class random subset of the labelled samples.

    For label-efficiency curves: each class keeps ``round(fraction * n_k)``
    of its ``n_k`` samples (at least one), so the class balance of the
    subset is that of the full set.

    Parameters
    ----------
    labels : array-like
        The labels (any type).
    fraction : float
        Fraction kept, in (0, 1].
    seed : int, optional
        Random seed: the same seed gives the same subset, and a smaller
        fraction's subset is contained in a larger one's.

    Returns
    -------
    indices : `~numpy.ndarray`
        Sorted indices into ``labels``.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.classify import label_fraction_indices
    >>> labels = np.array(["a"] * 80 + ["b"] * 20)
    >>> idx = label_fraction_indices(labels, 0.1, seed=0)
    >>> len(idx), int((labels[idx] == "b").sum())
    (10, 2)
    """
    fraction = float(fraction)
    if not 0 < fraction <= 1:
        raise InputError(f"label_fraction must be in (0, 1]; got {fraction}.")
    labels = np.asarray(labels)
    if fraction == 1:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))  # one permutation: nested subsets across fractions
    keep = []
    for value in np.unique(labels):
        members = order[labels[order] == value]
        n = max(1, int(round(fraction * len(members))))
        keep.append(members[:n])
    return np.sort(np.concatenate(keep))


def train_val_split(labels, val_fraction=0.15, seed=0):
    """
    A seeded, stratified split into training and validation samples.

    Each class with at least two samples puts ``round(val_fraction * n_k)``
    of them (at least one, and never all) into the validation split.

    Parameters
    ----------
    labels : array-like
        The labels.
    val_fraction : float, optional
        Fraction of each class held out, in [0, 1). 0: no validation split.
    seed : int, optional
        Random seed.

    Returns
    -------
    train, val : `~numpy.ndarray`
        Sorted indices.

    Examples
    --------
    >>> from astrofmtools.classify import train_val_split
    >>> train, val = train_val_split([0] * 20 + [1] * 10, 0.2, seed=0)
    >>> len(train), len(val)
    (24, 6)
    """
    val_fraction = float(val_fraction)
    if not 0 <= val_fraction < 1:
        raise InputError(f"val_fraction must be in [0, 1); got {val_fraction}.")
    labels = np.asarray(labels)
    if val_fraction == 0:
        return np.arange(len(labels)), np.arange(0)
    rng = np.random.default_rng([int(seed), 1])
    val = []
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        if len(members) < 2:
            continue
        n = min(len(members) - 1, max(1, int(round(val_fraction * len(members)))))
        val.append(members[:n])
    val = np.sort(np.concatenate(val)) if val else np.arange(0)
    train = np.setdiff1d(np.arange(len(labels)), val)
    return train, val


def _macro_f1(truth, pred, n_classes):
    """Macro-averaged F1 over the classes present in truth or prediction (as scikit-learn)."""
    cm = np.bincount(truth * n_classes + pred, minlength=n_classes ** 2).reshape(n_classes,
                                                                                 n_classes)
    tp = np.diag(cm).astype(float)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    present = (support + predicted) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), 0.0)
    return float(f1[present].mean()) if present.any() else 0.0


class TrainLoop:
    """
    Epochs of mini-batch training with early stopping and resumable checkpoints.

    The loop is generic: it trains any `torch.nn.Module` given a function
    that maps a batch of inputs to logits. Each epoch shuffles the training
    samples with a generator seeded by ``(seed, epoch)`` (so a resumed run
    draws the same batches as an uninterrupted one), minimises the
    class-weighted cross-entropy with the given optimiser, evaluates the
    class-weighted loss on the validation samples, keeps the weights of the
    best validation epoch and stops after ``patience`` epochs without
    improvement. On CUDA the forward pass runs under `torch.autocast`
    (bfloat16 where supported, else float16 with a gradient scaler).

    Parameters
    ----------
    model : `torch.nn.Module`
        The model; its ``state_dict`` is what the checkpoint and the
        early-stopping snapshot hold.
    optimizer : `torch.optim.Optimizer`
    epochs : int
        Total number of epochs (a resumed run continues up to it).
    patience : int or None
        Early-stopping patience in epochs (None: never stop early).
    batch_size : int
    class_weight : array-like or None
        ``(K,)`` weights of the cross-entropy.
    seed : int
    device : str or `torch.device`
    checkpoint : str or `~pathlib.Path`, optional
        A file written after every epoch (safe to load:
        ``torch.load(weights_only=True)``) and read at the start to resume.
    settings : dict, optional
        What defines the run; a checkpoint made with other settings is
        refused rather than silently resumed.
    scheduler : callable, optional
        ``scheduler(epoch) -> None``: sets learning rates (and which
        parameters train) at the start of each epoch.
    desc : str, optional
        Progress-bar label.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from astrofmtools.classify import TrainLoop
    >>> torch.manual_seed(0)  # doctest: +IGNORE_OUTPUT
    >>> x = torch.cat([torch.randn(40, 2) - 2, torch.randn(40, 2) + 2])
    >>> y = torch.cat([torch.zeros(40), torch.ones(40)]).long()
    >>> model = torch.nn.Linear(2, 2)
    >>> loop = TrainLoop(model, torch.optim.AdamW(model.parameters(), lr=0.1), epochs=20,
    ...                  patience=5, batch_size=16)
    >>> history = loop.run(lambda xb: model(xb), x[::2], y[::2], x[1::2], y[1::2])
    >>> len(history) <= 20, history[-1]["val_accuracy"] > 0.9
    (True, True)
    """

    def __init__(self, model, optimizer, epochs, patience=None, batch_size=32,
                 class_weight=None, seed=0, device="cpu", checkpoint=None, settings=None,
                 scheduler=None, desc="training"):
        self.model = model
        self.optimizer = optimizer
        self.epochs = int(epochs)
        self.patience = None if patience is None else int(patience)
        self.batch_size = int(batch_size)
        self.class_weight = class_weight
        self.seed = int(seed)
        self.device = device
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self.fingerprint = settings_fingerprint(settings or {})
        self.scheduler = scheduler
        self.desc = desc
        self.history = []
        self.best_epoch = None
        self.best_loss = math.inf
        self.best_state = None
        self.bad_epochs = 0
        self.stopped = False

    # -- checkpoints ---------------------------------------------------------------------
    def _save_checkpoint(self, epoch):
        save_checkpoint(self.checkpoint, {
            "fingerprint": self.fingerprint,
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "best_state": self.best_state,
            "best_loss": self.best_loss,
            "best_epoch": -1 if self.best_epoch is None else self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "stopped": self.stopped,
            "history": json.dumps(self.history),
        })

    def _load_checkpoint(self):
        state = load_checkpoint(self.checkpoint, self.fingerprint, map_location=self.device)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.best_state = state["best_state"]
        self.best_loss = float(state["best_loss"])
        self.best_epoch = None if state["best_epoch"] < 0 else int(state["best_epoch"])
        self.bad_epochs = int(state["bad_epochs"])
        self.stopped = bool(state["stopped"])
        self.history = json.loads(state["history"])
        return int(state["epoch"]) + 1

    # -- the loop ------------------------------------------------------------------------
    def _autocast(self):
        import contextlib
        import torch
        if torch.device(self.device).type != "cuda":
            return contextlib.nullcontext(), None
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        scaler = None
        if dtype == torch.float16:
            if not hasattr(self, "_scaler"):
                self._scaler = torch.amp.GradScaler("cuda")
            scaler = self._scaler
        return torch.autocast("cuda", dtype=dtype), scaler

    def _loss(self, logits, y, weight):
        import torch
        return torch.nn.functional.cross_entropy(logits.float(), y, weight=weight)

    def evaluate(self, forward, x, y):
        """Class-weighted loss, accuracy and macro-F1 of ``forward`` on ``(x, y)``."""
        import torch
        weight = self._weight_tensor()
        self.model.eval()
        logits = []
        with torch.inference_mode():
            for start in range(0, len(y), self.batch_size):
                xb = x[start:start + self.batch_size].to(self.device)
                ctx, _ = self._autocast()
                with ctx:
                    logits.append(forward(xb).float())
        logits = torch.cat(logits)
        yd = y.to(self.device)
        loss = float(self._loss(logits, yd, weight))
        pred = logits.argmax(1).cpu().numpy()
        truth = y.cpu().numpy()
        return {"val_loss": loss, "val_accuracy": float((pred == truth).mean()),
                "val_macro_f1": _macro_f1(truth, pred, logits.shape[1])}

    def _weight_tensor(self):
        import torch
        if self.class_weight is None:
            return None
        return torch.as_tensor(np.asarray(self.class_weight, dtype=np.float32),
                               device=self.device)

    def run(self, forward, x_train, y_train, x_val=None, y_val=None, augment=None):
        """
        Train (or resume) until ``epochs`` or early stopping.

        Parameters
        ----------
        forward : callable
            Maps an input batch (on ``device``) to ``(B, K)`` logits.
        x_train, y_train : `torch.Tensor`
            Training inputs (kept on their device; batches are moved) and
            integer labels.
        x_val, y_val : `torch.Tensor`, optional
            Validation split for early stopping.
        augment : callable, optional
            ``augment(batch, generator) -> batch`` applied to each
            training batch on ``device``.

        Returns
        -------
        history : list of dict
            One dict per epoch: ``epoch`` (1-based), ``train_loss``,
            ``val_loss``, ``val_accuracy``, ``val_macro_f1`` (NaN without a
            validation split), ``seconds``.
        """
        import torch
        from ..utils import progress

        start_epoch = 0
        if self.checkpoint is not None and self.checkpoint.exists():
            start_epoch = self._load_checkpoint()
        has_val = x_val is not None and y_val is not None and len(y_val) > 0
        weight = self._weight_tensor()
        n = len(y_train)
        bar = progress(range(start_epoch, self.epochs), desc=self.desc, unit="epoch",
                       leave=False)
        for epoch in bar:
            if self.stopped:
                break
            t0 = time.perf_counter()
            if self.scheduler is not None:
                self.scheduler(epoch)
            gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            torch.manual_seed(self.seed * 100_003 + epoch)  # dropout, drop-path
            order = torch.randperm(n, generator=gen)
            self.model.train()
            if hasattr(self.model, "set_train_mode"):
                self.model.set_train_mode()
            total, count = 0.0, 0
            for start in range(0, n, self.batch_size):
                idx = order[start:start + self.batch_size]
                if len(idx) < 2 and n >= 2:  # a lone sample breaks batch norm
                    continue
                xb = x_train[idx].to(self.device)
                yb = y_train[idx].to(self.device)
                if augment is not None:
                    xb = augment(xb, gen)
                ctx, scaler = self._autocast()
                with ctx:
                    logits = forward(xb)
                loss = self._loss(logits, yb, weight)
                self.optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.step(self.optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    self.optimizer.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            record = {"epoch": epoch + 1, "train_loss": total / max(count, 1)}
            if has_val:
                record.update(self.evaluate(forward, x_val, y_val))
            else:
                record.update({"val_loss": math.nan, "val_accuracy": math.nan,
                               "val_macro_f1": math.nan})
            record["seconds"] = time.perf_counter() - t0
            self.history.append(record)
            monitor = record["val_loss"] if has_val else record["train_loss"]
            if monitor < self.best_loss - 1e-6 or self.best_state is None:
                self.best_loss = monitor
                self.best_epoch = epoch + 1
                self.best_state = {k: v.detach().clone()
                                   for k, v in self.model.state_dict().items()}
                self.bad_epochs = 0
            else:
                self.bad_epochs += 1
                if has_val and self.patience is not None and self.bad_epochs >= self.patience:
                    self.stopped = True
            if self.checkpoint is not None:
                self._save_checkpoint(epoch)
        if self.best_state is not None and has_val:
            self.model.load_state_dict(self.best_state)
        self.model.eval()
        return self.history
