# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
How a `~astrofmtools.classify.Classifier` trains: a head on fixed features, or
the backbone and head together under its strategy, in the shared training loop.
"""

import numpy as np
from astropy.table import Table

from ..exceptions import InputError
from ..utils import json_value
from .inputs import _hash_array

__all__ = []


def _checkpoint(clf):
    from pathlib import Path
    return None if clf.checkpoint_dir is None else Path(clf.checkpoint_dir) / "checkpoint.pt"


def _run_settings(clf, *arrays):
    """What defines a training run (a checkpoint made with others is refused)."""
    settings = dict(clf._params())
    settings.pop("epochs")
    settings.pop("cache")
    settings.update({"backbone": clf.spec_.to_dict(), "weights": clf.backbone_.weights,
                     "preprocess": clf.preprocess_.to_dict(),
                     "classes": json_value(clf.classes_.tolist()),
                     "data": _hash_array(*arrays)})
    return settings


def _class_weight(clf, y):
    from .train import class_weights
    return None if clf.class_weight is None else class_weights(y, len(clf.classes_))


def _augmenter(augment):
    from ..exceptions import InputError
    from .augment import SkyAugment
    if augment is True:
        return SkyAugment()
    if augment is False or augment is None:
        return None
    if isinstance(augment, SkyAugment):
        return augment
    if isinstance(augment, dict):
        return SkyAugment(**augment)
    raise InputError(f"augment must be True, False, a SkyAugment or a dict; got "
                     f"{type(augment).__name__}.")


def fit_frozen(clf, x_train, y_train, x_val, y_val):
    """Fit the head on fixed features: in closed form (kNN, logistic) or by gradient descent."""
    import torch
    from .heads import get_head, make_head

    device = clf._device()
    n_classes = len(clf.classes_)
    entry = get_head(clf.head)
    history = []
    if entry.fit is not None:
        head = entry.fit(x_train, y_train, n_classes, x_val, y_val,
                         class_weight=clf.class_weight, seed=clf.seed, **clf.head_options)
        if getattr(head, "C", None) is not None:
            clf.C_ = head.C
    else:
        torch.manual_seed(clf.seed)
        head = make_head(clf.head, x_train.shape[1], n_classes, **clf.head_options)
        head = head.fit_statistics(x_train).to(device)
        history = train_head(clf, head, x_train, y_train, x_val, y_val,
                             checkpoint=_checkpoint(clf), settings=clf.settings)
    clf.head_ = head.to(device).eval()
    clf.n_parameters_ = (sum(p.numel() for p in clf.backbone_.parameters())
                         + sum(p.numel() for p in head.parameters()))
    clf.n_trainable_ = int(sum(p.numel() for p in head.parameters()))
    clf.model_ = None
    return history


def _loss(settings):
    """The cross-entropy of the schedule (with its label smoothing), or None: the default."""
    if not settings.label_smoothing:
        return None
    import torch
    smoothing = settings.label_smoothing

    def loss(logits, y, weight):
        return torch.nn.functional.cross_entropy(logits.float(), y, weight=weight,
                                                 label_smoothing=smoothing)
    return loss


def _loop(schedule, model, optimizer, **kwargs):
    """The training loop of a schedule: early stopping on the validation loss with the
    best epoch's weights (``keep_best``), or every epoch with the last weights."""
    from ..adapt import TrainLoop

    class LastWeightsLoop(TrainLoop):
        # the validation split is scored every epoch, but chooses nothing: no snapshot
        # of the best epoch, no early stop (the loop's rule without a validation split)
        def _update_best(self, record, has_val, epoch):
            super()._update_best(record, False, epoch)

    loop = TrainLoop if schedule.keep_best else LastWeightsLoop
    return loop(model, optimizer, epochs=schedule.epochs,
                patience=schedule.patience if schedule.keep_best else None, **kwargs)


def train_head(clf, head, x_train, y_train, x_val, y_val, checkpoint, settings, lr=None,
               desc=None):
    """Train a torch head on fixed features (the frozen strategy, and the linear probe
    that starts the end-to-end strategies)."""
    import torch
    from ..adapt import SupervisedTask, cosine_factor
    device = clf._device()
    lr = settings.lr if lr is None else lr
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=settings.weight_decay)

    def on_epoch(epoch):
        for group in optimizer.param_groups:
            group["lr"] = lr * cosine_factor(epoch, settings.epochs)

    loop = _loop(settings, head, optimizer, seed=clf.seed, device=device, checkpoint=checkpoint,
                 settings=_run_settings(clf, x_train, y_train) if checkpoint else None,
                 on_epoch=on_epoch, desc=desc or f"{clf.head} head")

    def transform(x):  # the head's fixed part (standardisation, whitening), once
        if x is None:
            return None
        head.eval()
        with torch.no_grad():
            return torch.cat([head.transform(torch.from_numpy(x[i:i + 4096]).to(device))
                              .float().cpu() for i in range(0, len(x), 4096)])

    task = SupervisedTask(head.classify, transform(x_train), torch.from_numpy(y_train),
                          transform(x_val), torch.from_numpy(y_val),
                          batch_size=settings.batch_size,
                          class_weight=_class_weight(clf, y_train), loss=_loss(settings))
    history = loop.run(task)
    for record in history:
        record["phase"] = "head"
    return history


