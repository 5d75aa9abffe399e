# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
One training loop for every method: the loss comes from a task.

`TrainLoop` owns what every training run shares: seeded epochs (a resumed
run draws the same batches as an uninterrupted one), the optimiser step
(under `torch.autocast` on CUDA, with a gradient scaler for float16), a
check of the loss, learning-rate hooks, early stopping on a validation loss
with the best weights kept, a checkpoint after every epoch that a rerun
resumes from, and a progress bar with the loss. A task supplies the rest:
its batches, its loss and, optionally, its validation. `SupervisedTask`
is classification (class-weighted cross-entropy); the detector and the
self-supervised methods bring their own.
"""

import contextlib
import json
import math
import time
from pathlib import Path

import numpy as np

from ..exceptions import InputError
from ..utils import load_checkpoint, save_checkpoint, settings_fingerprint

__all__ = ["TrainLoop", "SupervisedTask"]


def autocast(device):
    """``(context, scaler)``: mixed precision on CUDA (bfloat16 where supported), else none."""
    import torch
    if torch.device(device).type != "cuda":
        return contextlib.nullcontext(), None
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return torch.autocast("cuda", dtype=dtype), scaler


class SupervisedTask:
    """
    Classification for `TrainLoop`: shuffled batches of ``(x, y)`` and a weighted loss.

    Parameters
    ----------
    forward : callable
        Maps an input batch (on the device) to ``(B, K)`` logits.
    x_train, y_train : `torch.Tensor`
        Training inputs (batches are moved to the device) and integer labels.
    x_val, y_val : `torch.Tensor`, optional
        Validation split for early stopping.
    batch_size : int, optional
    class_weight : array-like, optional
        ``(K,)`` weights of the loss.
    augment : callable, optional
        ``augment(batch, generator) -> batch`` on each training batch.
    loss : callable, optional
        ``loss(logits, y, weight) -> scalar`` (default: cross-entropy).

    Examples
    --------
    >>> import torch
    >>> from astrofmtools.adapt import SupervisedTask
    >>> model = torch.nn.Linear(2, 2)
    >>> task = SupervisedTask(model, torch.randn(10, 2), torch.arange(10) % 2, batch_size=4)
    >>> len(task)  # steps per epoch
    3
    >>> batch = next(task.batches(0, torch.Generator().manual_seed(0), "cpu"))
    >>> loss, n, parts = task.loss(batch)
    >>> n, loss.ndim
    (4, 0)
    """

    loss_name = "train_loss"

    def __init__(self, forward, x_train, y_train, x_val=None, y_val=None, batch_size=32,
                 class_weight=None, augment=None, loss=None):
        import torch
        self.forward = forward
        self.x_train, self.y_train = x_train, y_train
        self.has_val = x_val is not None and y_val is not None and len(y_val) > 0
        self.x_val, self.y_val = x_val, y_val
        self.batch_size = int(batch_size)
        self.class_weight = class_weight
        self.augment = augment
        self.loss_fn = loss or (lambda logits, y, w: torch.nn.functional.cross_entropy(
            logits.float(), y, weight=w))

    def __len__(self):
        return max(1, math.ceil(len(self.y_train) / self.batch_size))

    def _weight(self, device):
        import torch
        if self.class_weight is None:
            return None
        return torch.as_tensor(np.asarray(self.class_weight, dtype=np.float32), device=device)

    @staticmethod
    def _to_device(tensor, idx, device):
        """
        ``tensor[idx].to(device)``; from the CPU to CUDA through page-locked memory.

        The rows are gathered into a page-locked batch (torch's caching host
        allocator reuses it once its copy is done), so the copy to the GPU is
        asynchronous (``non_blocking``) and overlaps the work already queued.
        Pinning the whole training set would not do that: indexing it makes a
        new, pageable tensor.
        """
        import torch
        if torch.device(device).type != "cuda" or tensor.device.type != "cpu":
            return tensor[idx].to(device)
        batch = torch.empty((len(idx),) + tuple(tensor.shape[1:]), dtype=tensor.dtype,
                            pin_memory=True)
        torch.index_select(tensor, 0, idx, out=batch)
        return batch.to(device, non_blocking=True)

    def batches(self, epoch, generator, device):
        """Shuffled ``(x, y)`` batches on the device (a lone last sample is skipped)."""
        import torch
        n = len(self.y_train)
        order = torch.randperm(n, generator=generator)
        weight = self._weight(device)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            if len(idx) < 2 and n >= 2:  # a lone sample breaks batch norm
                continue
            xb = self._to_device(self.x_train, idx, device)
            if self.augment is not None:
                xb = self.augment(xb, generator)
            yield xb, self._to_device(self.y_train, idx, device), weight

    def train_mode(self, epoch):
        """After ``model.train()``: the model's own ``set_train_mode`` (fixed parts in
        evaluation mode), when it has one."""
        if hasattr(self.forward, "set_train_mode"):
            self.forward.set_train_mode()

    def loss(self, batch):
        """``(loss, n_samples, parts)`` of one batch."""
        xb, yb, weight = batch
        return self.loss_fn(self.forward(xb), yb, weight), len(yb), {}

    def validate(self, model, device):
        """Weighted loss, accuracy and macro-F1 on the validation split (None without one)."""
        import torch
        if not self.has_val:
            return None
        weight = self._weight(device)
        model.eval()
        logits = []
        with torch.inference_mode():
            for start in range(0, len(self.y_val), self.batch_size):
                ctx, _ = autocast(device)
                with ctx:
                    logits.append(self.forward(
                        self.x_val[start:start + self.batch_size].to(device)).float())
        logits = torch.cat(logits)
        loss = float(self.loss_fn(logits, self.y_val.to(device), weight))
        pred = logits.argmax(1).cpu().numpy()
        truth = self.y_val.cpu().numpy()
        from sklearn.metrics import f1_score
        present = np.union1d(truth, pred)  # as evaluate.classification_metrics
        return {"val_loss": loss, "val_accuracy": float((pred == truth).mean()),
                "val_macro_f1": float(f1_score(truth, pred, labels=present, average="macro",
                                               zero_division=0))}

    def empty_validation(self):
        """The validation columns of an epoch without a validation split."""
        return {"val_loss": math.nan, "val_accuracy": math.nan, "val_macro_f1": math.nan}


class TrainLoop:
    """
    Epochs of mini-batch training with early stopping and resumable checkpoints.

    The loop trains any `torch.nn.Module` on any task (an object with
    ``batches(epoch, generator, device)``, ``loss(batch) -> (loss, n, parts)``,
    ``validate(model, device)``, ``__len__`` (steps per epoch) and
    ``loss_name``, and optionally ``train_mode(epoch)``, called after
    ``model.train()`` to put fixed parts in evaluation mode, and
    ``after_backward(epoch)``, called between the backward pass and the
    optimiser step; see `SupervisedTask`). A validation dict without
    ``val_loss`` only adds its values to the history (a monitor). Each epoch draws its batches with a
    generator seeded by ``(seed, epoch)``, so a resumed run is the
    uninterrupted one. With a validation split the weights of the best
    validation epoch are kept and training stops after ``patience`` epochs
    without improvement.

    Parameters
    ----------
    model : `torch.nn.Module`
        The model; its ``state_dict`` is what the checkpoint and the
        early-stopping snapshot hold.
    optimizer : `torch.optim.Optimizer`
    epochs : int
        Total number of epochs (a resumed run continues up to it).
    patience : int or None, optional
        Early-stopping patience in epochs (None: never stop early).
    seed : int, optional
    device : str or `torch.device`, optional
    checkpoint : str or `~pathlib.Path`, optional
        A file written after every epoch (safe to load:
        ``torch.load(weights_only=True)``) and read at the start to resume.
    settings : dict, optional
        What defines the run; a checkpoint made with other settings is
        refused rather than silently resumed.
    on_epoch : callable, optional
        ``on_epoch(epoch)``: at the start of each epoch (learning rates,
        which parameters train).
    on_step : callable, optional
        ``on_step(step)``: before each optimiser step (``step`` counts from 0
        over the whole run; per-step learning-rate schedules).
    desc : str, optional
        Progress-bar label.
    main_process : bool, optional
        False for the other processes of a distributed run: they read the
        checkpoint to resume but neither write it nor show a progress bar.

    Examples
    --------
    >>> import torch
    >>> from astrofmtools.adapt import SupervisedTask, TrainLoop
    >>> torch.manual_seed(0)  # doctest: +IGNORE_OUTPUT
    >>> x = torch.cat([torch.randn(40, 2) - 2, torch.randn(40, 2) + 2])
    >>> y = torch.cat([torch.zeros(40), torch.ones(40)]).long()
    >>> model = torch.nn.Linear(2, 2)
    >>> loop = TrainLoop(model, torch.optim.AdamW(model.parameters(), lr=0.1), epochs=20,
    ...                  patience=5)
    >>> history = loop.run(SupervisedTask(model, x[::2], y[::2], x[1::2], y[1::2],
    ...                                   batch_size=16))
    >>> len(history) <= 20, history[-1]["val_accuracy"] > 0.9
    (True, True)
    """

    def __init__(self, model, optimizer, epochs, patience=None, seed=0, device="cpu",
                 checkpoint=None, settings=None, on_epoch=None, on_step=None,
                 desc="training", main_process=True):
        self.model = model
        self.optimizer = optimizer
        self.epochs = int(epochs)
        self.patience = None if patience is None else int(patience)
        self.seed = int(seed)
        self.device = device
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self.fingerprint = settings_fingerprint(settings or {})
        self.on_epoch = on_epoch
        self.on_step = on_step
        self.desc = desc
        self.main_process = bool(main_process)
        self.history = []
        self.best_epoch = None
        self.best_loss = math.inf
        self.best_state = None
        self.bad_epochs = 0
        self.stopped = False
        self._autocast = autocast(device)

    # -- checkpoints ---------------------------------------------------------------------
    def _save_checkpoint(self, epoch):
        save_checkpoint(self.checkpoint, {
            "fingerprint": self.fingerprint, "epoch": epoch,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "best_state": self.best_state, "best_loss": self.best_loss,
            "best_epoch": -1 if self.best_epoch is None else self.best_epoch,
            "bad_epochs": self.bad_epochs, "stopped": self.stopped,
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
    def _step(self, task, batch, step, epoch):
        import torch
        if self.on_step is not None:
            self.on_step(step)
        ctx, scaler = self._autocast
        with ctx:
            loss, n, parts = task.loss(batch)
        if not torch.isfinite(loss):
            lrs = sorted({g["lr"] for g in self.optimizer.param_groups})
            raise InputError(f"The training loss became {float(loss)} at epoch {epoch + 1}; "
                             f"lower the learning rate (now {lrs}).")
        self.optimizer.zero_grad(set_to_none=True)
        after_backward = getattr(task, "after_backward", None)
        if scaler is not None:
            scaler.scale(loss).backward()
            if after_backward is not None:
                after_backward(epoch)
            scaler.step(self.optimizer)
            scaler.update()
        else:
            loss.backward()
            if after_backward is not None:
                after_backward(epoch)
            self.optimizer.step()
        return float(loss.detach()), n, {k: float(v.detach()) for k, v in parts.items()}

    def _update_best(self, record, has_val, epoch):
        monitor = record["val_loss"] if has_val else record[self._loss_name]
        if monitor < self.best_loss - 1e-6 or self.best_epoch is None:
            self.best_loss, self.best_epoch, self.bad_epochs = monitor, epoch + 1, 0
            if has_val:
                self.best_state = {k: v.detach().clone()
                                   for k, v in self.model.state_dict().items()}
        else:
            self.bad_epochs += 1
            if has_val and self.patience is not None and self.bad_epochs >= self.patience:
                self.stopped = True

    def run(self, task):
        """
        Train (or resume) until ``epochs`` or early stopping.

        Parameters
        ----------
        task : `SupervisedTask` or a task object
            Supplies the batches, the loss and the validation.

        Returns
        -------
        history : list of dict
            One dict per epoch: ``epoch`` (1-based), the task's mean loss
            (``task.loss_name``) and its parts, the validation values, and
            ``seconds``.
        """
        import torch
        from ..utils import progress

        self._loss_name = task.loss_name
        start_epoch = 0
        if self.checkpoint is not None and self.checkpoint.exists():
            start_epoch = self._load_checkpoint()
        steps = len(task)
        bar = progress(total=steps * max(self.epochs - start_epoch, 0), desc=self.desc,
                       unit="step", leave=False, disable=not self.main_process)
        try:
            for epoch in range(start_epoch, self.epochs):
                if self.stopped:
                    break
                t0 = time.perf_counter()
                if self.on_epoch is not None:
                    self.on_epoch(epoch)
                gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
                torch.manual_seed(self.seed * 100_003 + epoch)  # dropout, drop-path
                self.model.train()
                if hasattr(task, "train_mode"):
                    task.train_mode(epoch)
                total, count, sums = 0.0, 0, {}
                for i, batch in enumerate(task.batches(epoch, gen, self.device)):
                    loss, n, parts = self._step(task, batch, epoch * steps + i, epoch)
                    total, count = total + loss * n, count + n
                    for k, v in parts.items():
                        sums[k] = sums.get(k, 0.0) + v * n
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
                record = {"epoch": epoch + 1, task.loss_name: total / max(count, 1),
                          **{k: v / max(count, 1) for k, v in sums.items()}}
                validation = task.validate(self.model, self.device)
                # a validation without a loss only monitors (no early stopping, no best epoch)
                has_val = validation is not None and "val_loss" in validation
                if hasattr(task, "empty_validation"):
                    record.update(validation if has_val else task.empty_validation())
                elif validation is not None:
                    record.update(validation)
                record["seconds"] = time.perf_counter() - t0
                self.history.append(record)
                self._update_best(record, has_val, epoch)
                if self.checkpoint is not None and self.main_process:
                    self._save_checkpoint(epoch)
        finally:
            bar.close()
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        self.model.eval()
        return self.history
