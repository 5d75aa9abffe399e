# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Self-supervised pretraining as a task of the shared training loop, and its k-NN monitor."""

import math

import numpy as np

__all__ = ["PretrainTask", "knn_error"]


def knn_error(features, labels, k=10, folds=5, seed=0):
    """
    Cross-validated error of a k-nearest-neighbour classifier on features.

    The standard monitor of self-supervised training: features that group
    the classes of a small labelled set give a low error without training
    anything. The features are L2-normalised (cosine neighbours).

    Parameters
    ----------
    features : array (N, D)
    labels : array (N,)
    k : int, optional
        Neighbours (at most the smallest training fold).
    folds : int, optional
        Stratified folds (at most the smallest class count).
    seed : int, optional

    Returns
    -------
    error : float
        1 - mean accuracy over the folds (NaN with fewer than two classes).

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.pretrain import knn_error
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(0, 1, (30, 4)) + [5, 0, 0, 0],
    ...                     rng.normal(0, 1, (30, 4)) + [0, 5, 0, 0]])
    >>> knn_error(x, np.repeat([0, 1], 30))
    0.0
    """
    from sklearn.model_selection import StratifiedKFold
    from sklearn.neighbors import KNeighborsClassifier
    x = np.asarray(features, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    y = np.asarray(labels)
    _, counts = np.unique(y, return_counts=True)
    if len(counts) < 2:
        return math.nan
    folds = int(max(2, min(folds, counts.min())))
    accuracies = []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        knn = KNeighborsClassifier(n_neighbors=int(min(k, len(train))))
        accuracies.append(knn.fit(x[train], y[train]).score(x[test], y[test]))
    return float(1.0 - np.mean(accuracies))


class PretrainTask:
    """
    Batches of augmented views and the method's loss, for `~astrofmtools.adapt.TrainLoop`.

    Parameters
    ----------
    method : `~astrofmtools.pretrain.Method`
        The method (its ``forward`` gives the loss).
    images : `torch.Tensor`
        The pool, preprocessed to [0, 1] (N, C, S, S), any float dtype, on
        the CPU or the device.
    views : `~astrofmtools.pretrain.SkyViews`
    normalize : callable
        [0, 1] views -> the model's input (the preprocessing's normalisation).
    batch_size : int
        Images per step, over all processes.
    module : `torch.nn.Module`, optional
        What computes the loss (a `~torch.nn.parallel.DistributedDataParallel`
        wrapper of ``method``); default ``method``.
    rank, world : int, optional
        This process and the number of processes: each takes its share of
        every batch.
    monitor : (images, labels), optional
        A labelled set ([0, 1] images as ``images``) for the k-NN monitor.
    monitor_every : int, optional
        Epochs between two monitor measurements (and always the last).
    epochs : int, optional
        The run's length (for the last monitor).
    channels_last : bool, optional
        Feed the model channels-last tensors (CNNs on a GPU).
    """

    loss_name = "loss"

    def __init__(self, method, images, views, normalize, batch_size, module=None, rank=0,
                 world=1, monitor=None, monitor_every=5, epochs=1, knn_k=10,
                 channels_last=False, seed=0):
        self.method = method
        self.module = module if module is not None else method
        self.images = images
        self.views = views
        self.normalize = normalize
        self.batch_size = int(batch_size)
        self.rank, self.world = int(rank), int(world)
        self.monitor = monitor
        self.monitor_every = max(1, int(monitor_every))
        self.epochs = int(epochs)
        self.knn_k = int(knn_k)
        self.channels_last = bool(channels_last)
        self.seed = int(seed)
        self.epoch = 0

    def __len__(self):
        n = len(self.images)
        return max(1, n // self.batch_size) if n >= 2 else 1

    def train_mode(self, epoch):
        """Remember the epoch (DINO's schedules, the monitor's turns)."""
        self.epoch = int(epoch)
        self.module.train()

    def _input(self, x):
        import torch
        x = self.normalize(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def batches(self, epoch, generator, device):
        """The views of shuffled batches (the last incomplete batch is dropped)."""
        import torch
        n = len(self.images)
        order = torch.randperm(n, generator=generator)
        size = min(self.batch_size, n)
        per_rank = max(1, size // self.world)
        for step in range(len(self)):
            idx = order[step * size:(step + 1) * size][self.rank * per_rank:
                                                      (self.rank + 1) * per_rank]
            x = self.images[idx.to(self.images.device)].to(device, non_blocking=True).float()
            views = self.views(x, generator)  # random parameters drawn for the whole batch
            yield [self._input(v) for v in views], len(idx)

    def loss(self, batch):
        """``(loss, n_samples, parts)`` of one batch of views."""
        views, n = batch
        return self.module(views, self.epoch), n, {}

    def after_backward(self, epoch):
        """The method's hook between the backward pass and the step."""
        self.method.after_backward(epoch)

    def monitor_features(self, images, device, batch_size=256):
        """The online backbone's features of [0, 1] images (evaluation mode)."""
        import torch
        from ..adapt.loop import autocast
        self.method.eval()
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                x = self._input(images[start:start + batch_size].to(device).float())
                ctx, _ = autocast(device)
                with ctx:
                    out.append(self.method.features(x).float().cpu())
        return torch.cat(out).numpy()

    def measure(self, device):
        """The k-NN error of the monitor set now (NaN without one)."""
        if self.monitor is None:
            return math.nan
        images, labels = self.monitor
        return knn_error(self.monitor_features(images, device), labels, k=self.knn_k,
                         seed=self.seed)

    def validate(self, model, device):
        """The k-NN monitor every ``monitor_every`` epochs (a monitor: no early stopping)."""
        if self.monitor is None:
            return None
        done = self.epoch + 1
        due = done % self.monitor_every == 0 or done == self.epochs
        return {"knn_error": self.measure(device) if due else math.nan}
