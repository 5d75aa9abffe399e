# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""`Pretrainer`: self-supervised pretraining of a registry backbone on unlabelled cutouts."""

import math
import os
import time
from pathlib import Path

import numpy as np
from astropy.table import Table

from ..exceptions import InputError
from ..utils import json_value, provenance
from .methods import get_method
from .task import PretrainTask
from .views import SkyViews

__all__ = ["Pretrainer"]

#: The training schedule of each method when the user gives none: AdamW, a linear warm-up
#: then a cosine decay per step.
SCHEDULES = {
    "byol": {"epochs": 100, "lr": 1e-3, "batch_size": 128, "weight_decay": 1e-4,
             "warmup_epochs": 10},
    "dino": {"epochs": 100, "lr": 5e-4, "batch_size": 128, "weight_decay": 0.04,
             "warmup_epochs": 10},
}
_FALLBACK_SCHEDULE = SCHEDULES["byol"]


def distributed_context(device):
    """
    ``(rank, world, device)``: join the process group when started by ``torchrun``.

    Outside ``torchrun`` (no ``WORLD_SIZE`` above 1 in the environment) this
    is ``(0, 1, device)``. Under it, the group is initialised (NCCL on GPUs,
    Gloo on CPUs) and each process takes the GPU ``LOCAL_RANK``.
    """
    import torch
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device
    import torch.distributed as dist
    gpu = torch.device(device).type == "cuda"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if gpu else "gloo")
    if gpu:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    return dist.get_rank(), dist.get_world_size(), device


def _preprocessed(pre, data, zoom, device, chunk=512):
    """The cutouts preprocessed once to [0, 1] (float16, on the device when it is a GPU)."""
    import torch
    out = None
    for start in range(0, len(data), chunk):
        part = torch.from_numpy(pre.to_array(data[start:start + chunk], zoom=zoom))
        if out is None:
            out = torch.empty((len(data),) + tuple(part.shape[1:]), dtype=torch.float16)
        out[start:start + len(part)] = part.half()
    if out is None:
        raise InputError("The pool of cutouts is empty.")
    if torch.device(device).type == "cuda":
        return out.to(device)
    return out