def fit_end_to_end(clf, train_inputs, y_train, val_inputs, y_val):
    """Train the backbone (as the strategy says) and the head together on images."""
    import torch
    from ..adapt import SupervisedTask, cosine_factor, get_strategy
    from .heads import make_head
    from .model import ClassifierModel
    from .predicting import images_of

    device = clf._device()
    settings = clf.settings
    x_train = images_of(clf, train_inputs)
    x_val = images_of(clf, val_inputs) if val_inputs is not None else None
    torch.manual_seed(clf.seed)
    strategy = clf.strategy_
    strategy.prepare(clf.backbone_)
    dim = clf.backbone_.feature_dim_for(clf.pooling or clf.backbone_.pooling)
    head = make_head(clf.head, dim, len(clf.classes_), **clf.head_options)
    pre = clf.preprocess_
    # a pretrained CNN keeps its batch-norm statistics; one from random weights learns them
    model = ClassifierModel(clf.backbone_, head, clf.pooling, pre.mean, pre.std, strategy,
                            train_norm_stats=clf._weights_reference() == "random").to(device)
    # the head's input statistics: features of the training images before adaptation
    model.eval()

    def features(x):
        with torch.no_grad():
            return torch.cat([model.features(x[i:i + 64].to(device)).float().cpu()
                              for i in range(0, len(x), 64)]).numpy()

    feats = features(x_train)
    model.head.fit_statistics(feats)
    head_lr = settings.effective_head_lr
    if clf.probe_init:
        # linear probing, then fine-tuning (LP-FT): the head starts from its fit to the
        # unadapted features, so the first updates of the backbone follow a sensible
        # head rather than a random one
        probe = train_head(clf, model.head, feats, y_train,
                           None if x_val is None else features(x_val), y_val,
                           checkpoint=None,
                           settings=get_strategy("frozen").settings(
                               weight_decay=settings.weight_decay),
                           lr=head_lr, desc="head probe")
        clf.probe_epochs_ = len(probe)

    epochs = settings.epochs
    warmup = min(settings.head_warmup_epochs, epochs)
    groups = [{"params": list(model.head.parameters()), "lr": head_lr, "base_lr": head_lr,
               "weight_decay": settings.weight_decay}]
    groups += strategy.param_groups(clf.backbone_, settings.lr, settings.layer_decay,
                                    settings.weight_decay)
    optimizer = torch.optim.AdamW(groups)
    main = max(epochs - warmup, 1)

    def on_epoch(epoch):
        model.configure(warmup=epoch < warmup)
        factor = 1.0 if epoch < warmup else cosine_factor(epoch - warmup, main)
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor

    model.configure(warmup=False)
    clf.n_trainable_ = model.n_trainable()
    clf.n_parameters_ = int(sum(p.numel() for p in model.parameters()))
    checkpoint = _checkpoint(clf)
    loop = _loop(settings, model, optimizer, seed=clf.seed, device=device,
                 checkpoint=checkpoint,
                 settings=(_run_settings(clf, x_train.numpy(), y_train)
                           if checkpoint else None),
                 on_epoch=on_epoch, desc=clf.strategy)
    task = SupervisedTask(model, x_train, torch.from_numpy(y_train), x_val,
                          torch.from_numpy(y_val), batch_size=settings.batch_size,
                          class_weight=_class_weight(clf, y_train),
                          augment=_augmenter(clf.augment), loss=_loss(settings))
    history = loop.run(task)
    for record in history:
        record["phase"] = "head" if record["epoch"] <= warmup else "all"
    model.configure(warmup=False)
    model.eval()
    clf.model_ = model
    clf.head_ = model.head
    return history



def history_table(history):
    """The training history (a list of per-epoch dicts) as a Table."""
    names = ["epoch", "phase", "train_loss", "val_loss", "val_accuracy", "val_macro_f1",
             "seconds"]
    return Table({
        "epoch": np.array([r["epoch"] for r in history], dtype=np.int64),
        "phase": np.array([r.get("phase", "head") for r in history], dtype="U4"),
        **{n: np.array([np.nan if r[n] is None else r[n] for r in history], dtype=float)
           for n in names[2:]},
    }, names=names)


def validation_scores(clf, val_inputs, x_val, y_val):
    """Accuracy and macro-F1 of the fitted model on the validation split (None without one):
    on its features (``x_val``) when the backbone did not change, else on its images."""
    from sklearn.metrics import f1_score
    from .predicting import predict_probabilities
    if y_val is None or len(y_val) == 0:
        return None
    proba = predict_probabilities(clf, val_inputs, features=x_val if clf.model_ is None
                                  else None)
    pred = np.asarray(proba).argmax(axis=1)
    return {"n": int(len(y_val)), "accuracy": float(np.mean(pred == y_val)),
            "macro_f1": float(f1_score(y_val, pred, average="macro",
                                       labels=np.union1d(y_val, pred)))}


def fit_classifier(clf, cutouts, labels, validation=None):
    """`Classifier.fit`: split the labelled cutouts (label fraction, calibration, validation),
    load the backbone, train under the strategy, then fit the trust statistics."""
    import time
    import torch
    from .config import in_chans, load_backbone_for, make_preprocess, resolve_tta
    from .inputs import _as_inputs, _as_labels, _check_not_blank
    from .predicting import features_of
    from .trust import fit_trust, split_calibration
    from .train import label_fraction_indices, train_val_split

    t_start = time.perf_counter()
    clf.tta_ = resolve_tta(clf._tta, clf._device())  # 'auto': on this fit's device
    inputs, table = _as_inputs(cutouts)
    _check_not_blank(inputs, "training cutouts")
    y_all = _as_labels(labels, table, len(table))
    classes = np.unique(y_all)
    if len(classes) < 2:
        raise InputError(f"Training needs at least two classes; the labels hold only "
                         f"{classes.tolist()}.")
    keep = label_fraction_indices(y_all, clf.label_fraction, seed=clf.seed)
    y_index = np.searchsorted(classes, y_all)
    keep, cal_sel = split_calibration(y_index, keep, clf.calibration_fraction, clf.seed)
    val_inputs = None
    if validation is not None:
        try:
            val_cutouts, val_labels = validation
        except (TypeError, ValueError):
            raise InputError("validation must be a (cutouts, labels) pair.") from None
        val_inputs, val_table = _as_inputs(val_cutouts, "validation cutouts")
        _check_not_blank(val_inputs, "validation cutouts")
        y_val_raw = _as_labels(val_labels, val_table, len(val_table))
        unknown = np.setdiff1d(y_val_raw, classes)
        if len(unknown):
            raise InputError(f"Validation labels {unknown.tolist()} are not among the "
                             f"training classes {classes.tolist()}.")
        train_sel, val_sel = keep, None
        y_val = np.searchsorted(classes, y_val_raw)
    else:
        train_idx, val_idx = train_val_split(y_index[keep], clf.val_fraction,
                                             seed=clf.seed)
        train_sel, val_sel = keep[train_idx], keep[val_idx]
        y_val = y_index[val_sel]
    y_train = y_index[train_sel]
    clf.classes_ = classes
    clf.n_train_, clf.n_val_ = int(len(y_train)), int(len(y_val))

    torch.manual_seed(clf.seed)
    clf.backbone_ = load_backbone_for(clf, in_chans(clf, inputs))
    clf.preprocess_ = make_preprocess(clf, clf.backbone_)
    pre = clf.preprocess_
    if pre.zoom == "auto":  # fixed on the training set, so that predictions use the same
        clf.preprocess_ = pre.replace(zoom=pre.resolve_zoom(inputs))
    if not clf.strategy_.trains_backbone:
        if clf.extra_columns:
            from .fusion import fit_extra
            fit_extra(clf, inputs, train_sel)
        # features of every given cutout (cached): sweeps over label fractions and
        # heads on the same data reuse them
        features = features_of(clf, inputs)
        x_train = features[train_sel]
        if val_inputs is not None:
            x_val = features_of(clf, val_inputs)
        else:
            x_val = features[val_sel] if len(val_sel) else None
        history = fit_frozen(clf, x_train, y_train, x_val, y_val)
    else:
        features = x_val = None
        if val_inputs is None and len(val_sel):
            val_inputs = inputs[np.asarray(val_sel)]
        history = fit_end_to_end(clf, inputs[np.asarray(train_sel)], y_train, val_inputs,
                                 y_val)
    fit_trust(clf, inputs, features, train_sel, val_inputs, x_val, y_train, y_val,
              cal_sel, y_index[cal_sel])
    clf.n_calibration_ = int(len(cal_sel))
    clf.validation_scores_ = validation_scores(clf, val_inputs, x_val, y_val)
    clf.history_ = history_table(history)
    clf.fit_seconds_ = time.perf_counter() - t_start
    clf._fitted = True
    return clf