class Pretrainer:
    """
    Adapt a foundation model to the sky: self-supervised pretraining on unlabelled cutouts.

    A registry backbone, CNN or ViT, starting from its pretrained weights
    (or random ones), is trained with a registered method (`list_methods`:
    ``'byol'``, as in Radio Galaxy Zoo's radio foundation model, or
    ``'dino'``, suited to vision transformers) on augmented views
    (`SkyViews`) of a pool of cutouts (`build_pool` makes one from mosaics,
    postage stamps or arrays). The cutouts are preprocessed once, exactly as
    fine-tuning will later preprocess them (`~astrofmtools.backbones.Preprocess`);
    the views are made on the device in batches. The schedule is AdamW with a
    linear warm-up and a cosine decay per step; mixed precision on GPUs; a
    checkpoint after every epoch that a rerun resumes from exactly; a
    progress bar with the loss; and, given a small labelled set, a k-NN
    monitor every ``monitor_every`` epochs (`knn_error`). Under ``torchrun``
    the same code runs distributed (`DistributedDataParallel`, each process
    a share of every batch). `save` writes a backbone folder that every
    stage loads by path or name like any registry backbone.

    Parameters
    ----------
    backbone : str, optional
        The registry name to start from.
    method : str, optional
        A registered method (`list_methods`).
    weights : str, optional
        The starting weights (None: the backbone's default; ``'random'``:
        from scratch).
    epochs, lr, batch_size, weight_decay, warmup_epochs : optional
        The schedule (None: the method's default, `SCHEDULES`).
    input_size : int, optional
        Side of the model's input (None: the backbone's). Small sizes
        (64-96) make pretraining practical on a laptop.
    preprocess : dict or `~astrofmtools.backbones.Preprocess`, optional
        The preprocessing (settings of the backbone's default one, e.g.
        ``{"zoom": "auto"}``).
    views : dict or `SkyViews`, optional
        The augmentations.
    method_options : dict, optional
        The method's options (e.g. ``{"hidden_dim": 1024}``).
    pooling : str, optional
        The pooling the method reads (default: the backbone's).
    monitor_every : int, optional
        Epochs between two k-NN measurements of the monitor set.
    device : str, optional
        Default: a GPU when there is one.
    seed : int, optional
    checkpoint_dir : str, optional
        Where the per-epoch checkpoint lives; a rerun resumes from it.

    Attributes
    ----------
    backbone_ : `~astrofmtools.backbones.Backbone`
        The pretrained backbone (after `fit`).
    history_ : `~astropy.table.Table`
        Per epoch: ``epoch``, ``loss``, ``knn_error`` (NaN where not
        measured; epoch 0 is before pretraining), ``lr``, ``seconds``.
    spec_ : `~astrofmtools.backbones.BackboneSpec`
        The registered entry (after `save`).

    Examples
    --------
    A few steps of BYOL on random cutouts (real runs take a pool of
    thousands and tens of epochs):

    >>> import numpy as np
    >>> from astrofmtools.pretrain import Pretrainer
    >>> pool = np.random.default_rng(0).normal(size=(16, 32, 32)).astype("float32")
    >>> pre = Pretrainer("efficientnet_lite0", method="byol", epochs=1, batch_size=8,
    ...                  input_size=32, method_options={"hidden_dim": 64},
    ...                  device="cpu").fit(pool)
    >>> len(pre.history_), bool(np.isfinite(pre.history_["loss"][-1]))
    (2, True)
    >>> spec = pre.save("my_backbone", name="my_byol")
    >>> spec.name, spec.input_size
    ('my_byol', 32)
    """

    def __init__(self, backbone="efficientnet_lite0", method="byol", *, weights=None,
                 epochs=None, lr=None, batch_size=None, weight_decay=None, warmup_epochs=None,
                 input_size=None, preprocess=None, views=None, method_options=None,
                 pooling=None, monitor_every=5, device=None, seed=0, checkpoint_dir=None):
        from ..adapt.settings import _number
        self.method_class = get_method(method)
        self.backbone = backbone
        self.method = method
        self.weights = weights
        schedule = {**SCHEDULES.get(method, _FALLBACK_SCHEDULE)}
        given = {"epochs": epochs, "lr": lr, "batch_size": batch_size,
                 "weight_decay": weight_decay, "warmup_epochs": warmup_epochs}
        schedule.update({k: v for k, v in given.items() if v is not None})
        self.epochs = _number("epochs", schedule["epochs"], int, 1)
        self.lr = _number("lr", schedule["lr"], float, 0, low_open=True)
        self.batch_size = _number("batch_size", schedule["batch_size"], int, 2)
        self.weight_decay = _number("weight_decay", schedule["weight_decay"], float, 0)
        self.warmup_epochs = _number("warmup_epochs", schedule["warmup_epochs"], int, 0)
        self.input_size = _number("input_size", input_size, int, 1, allow_none=True)
        self.monitor_every = _number("monitor_every", monitor_every, int, 1)
        self.seed = _number("seed", seed, int, 0)
        self.preprocess = preprocess
        if isinstance(views, dict):
            views = SkyViews(**views)
        elif views is None:
            views = SkyViews(n_views=self.method_class.n_views)
        elif not isinstance(views, SkyViews):
            raise InputError(f"views must be a SkyViews or a dict of its settings, not "
                             f"{type(views).__name__}.")
        self.views = views
        self.method_options = dict(method_options or {})
        unknown = set(self.method_options) - set(self.method_class.defaults)
        if unknown:
            raise InputError(f"Unknown options {sorted(unknown)} for pretraining method "
                             f"{method!r}; its options are "
                             f"{sorted(self.method_class.defaults)}.")
        self.pooling = pooling
        self.device = device
        self.checkpoint_dir = checkpoint_dir

    def _settings(self):
        return {"backbone": str(self.backbone), "method": self.method,
                "weights": None if self.weights is None else str(self.weights),
                "epochs": self.epochs, "lr": self.lr, "batch_size": self.batch_size,
                "weight_decay": self.weight_decay, "warmup_epochs": self.warmup_epochs,
                "input_size": self.input_size, "views": self.views.to_dict(),
                "method_options": self.method_options, "pooling": self.pooling,
                "monitor_every": self.monitor_every, "seed": self.seed}

    def _make_preprocess(self, backbone):
        from ..backbones import Preprocess
        if isinstance(self.preprocess, Preprocess):
            pre = self.preprocess
        elif self.preprocess is None or isinstance(self.preprocess, dict):
            settings = dict(self.preprocess or {})
            if self.input_size is not None:
                settings.setdefault("input_size", self.input_size)
            pre = backbone.default_preprocess(**settings)
        else:
            raise InputError(f"preprocess must be a Preprocess or a dict, not "
                             f"{type(self.preprocess).__name__}.")
        return pre

    def fit(self, pool, monitor=None):
        """
        Pretrain on a pool of unlabelled cutouts.

        Parameters
        ----------
        pool : array, `~astrofmtools.cutouts.CutoutStack` or list of stacks
            Raw cutouts (N, H, W) or (N, C, H, W) (`build_pool` makes them).
        monitor : (cutouts, labels), optional
            A small labelled set whose k-NN error is measured before
            pretraining and every ``monitor_every`` epochs.

        Returns
        -------
        self : `Pretrainer`
        """
        import torch
        from ..adapt import TrainLoop, cosine_factor
        from ..backbones import load_backbone
        from ..backbones.load import default_device
        from ..cutouts import parse_cutouts
        from ..schema import as_labels

        t0 = time.perf_counter()
        data, _ = parse_cutouts(pool, what="pool")
        if len(data) < 2:
            raise InputError(f"Pretraining needs at least 2 cutouts in the pool; got "
                             f"{len(data)}.")
        rank, world, device = distributed_context(default_device(self.device))
        device = torch.device(device)
        in_chans = data.shape[1] if data.ndim == 4 and data.shape[1] not in (1, 3) else 3
        torch.manual_seed(self.seed)
        backbone = load_backbone(self.backbone, weights=self.weights, device=device,
                                 in_chans=in_chans)
        pre = self._make_preprocess(backbone)
        zoom = pre.resolve_zoom(data)
        self.preprocess_ = pre.replace(zoom=zoom)
        images = _preprocessed(pre, data, zoom, device)
        monitor_set = None
        if monitor is not None:
            try:
                m_cutouts, m_labels = monitor
            except (TypeError, ValueError):
                raise InputError("monitor must be a (cutouts, labels) pair.") from None
            m_data, m_table = parse_cutouts(m_cutouts, what="monitor cutouts")
            labels = as_labels(m_labels, "monitor labels", table=m_table, n=len(m_data))
            monitor_set = (_preprocessed(pre, m_data, pre.resolve_zoom(m_data), device),
                           np.asarray(labels))

        torch.manual_seed(self.seed)
        method = self.method_class(backbone, pooling=self.pooling,
                                   **self.method_options).to(device)
        gpu = device.type == "cuda"
        channels_last = gpu and backbone.family.channels_last
        if channels_last:
            method.to(memory_format=torch.channels_last)
        module = method
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel
            module = DistributedDataParallel(method, device_ids=[device.index] if gpu else None)
        params = [p for p in method.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        task = PretrainTask(method, images, self.views, pre.normalize, self.batch_size,
                            module=module, rank=rank, world=world, monitor=monitor_set,
                            monitor_every=self.monitor_every, epochs=self.epochs,
                            channels_last=channels_last, seed=self.seed)
        steps = len(task)
        total, warmup = self.epochs * steps, self.warmup_epochs * steps
        lrs = {}

        def on_step(step):
            lr = self.lr * cosine_factor(step, total, warmup=min(warmup, total - 1))
            for group in optimizer.param_groups:
                group["lr"] = lr
            lrs[step // steps] = lr
            method.momentum_update(step, total)

        checkpoint = (None if self.checkpoint_dir is None
                      else Path(self.checkpoint_dir) / "checkpoint.pt")
        initial = task.measure(device) if monitor_set is not None else math.nan
        loop = TrainLoop(method, optimizer, epochs=self.epochs, patience=None, seed=self.seed,
                         device=device, checkpoint=checkpoint,
                         settings={**self._settings(), "n_pool": len(data),
                                   "pool": _fingerprint(data)},
                         on_step=on_step,
                         desc=f"{self.method} ({backbone.spec.name})",
                         main_process=rank == 0)
        history = loop.run(task)
        method.eval()
        self.backbone_ = method.backbone.eval()
        if channels_last:
            self.backbone_.to(memory_format=torch.contiguous_format)
        self.method_ = method
        self.rank_, self.world_ = rank, world
        self.n_pool_ = len(data)
        self.pool_fingerprint_ = _fingerprint(data)
        self.history_ = _history_table(history, initial, lrs, steps)
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def save(self, path, name=None, overwrite=False, plot=True):
        """
        Write the pretrained backbone as a folder and register it.

        The folder holds ``backbone.safetensors`` (the model's state dict),
        ``backbone.json`` (its registry entry, the method, schedule,
        augmentations and preprocessing, the pool's size and checksum),
        ``history.ecsv`` and, with ``plot``, ``history.png`` (loss and k-NN
        error against epoch). Any stage then loads it by path
        (``Classifier(backbone="my_backbone/")``) or, in the local weights
        folder (``$ASTROFM_WEIGHTS/<name>/``), by name.

        Parameters
        ----------
        path : str or `~pathlib.Path`
            The folder (written atomically).
        name : str, optional
            The registry name (default: the folder's name).
        overwrite : bool, optional
            Replace an existing folder.
        plot : bool, optional
            Draw ``history.png``.

        Returns
        -------
        spec : `~astrofmtools.backbones.BackboneSpec`
            The registered entry.
        """
        import json
        from safetensors.torch import save_file
        from ..backbones import BACKBONE_FORMAT, register_backbone_folder
        from ..backbones.folders import CONFIG, WEIGHTS
        from ..utils import atomic_folder
        if not hasattr(self, "backbone_"):
            raise InputError("Call fit before save.")
        path = Path(path)
        name = name or path.name
        base = self.backbone_.spec
        pre = self.preprocess_
        spec = base.to_dict()
        spec.update(name=name, family="self-supervised", pretrained_tag=None, hf_hub_id=None,
                    local_file=WEIGHTS, input_size=pre.input_size,
                    notes=(f"{self.method} pretraining of {base.name} on {self.n_pool_} "
                           f"unlabelled cutouts"))
        fmt, version = BACKBONE_FORMAT
        config = {"format": fmt, "format_version": version, "spec": spec,
                  "base": {"name": base.name, "weights": self.backbone_.weights},
                  "in_chans": self.backbone_.in_chans, "preprocess": pre.to_dict(),
                  "pretraining": self._settings(), "n_pool": self.n_pool_,
                  "pool_fingerprint": self.pool_fingerprint_,
                  "final_loss": float(self.history_["loss"][-1]),
                  "provenance": provenance(("torch", "timm", "lightly"))}
        tensors = {k: v.detach().cpu().contiguous().clone()
                   for k, v in self.backbone_.model.state_dict().items()}
        with atomic_folder(path, overwrite=overwrite) as tmp:
            save_file(tensors, str(tmp / WEIGHTS), metadata={"format": "pt"})
            (tmp / CONFIG).write_text(json.dumps(json_value(config), indent=2,
                                                 allow_nan=False))
            self.history_.write(tmp / "history.ecsv", format="ascii.ecsv")
            if plot:
                from .plots import plot_history
                plot_history(self.history_, tmp / "history.png",
                             title=f"{self.method} pretraining of {base.name}")
        self.spec_ = register_backbone_folder(path)
        return self.spec_


def _fingerprint(data):
    """A short checksum of the pool's pixels (what the run was made from)."""
    import hashlib
    h = hashlib.sha256(np.ascontiguousarray(data).view(np.uint8))
    return h.hexdigest()[:16]


def _history_table(history, initial, lrs, steps):
    """The per-epoch history, with the monitor before pretraining as epoch 0."""
    rows = [{"epoch": 0, "loss": math.nan, "knn_error": initial, "lr": math.nan,
             "seconds": 0.0}]
    for record in history:
        epoch = int(record["epoch"])
        rows.append({"epoch": epoch, "loss": float(record["loss"]),
                     "knn_error": float(record.get("knn_error", math.nan)),
                     "lr": float(lrs.get(epoch - 1, math.nan)),
                     "seconds": float(record["seconds"])})
    return Table(rows=[[r[k] for k in rows[0]] for r in rows], names=list(rows[0]),
                 dtype=[np.int64, float, float, float, float])

