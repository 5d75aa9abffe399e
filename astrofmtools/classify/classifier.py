# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The `Classifier` estimator: a backbone, a head and an adaptation strategy."""

import hashlib
import math
import time
from pathlib import Path

import numpy as np
from astropy.table import QTable, Table

from ..exceptions import InputError
from ..utils import json_value

__all__ = ["Classifier", "STRATEGY_DEFAULTS"]

_FORMAT = "astrofmtools.Classifier"
_FORMAT_VERSION = 1
_CONFIG = "config.json"
_WEIGHTS = "weights.safetensors"

#: Per-strategy defaults of the `Classifier` settings left as None.
STRATEGY_DEFAULTS = {
    "frozen": {"epochs": 200, "lr": 1e-3, "batch_size": 64, "patience": 20,
               "head_warmup_epochs": 0},
    "partial": {"epochs": 30, "lr": 3e-4, "batch_size": 32, "patience": 8,
                "head_warmup_epochs": 3},
    "finetune": {"epochs": 30, "lr": 1e-4, "batch_size": 32, "patience": 8,
                 "head_warmup_epochs": 3},
    "lora": {"epochs": 30, "lr": 1e-3, "batch_size": 32, "patience": 8,
             "head_warmup_epochs": 1},
}


def _preprocess_class():
    """The Preprocess class (imported lazily: it needs torch)."""
    from ..backbones import Preprocess
    return Preprocess


_ML_PACKAGES = ("torch", "torchvision", "timm", "peft", "safetensors", "scikit-learn")


# --------------------------------------------------------------------------- inputs
def _as_inputs(cutouts, what="cutouts"):
    """
    Parse what fit/predict accept.

    Returns ``(inputs, table)``: inputs is a CutoutStack or an (N, H, W) /
    (N, C, H, W) float32 array (what `Preprocess` takes), table a QTable of
    the input rows (the stack's table, or an ``index`` column).
    """
    from ..cutouts import CutoutStack
    if isinstance(cutouts, CutoutStack):
        return cutouts, cutouts.table
    if isinstance(cutouts, (list, tuple)) and cutouts and all(
            isinstance(c, CutoutStack) for c in cutouts):
        stack = CutoutStack.concatenate(list(cutouts))
        return stack, stack.table
    if isinstance(cutouts, (list, tuple)) and any(isinstance(c, CutoutStack) for c in cutouts):
        raise InputError(f"{what}: a list must hold only CutoutStacks.")
    try:
        data = np.asarray(cutouts, dtype=np.float32)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a CutoutStack, a list of them, or an N x H x W "
                         f"(x C) array; got {type(cutouts).__name__}.") from None
    if data.ndim == 4 and data.shape[-1] <= 4 < min(data.shape[1], data.shape[2]):
        data = np.ascontiguousarray(np.moveaxis(data, -1, 1))  # N, H, W, C -> N, C, H, W
    if data.ndim not in (3, 4) or data.shape[0] == 0:
        raise InputError(f"{what} must be an (N, H, W), (N, H, W, C) or (N, C, H, W) array "
                         f"with N >= 1; got shape {data.shape}.")
    table = QTable({"index": np.arange(len(data))})
    table["index"].description = "row of the input array (0-based)"
    return data, table


def _subset(inputs, idx):
    return inputs[np.asarray(idx)]


def _as_labels(labels, table, n):
    """The label of each input, as a 1-D numpy array (strings or integers)."""
    if isinstance(labels, str):
        if labels not in table.colnames:
            raise InputError(f"Label column {labels!r} is not in the cutout table (columns: "
                             f"{', '.join(table.colnames)}).")
        values = table[labels]
        name = f"label column {labels!r}"
    else:
        values = labels
        name = "labels"
    if getattr(values, "mask", None) is not None and np.any(values.mask):
        raise InputError(f"The {name} has {int(np.sum(values.mask))} missing (masked) "
                         "values; keep only labelled cutouts for training.")
    values = np.asarray(values)
    if values.dtype.kind == "S":
        values = np.char.decode(values, "utf-8")
    if values.ndim != 1 or len(values) != n:
        raise InputError(f"The {name} needs one value per cutout ({n}); got shape "
                         f"{values.shape}.")
    if values.dtype.kind == "U":
        values = np.char.strip(values)
    elif values.dtype.kind == "f":
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise InputError(f"The {name} must be class names or integers; got non-integer "
                             "numbers.")
        values = values.astype(np.int64)
    elif values.dtype.kind not in "iub":
        raise InputError(f"The {name} must be class names or integers; got dtype "
                         f"{values.dtype}.")
    if values.dtype.kind == "b":
        values = values.astype(np.int64)
    return values


def _hash_array(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.shape).encode())
        h.update(str(a.dtype).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


class Classifier:
    """
    Classify sky cutouts with a foundation-model backbone, a head and an
    adaptation strategy.

    ``fit`` learns from labelled cutouts, ``predict`` returns the input
    table with the predicted class and the class probabilities, ``save``
    writes a folder (JSON config and safetensors weights) that ``load``
    reads back without the training data.

    Parameters
    ----------
    backbone : str, `~astrofmtools.backbones.BackboneSpec` or `~astrofmtools.backbones.Backbone`
        Default ``"efficientnet_lite0"``. A registered backbone name
        (`~astrofmtools.backbones.list_backbones`), a spec (a custom entry,
        stored in the saved config), or a loaded backbone (used as it is,
        not copied: ``lora`` adds its adapters to it, ``finetune`` changes
        its weights).
    head : {'linear', 'mlp', 'whitening', 'knn', 'logistic'}, optional
        ``linear``: a linear layer on standardised features. ``mlp``:
        hidden layers (``hidden``, ``dropout``). ``whitening``: features
        whitened with statistics of the training set (Ledoit-Wolf
        covariance), then linear. ``knn``: cosine k-nearest neighbours
        (``k``). ``logistic``: scikit-learn's logistic regression on
        standardised features, with its regularisation chosen on the
        validation split. ``knn`` and ``logistic`` work on frozen features
        only.
    strategy : {'frozen', 'partial', 'finetune', 'lora'}, optional
        How much of the backbone trains (see
        `~astrofmtools.classify.strategies`): ``frozen`` (features once,
        the head trains in seconds), ``partial`` (the last ``n_blocks``
        layer groups), ``finetune`` (everything, after ``head_warmup_epochs``
        with the backbone frozen, with layer-wise learning-rate decay
        ``layer_decay``) or ``lora`` (low-rank adapters of rank ``lora_r``).
    weights : None, str or path, optional
        The backbone's weights (`~astrofmtools.backbones.load_backbone`):
        None for the registry default (offline first), a file, or
        ``"random"``.
    preprocess : `~astrofmtools.backbones.Preprocess` or dict, optional
        How cutouts become model input (noise floor, stretch, channels,
        zoom, input size). Default: the backbone's
        ``default_preprocess()``; a dict changes some of its settings
        (``{"input_size": 64}``).
    pooling : str, optional
        Feature pooling (``'cls'``, ``'mean'``, ``'cls+mean'``; default the
        backbone's).
    epochs, lr, batch_size, patience, head_warmup_epochs : optional
        Training schedule; None takes the strategy's default
        (`STRATEGY_DEFAULTS`): ``frozen`` 200 epochs of the head at lr 1e-3, batch
        64, patience 20; end-to-end strategies 30 epochs, batch 32,
        patience 8, lr 3e-4 (``partial``, top group), 1e-4
        (``finetune``, top group), 1e-3 (``lora`` adapters), with 3, 3 and
        1 warm-up epochs of the head alone. The learning rate follows a
        cosine decay after the warm-up.
    head_lr : float, optional
        Learning rate of the head in the end-to-end strategies (default
        1e-3).
    weight_decay : float, optional
        AdamW weight decay.
    label_fraction : float, optional
        Use only this fraction of the labelled samples (per class, seeded):
        label-efficiency curves at 0.1, 0.3, 0.5, 1.0.
    val_fraction : float, optional
        Fraction of each class held out for early stopping (0: none; the
        last epoch is kept).
    augment : bool or `~astrofmtools.classify.SkyAugment`, optional
        Augment training images of the end-to-end strategies (random
        360-degree rotation, flip, resized crop of 80-100% of the area;
        no colour transforms). True: `SkyAugment` defaults.
    tta : bool, optional
        Test-time augmentation: average the class probabilities (end-to-end
        strategies) or the features (``frozen``, for training and
        prediction alike) over the eight flips and quarter turns.
    class_weight : 'balanced' or None, optional
        Weight the loss of each class inversely to its count
        (`~astrofmtools.classify.class_weights`).
    seed : int, optional
        Seed of the label fraction, the validation split, the
        initialisation, the batches and the augmentations.
    device : str, optional
        ``"cuda"`` when available, else ``"cpu"``. Mixed precision is used
        on CUDA only.
    n_blocks : int, optional
        ``partial``: number of the last layer groups that train.
    layer_decay : float, optional
        ``finetune`` and ``partial``: each layer group trains this many
        times slower than the one above it.
    lora_r, lora_alpha : optional
        ``lora``: rank and scaling of the adapters.
    checkpoint_dir : str or path, optional
        Folder of a per-epoch checkpoint (``checkpoint.pt``): ``fit``
        resumes from it when it exists (same settings and data), so an
        interrupted run continues where it stopped.
    hidden, dropout : optional
        ``mlp`` head: hidden widths and dropout.
    k : int, optional
        ``knn`` head: number of neighbours.
    C : float, optional
        ``logistic`` head: inverse regularisation (None: chosen on the
        validation split).
    probe_init : bool, optional
        End-to-end strategies: first fit the head to the features of the
        unadapted backbone (a linear probe, seconds), then adapt
        (LP-FT, Kumar et al. 2022): the backbone's first updates then follow
        a sensible head instead of a random one.
    cache : bool, optional
        ``frozen``: cache the features on disk
        (`~astrofmtools.backbones.extract_features`), so that heads and
        label fractions on the same data reuse them.

    Attributes
    ----------
    classes_ : `~numpy.ndarray`
        The sorted class labels (strings or integers).
    backbone_ : `~astrofmtools.backbones.Backbone`
        The loaded backbone (with adapters for ``lora``).
    head_ : `torch.nn.Module`
        The fitted head.
    preprocess_ : `~astrofmtools.backbones.Preprocess`
        The preprocessing used.
    n_parameters_, n_trainable_ : int
        Parameters of backbone and head, and those trained (for ``lora``
        the adapters and the head).
    history_ : `~astropy.table.Table`
        One row per epoch: ``epoch``, ``phase`` (``head`` during warm-up,
        else ``all``), ``train_loss``, ``val_loss``, ``val_accuracy``,
        ``val_macro_f1``, ``seconds``.
    n_train_, n_val_ : int
        Samples used for training and for validation.

    Examples
    --------
    Two classes of 24x24 cutouts, compact sources and doubles, classified by a
    tiny randomly initialised ViT on frozen features:

    >>> import numpy as np
    >>> from astrofmtools.backbones import BackboneSpec
    >>> from astrofmtools.classify import Classifier
    >>> yy, xx = np.mgrid[:24, :24] - 11.5
    >>> def source(dx):
    ...     return np.exp(-((xx - dx) ** 2 + yy ** 2) / 4) + np.exp(-((xx + dx) ** 2 + yy ** 2) / 4)
    >>> rng = np.random.default_rng(0)
    >>> images = np.array([source(0 if i % 2 else 6) + 0.05 * rng.normal(size=(24, 24))
    ...                    for i in range(40)])
    >>> labels = np.where(np.arange(40) % 2, "compact", "double")
    >>> spec = BackboneSpec(name="vit_doc", timm_name="vit_tiny_patch16_224", patch_size=8,
    ...                     input_size=32, feature_dim=32, licence="none",
    ...                     timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 2,
    ...                                  "embed_dim": 32, "num_heads": 2})
    >>> clf = Classifier(spec, weights="random", head="logistic", device="cpu", cache=False)
    >>> clf.fit(images[:30], labels[:30])
    <Classifier: vit_doc, head='logistic', strategy='frozen', 2 classes>
    >>> table = clf.predict(images[30:])
    >>> table.colnames
    ['index', 'label', 'probability', 'p_compact', 'p_double']
    >>> float(np.mean(table["label"] == labels[30:]))
    1.0
    >>> clf.save("doubles_model")
    >>> again = Classifier.load("doubles_model")
    >>> again.predict(images[30:])["label"].tolist() == table["label"].tolist()
    True
    """

    def __init__(self, backbone="efficientnet_lite0", head="linear", strategy="frozen",
                 weights=None, preprocess=None, pooling=None, epochs=None, lr=None,
                 batch_size=None, label_fraction=1.0, val_fraction=0.15, patience=None,
                 augment=True, tta=True, class_weight="balanced", seed=0, device=None,
                 n_blocks=2, head_warmup_epochs=None, layer_decay=0.75, lora_r=8,
                 lora_alpha=16, checkpoint_dir=None, hidden=(256,), dropout=0.2, k=10,
                 head_lr=None, weight_decay=0.01, C=None, cache=True, probe_init=True):
        from .heads import HEADS
        from .strategies import STRATEGIES
        if head not in HEADS:
            raise InputError(f"Unknown head {head!r}; choose one of {', '.join(HEADS)}.")
        if strategy not in STRATEGIES:
            raise InputError(f"Unknown strategy {strategy!r}; choose one of "
                             f"{', '.join(STRATEGIES)}.")
        if head in ("knn", "logistic") and strategy != "frozen":
            raise InputError(f"The {head!r} head works on frozen features only; use "
                             f"strategy='frozen' or a 'linear', 'mlp' or 'whitening' head.")
        if class_weight not in ("balanced", None):
            raise InputError(f"class_weight must be 'balanced' or None; got {class_weight!r}.")
        for name, value in (("label_fraction", label_fraction),):
            if not 0 < float(value) <= 1:
                raise InputError(f"{name} must be in (0, 1]; got {value}.")
        if not 0 <= float(val_fraction) < 1:
            raise InputError(f"val_fraction must be in [0, 1); got {val_fraction}.")
        if not 0 < float(layer_decay) <= 1:
            raise InputError(f"layer_decay must be in (0, 1]; got {layer_decay}.")
        self.backbone = backbone
        self.head = head
        self.strategy = strategy
        self.weights = None if weights is None else str(weights)
        self.preprocess = preprocess
        self.pooling = pooling
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.label_fraction = float(label_fraction)
        self.val_fraction = float(val_fraction)
        self.patience = patience
        self.augment = augment
        self.tta = bool(tta)
        self.class_weight = class_weight
        self.seed = int(seed)
        self.device = device
        self.n_blocks = int(n_blocks)
        self.head_warmup_epochs = head_warmup_epochs
        self.layer_decay = float(layer_decay)
        self.lora_r = int(lora_r)
        self.lora_alpha = float(lora_alpha)
        self.checkpoint_dir = None if checkpoint_dir is None else str(checkpoint_dir)
        self.hidden = (int(hidden),) if np.isscalar(hidden) else tuple(int(h) for h in hidden)
        self.dropout = float(dropout)
        self.k = int(k)
        self.head_lr = head_lr
        self.weight_decay = float(weight_decay)
        self.C = None if C is None else float(C)
        self.cache = bool(cache)
        self.probe_init = bool(probe_init)
        self.classes_ = None
        self._fitted = False

    # ------------------------------------------------------------------ settings
    def _setting(self, name):
        value = getattr(self, name)
        return STRATEGY_DEFAULTS[self.strategy][name] if value is None else value

    def _params(self):
        """The constructor arguments that define the model (for the saved config)."""
        augment = self.augment
        if not isinstance(augment, bool):
            augment = augment.to_dict()
        return json_value({
            "head": self.head, "strategy": self.strategy, "pooling": self.pooling,
            "epochs": self._setting("epochs"), "lr": self._setting("lr"),
            "batch_size": self._setting("batch_size"), "label_fraction": self.label_fraction,
            "val_fraction": self.val_fraction, "patience": self._setting("patience"),
            "augment": augment, "tta": self.tta, "class_weight": self.class_weight,
            "seed": self.seed, "n_blocks": self.n_blocks,
            "head_warmup_epochs": self._setting("head_warmup_epochs"),
            "layer_decay": self.layer_decay, "lora_r": self.lora_r,
            "lora_alpha": self.lora_alpha, "hidden": list(self.hidden),
            "dropout": self.dropout, "k": self.k, "head_lr": self._head_lr(),
            "weight_decay": self.weight_decay, "C": self.C, "cache": self.cache,
            "probe_init": self.probe_init,
        })

    def _head_lr(self):
        if self.strategy == "frozen":
            return self._setting("lr")
        return 1e-3 if self.head_lr is None else float(self.head_lr)

    def __repr__(self):
        name = getattr(getattr(self, "spec_", None), "name", None)
        if name is None:
            b = self.backbone
            name = b if isinstance(b, str) else getattr(getattr(b, "spec", b), "name", b)
        classes = "" if self.classes_ is None else f", {len(self.classes_)} classes"
        return (f"<Classifier: {name}, head={self.head!r}, strategy={self.strategy!r}"
                f"{classes}>")

    def _device(self):
        from ..backbones import default_device
        return default_device(self.device)

    def _weights_reference(self):
        """How `load` finds the backbone's weights again: None (registry default), a file
        or 'random'."""
        if self.weights is not None:
            return self.weights
        from ..backbones import Backbone
        if isinstance(self.backbone, Backbone):
            source = self.backbone.weights
            if source == "random" or Path(source).is_file():
                return source
        return None

    def _load_backbone(self, in_chans):
        from ..backbones import Backbone, BackboneSpec, get_backbone_spec, load_backbone
        if isinstance(self.backbone, Backbone):
            backbone = self.backbone.to(self._device())
        else:
            spec = (self.backbone if isinstance(self.backbone, BackboneSpec)
                    else get_backbone_spec(self.backbone))
            backbone = load_backbone(spec, weights=self.weights, device=self._device(),
                                     in_chans=in_chans)
        self.spec_ = backbone.spec
        return backbone

    def _make_preprocess(self, backbone):
        from ..backbones import Preprocess
        if isinstance(self.preprocess, Preprocess):
            return self.preprocess
        if self.preprocess is None:
            return backbone.default_preprocess()
        if isinstance(self.preprocess, dict):
            try:
                return backbone.default_preprocess(**self.preprocess)
            except TypeError as exc:
                raise InputError(f"Unknown preprocess setting: {exc}") from None
        raise InputError(f"preprocess must be a Preprocess, a dict of settings or None; got "
                         f"{type(self.preprocess).__name__}.")

    def _in_chans(self, inputs):
        """
        Input channels of the backbone for these inputs: 3, unless the
        preprocessing feeds the bands as they are ('bands'). Multi-band
        cutouts with other than 1 or 3 bands (radio + infrared, say) get
        'bands' and a stem adapted to their number of bands by default.
        """
        pre = self.preprocess
        channels = (pre.get("channels") if isinstance(pre, dict)
                    else getattr(pre, "channels", None))
        data = inputs.data if hasattr(inputs, "data") else inputs
        n_bands = 1 if data.ndim == 3 else data.shape[1]
        if channels in (None, "auto") and n_bands not in (1, 3) and \
                not isinstance(pre, _preprocess_class()):
            self.preprocess = {**(pre or {}), "channels": "bands"}
            channels = "bands"
        if channels == "bands":
            return n_bands
        return 3

    # ------------------------------------------------------------------ features / images
    def _features(self, inputs):
        from ..backbones import extract_features
        return extract_features(self.backbone_, inputs, pooling=self.pooling,
                                batch_size=64, device=self._device(),
                                preprocess=self.preprocess_, cache=self.cache, tta=self.tta)

    def _images(self, inputs):
        import torch
        return torch.from_numpy(np.ascontiguousarray(self.preprocess_.to_array(inputs),
                                                     dtype=np.float32))

    def _augmenter(self):
        from .augment import SkyAugment
        if self.augment is True:
            return SkyAugment()
        if self.augment is False or self.augment is None:
            return None
        if isinstance(self.augment, SkyAugment):
            return self.augment
        if isinstance(self.augment, dict):
            return SkyAugment(**self.augment)
        raise InputError(f"augment must be True, False, a SkyAugment or a dict; got "
                         f"{type(self.augment).__name__}.")

    # ------------------------------------------------------------------ fit
    def fit(self, cutouts, labels, validation=None):
        """
        Train on labelled cutouts.

        Parameters
        ----------
        cutouts : `~astrofmtools.cutouts.CutoutStack`, list of them, or array
            The training cutouts: a stack, a list of stacks
            (concatenated), or an ``(N, H, W)``, ``(N, C, H, W)`` or
            ``(N, H, W, C)`` array of raw pixels (NaN allowed).
        labels : str or array-like
            One label per cutout (class names or integers), or the name of
            a column of the stack's table.
        validation : tuple, optional
            ``(cutouts, labels)`` of a fixed validation set for early
            stopping, instead of holding out ``val_fraction`` of the
            training set.

        Returns
        -------
        self : `Classifier`
        """
        import torch
        from .train import label_fraction_indices, train_val_split

        t_start = time.perf_counter()
        inputs, table = _as_inputs(cutouts)
        y_all = _as_labels(labels, table, len(table))
        classes = np.unique(y_all)
        if len(classes) < 2:
            raise InputError(f"Training needs at least two classes; the labels hold only "
                             f"{classes.tolist()}.")
        keep = label_fraction_indices(y_all, self.label_fraction, seed=self.seed)
        y_index = np.searchsorted(classes, y_all)
        val_inputs = None
        if validation is not None:
            try:
                val_cutouts, val_labels = validation
            except (TypeError, ValueError):
                raise InputError("validation must be a (cutouts, labels) pair.") from None
            val_inputs, val_table = _as_inputs(val_cutouts, "validation cutouts")
            y_val_raw = _as_labels(val_labels, val_table, len(val_table))
            unknown = np.setdiff1d(y_val_raw, classes)
            if len(unknown):
                raise InputError(f"Validation labels {unknown.tolist()} are not among the "
                                 f"training classes {classes.tolist()}.")
            train_sel, val_sel = keep, None
            y_val = np.searchsorted(classes, y_val_raw)
        else:
            train_idx, val_idx = train_val_split(y_index[keep], self.val_fraction,
                                                 seed=self.seed)
            train_sel, val_sel = keep[train_idx], keep[val_idx]
            y_val = y_index[val_sel]
        y_train = y_index[train_sel]
        self.classes_ = classes
        self.n_train_, self.n_val_ = int(len(y_train)), int(len(y_val))

        torch.manual_seed(self.seed)
        self.backbone_ = self._load_backbone(self._in_chans(inputs))
        self.preprocess_ = self._make_preprocess(self.backbone_)
        self._resolve_zoom(inputs)
        if self.strategy == "frozen":
            # features of every given cutout (cached): sweeps over label fractions and
            # heads on the same data reuse them
            features = self._features(inputs)
            x_train = features[train_sel]
            if val_inputs is not None:
                x_val = self._features(val_inputs)
            else:
                x_val = features[val_sel] if len(val_sel) else None
            history = self._fit_frozen(x_train, y_train, x_val, y_val)
        else:
            if val_inputs is None and len(val_sel):
                val_inputs = _subset(inputs, val_sel)
            history = self._fit_end_to_end(_subset(inputs, train_sel), y_train, val_inputs,
                                           y_val)
        self.history_ = self._history_table(history)
        self.fit_seconds_ = time.perf_counter() - t_start
        self._fitted = True
        return self

    def _resolve_zoom(self, inputs):
        """Fix an automatic zoom on the training set, so that predictions use the same."""
        pre = self.preprocess_
        if pre.zoom == "auto":
            self.preprocess_ = pre.replace(zoom=pre.resolve_zoom(inputs))

    def _checkpoint(self):
        if self.checkpoint_dir is None:
            return None
        return Path(self.checkpoint_dir) / "checkpoint.pt"

    def _run_settings(self, *arrays):
        settings = dict(self._params())
        settings.pop("epochs")
        settings.pop("cache")
        settings.update({"backbone": self.spec_.to_dict(), "weights": self.backbone_.weights,
                         "preprocess": self.preprocess_.to_dict(),
                         "classes": json_value(self.classes_.tolist()),
                         "data": _hash_array(*arrays)})
        return settings

    def _class_weight(self, y, n_classes):
        from .train import class_weights
        if self.class_weight is None:
            return None
        return class_weights(y, n_classes)

    def _fit_frozen(self, x_train, y_train, x_val, y_val):
        import torch
        from .heads import KNNHead, fit_logistic_head, make_head

        device = self._device()
        n_classes = len(self.classes_)
        dim = x_train.shape[1]
        history = []
        if self.head == "logistic":
            head = fit_logistic_head(x_train, y_train, n_classes, class_weight=self.class_weight,
                                     C=self.C, val_features=x_val, val_labels=y_val,
                                     seed=self.seed)
            self.C_ = head.C
        elif self.head == "knn":
            x_all = x_train if x_val is None else np.concatenate([x_train, x_val])
            y_all = y_train if x_val is None else np.concatenate([y_train, y_val])
            head = KNNHead(dim, n_classes, n_train=len(y_all), k=self.k)
            head.fit(x_all, y_all, class_weight=self._class_weight(y_all, n_classes))
        else:
            torch.manual_seed(self.seed)
            head = make_head(self.head, dim, n_classes, hidden=self.hidden,
                             dropout=self.dropout).fit_statistics(x_train).to(device)
            history = self._train_head(head, x_train, y_train, x_val, y_val,
                                       checkpoint=self._checkpoint(),
                                       lr=float(self._setting("lr")),
                                       epochs=int(self._setting("epochs")),
                                       patience=self._setting("patience"),
                                       batch_size=self._setting("batch_size"))
        self.head_ = head.to(device).eval()
        self.n_parameters_ = (sum(p.numel() for p in self.backbone_.parameters())
                              + sum(p.numel() for p in head.parameters()))
        self.n_trainable_ = 0 if self.head == "knn" else int(sum(p.numel()
                                                                 for p in head.parameters()))
        self.model_ = None
        return history

    def _train_head(self, head, x_train, y_train, x_val, y_val, checkpoint, lr, epochs,
                    patience, batch_size, desc=None):
        """Train a torch head on fixed features (frozen strategy, and the linear probe that
        starts the end-to-end strategies)."""
        import torch
        from .train import TrainLoop
        optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=self.weight_decay)

        def schedule(epoch):
            for group in optimizer.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs))

        loop = TrainLoop(head, optimizer, epochs=epochs, patience=patience,
                         batch_size=batch_size,
                         class_weight=self._class_weight(y_train, len(self.classes_)),
                         seed=self.seed, device=self._device(), checkpoint=checkpoint,
                         settings=self._run_settings(x_train, y_train) if checkpoint else None,
                         scheduler=schedule, desc=desc or f"{self.head} head")
        device = self._device()

        def transform(x):  # the head's fixed part (standardisation, whitening), once
            if x is None:
                return None
            head.eval()
            with torch.no_grad():
                return torch.cat([head.transform(torch.from_numpy(x[i:i + 4096]).to(device))
                                  .float().cpu() for i in range(0, len(x), 4096)])

        history = loop.run(head.classify, transform(x_train), torch.from_numpy(y_train),
                           transform(x_val), torch.from_numpy(y_val))
        for record in history:
            record["phase"] = "head"
        return history

    def _build_model(self, dim, n_classes):
        from .heads import make_head
        from .strategies import ClassifierModel, apply_lora
        if self.strategy == "lora":
            self.lora_targets_ = apply_lora(self.backbone_, r=self.lora_r,
                                            alpha=self.lora_alpha)
        head = make_head(self.head, dim, n_classes, hidden=self.hidden, dropout=self.dropout)
        pre = self.preprocess_
        # a pretrained CNN keeps its batch-norm statistics; one from random weights learns them
        model = ClassifierModel(self.backbone_, head, self.pooling, pre.mean, pre.std,
                                self.strategy, n_blocks=self.n_blocks,
                                train_norm_stats=self._weights_reference() == "random")
        return model.to(self._device())

    def _fit_end_to_end(self, train_inputs, y_train, val_inputs, y_val):
        import torch
        from .train import TrainLoop

        device = self._device()
        n_classes = len(self.classes_)
        x_train = self._images(train_inputs)
        x_val = self._images(val_inputs) if val_inputs is not None else None
        torch.manual_seed(self.seed)
        dim = self.backbone_.feature_dim_for(self.pooling or self.backbone_.pooling)
        model = self._build_model(dim, n_classes)
        # the head's input statistics: features of the training images before adaptation
        model.eval()

        def features(x):
            with torch.no_grad():
                return torch.cat([model.features(x[i:i + 64].to(device)).float().cpu()
                                  for i in range(0, len(x), 64)]).numpy()

        feats = features(x_train)
        model.head.fit_statistics(feats)
        if self.probe_init:
            # linear probing, then fine-tuning (LP-FT): the head starts from its fit to the
            # unadapted features, so the first updates of the backbone follow a sensible
            # head rather than a random one
            defaults = STRATEGY_DEFAULTS["frozen"]
            probe = self._train_head(model.head, feats, y_train,
                                     None if x_val is None else features(x_val), y_val,
                                     checkpoint=None, lr=self._head_lr(),
                                     epochs=defaults["epochs"], patience=defaults["patience"],
                                     batch_size=defaults["batch_size"], desc="head probe")
            self.probe_epochs_ = len(probe)

        epochs = int(self._setting("epochs"))
        warmup = min(int(self._setting("head_warmup_epochs")), epochs)
        lr, head_lr = float(self._setting("lr")), self._head_lr()
        groups = [{"params": list(model.head.parameters()), "lr": head_lr,
                   "base_lr": head_lr, "weight_decay": self.weight_decay}]
        decay = self.layer_decay if self.strategy in ("partial", "finetune") else 1.0
        for depth, params in model.trainable_groups():
            if params:
                glr = lr * decay ** depth
                groups.append({"params": params, "lr": glr, "base_lr": glr,
                               "weight_decay": self.weight_decay})
        optimizer = torch.optim.AdamW(groups)
        main = max(epochs - warmup, 1)

        def schedule(epoch):
            model.configure(warmup=epoch < warmup)
            factor = 1.0 if epoch < warmup else 0.5 * (1 + math.cos(math.pi * (epoch - warmup)
                                                                    / main))
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * factor

        model.configure(warmup=False)
        self.n_trainable_ = model.n_trainable()
        self.n_parameters_ = int(sum(p.numel() for p in model.parameters()))
        weight = self._class_weight(y_train, n_classes)
        augment = self._augmenter()
        loop = TrainLoop(model, optimizer, epochs=epochs, patience=self._setting("patience"),
                         batch_size=self._setting("batch_size"), class_weight=weight,
                         seed=self.seed, device=device, checkpoint=self._checkpoint(),
                         settings=(self._run_settings(x_train.numpy(), y_train)
                                   if self._checkpoint() else None),
                         scheduler=schedule, desc=self.strategy)
        history = loop.run(model, x_train, torch.from_numpy(y_train), x_val,
                           torch.from_numpy(y_val),
                           augment=None if augment is None else augment)
        for record in history:
            record["phase"] = "head" if record["epoch"] <= warmup else "all"
        model.configure(warmup=False)
        model.eval()
        self.model_ = model
        self.head_ = model.head
        return history

    @staticmethod
    def _history_table(history):
        names = ["epoch", "phase", "train_loss", "val_loss", "val_accuracy", "val_macro_f1",
                 "seconds"]
        table = Table({
            "epoch": np.array([r["epoch"] for r in history], dtype=np.int64),
            "phase": np.array([r.get("phase", "head") for r in history], dtype="U4"),
            **{n: np.array([np.nan if r[n] is None else r[n] for r in history], dtype=float)
               for n in names[2:]},
        }, names=names)
        return table

    # ------------------------------------------------------------------ predict
    def _check_fitted(self):
        if not self._fitted:
            raise InputError("This Classifier is not fitted yet: call fit() or "
                             "Classifier.load().")

    def predict_proba(self, cutouts, batch_size=64):
        """
        Class probabilities of cutouts.

        Parameters
        ----------
        cutouts : `~astrofmtools.cutouts.CutoutStack`, list of them, or array
            As for `fit`.
        batch_size : int, optional
            Images per forward pass.

        Returns
        -------
        probabilities : `~numpy.ndarray`
            ``(N, K)`` float64, columns in the order of ``classes_``; rows
            sum to 1. With ``tta`` the mean over the eight flips and
            quarter turns.
        """
        self._check_fitted()
        inputs, _ = _as_inputs(cutouts)
        return self._predict_inputs(inputs, batch_size)

    def _predict_inputs(self, inputs, batch_size=64):
        import torch
        from .augment import tta_mean
        device = self._device()
        if self.strategy == "frozen":
            feats = torch.from_numpy(self._features(inputs))
            out = []
            with torch.inference_mode():
                for i in range(0, len(feats), 4096):
                    out.append(self.head_(feats[i:i + 4096].to(device)).float().softmax(1).cpu())
            return torch.cat(out).double().numpy()
        model = self.model_.eval()

        def probs(x):
            return model(x).float().softmax(1)

        batch_size = int(batch_size)
        chunk = max(batch_size, 1024)  # preprocess a chunk at a time: bounded memory
        amp = device.type == "cuda"
        dtype = torch.bfloat16 if amp and torch.cuda.is_bf16_supported() else torch.float16
        out = []
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=amp):
            for start in range(0, len(inputs), chunk):
                images = self._images(inputs[start:start + chunk])
                for i in range(0, len(images), batch_size):
                    xb = images[i:i + batch_size].to(device)
                    out.append(tta_mean(probs, xb, self.tta).float().cpu())
        return torch.cat(out).double().numpy()

    def predict(self, cutouts, batch_size=64):
        """
        Classify cutouts.

        Parameters
        ----------
        cutouts : `~astrofmtools.cutouts.CutoutStack`, list of them, or array
            As for `fit`.
        batch_size : int, optional
            Images per forward pass.

        Returns
        -------
        table : `~astropy.table.QTable`
            Every input row and column (for a stack: its table, with ``id``
            and sky positions; for an array: ``index``), then:

            - ``label``: the most probable class;
            - ``probability``: its probability;
            - ``p_<class>``: the probability of each class (one column per
              class, in the order of ``classes_``).

            An input column with one of these names is kept as
            ``<name>_input``. ``meta`` holds `~astrofmtools.utils.provenance`
            with ``stage='classify'``, the backbone name and weights, the
            preprocessing, strategy, head, classes, TTA, and the versions
            of torch, timm, peft and scikit-learn.
            `~astrofmtools.catalog.write_regions` colours the regions of
            this table by ``label``.
        """
        from ..utils import provenance
        self._check_fitted()
        inputs, table = _as_inputs(cutouts)
        proba = self._predict_inputs(inputs, batch_size)
        table = QTable(table, copy=True)
        new = ["label", "probability"] + [f"p_{c}" for c in self.classes_]
        renamed = {}
        for name in new:
            if name in table.colnames:
                table.rename_column(name, f"{name}_input")
                renamed[name] = f"{name}_input"
        best = proba.argmax(axis=1)
        table["label"] = self.classes_[best]
        table["label"].description = "predicted class (the most probable)"
        table["probability"] = proba[np.arange(len(best)), best]
        table["probability"].description = "probability of the predicted class"
        for j, c in enumerate(self.classes_):
            table[f"p_{c}"] = proba[:, j]
            table[f"p_{c}"].description = f"probability of class {c}"
        meta = provenance(stage="classify", backbone=self.spec_.name,
                          weights=self.backbone_.weights, preprocess=self.preprocess_.to_dict(),
                          strategy=self.strategy, head=self.head,
                          classes=json_value(self.classes_.tolist()), tta=self.tta,
                          pooling=self.pooling or self.backbone_.pooling,
                          packages=_ML_PACKAGES)
        if renamed:
            meta["renamed_columns"] = renamed
        table.meta.update(meta)
        return table

    def score(self, cutouts, labels):
        """
        Macro-averaged F1 score on labelled cutouts (the study's metric).

        Unlike scikit-learn's ``score`` (accuracy), this is the macro-F1,
        which weights rare classes as much as common ones.

        Parameters
        ----------
        cutouts : `~astrofmtools.cutouts.CutoutStack`, list of them, or array
        labels : str or array-like
            As for `fit`.

        Returns
        -------
        macro_f1 : float
        """
        from sklearn.metrics import f1_score
        self._check_fitted()
        inputs, table = _as_inputs(cutouts)
        truth = _as_labels(labels, table, len(table))
        pred = self.classes_[self._predict_inputs(inputs).argmax(axis=1)]
        return float(f1_score(truth.astype(str), pred.astype(str), average="macro",
                              labels=np.unique(np.concatenate([truth, pred]).astype(str))))

    # ------------------------------------------------------------------ save / load
    def _config(self, include_backbone):
        config = {
            "format": _FORMAT, "format_version": _FORMAT_VERSION,
            "params": self._params(),
            "backbone": self.spec_.name, "backbone_spec": self.spec_.to_dict(),
            "weights": self._weights_reference(), "weights_source": self.backbone_.weights,
            "in_chans": int(self.backbone_.in_chans),
            "preprocess": self.preprocess_.to_dict(),
            "classes": self.classes_.tolist(),
            "head_config": self.head_.config(),
            "includes_backbone": bool(include_backbone),
            "lora_targets": getattr(self, "lora_targets_", None),
            "n_parameters": int(self.n_parameters_), "n_trainable": int(self.n_trainable_),
            "n_train": self.n_train_, "n_val": self.n_val_,
            "C": getattr(self, "C_", None),
            "history": self.history_,
            "provenance": self._provenance(),
        }
        return json_value(config)

    def _provenance(self):
        from ..utils import provenance
        return provenance(stage="classify-train", packages=_ML_PACKAGES)

    def save(self, path, overwrite=False, include_backbone=None):
        """
        Save the fitted classifier to a folder.

        The folder holds ``config.json`` (every setting, the backbone's
        registry entry and weights reference, the preprocessing, classes,
        training history and versions) and ``weights.safetensors`` (the
        head; the adapters for ``lora``; the whole backbone for
        ``partial`` and ``finetune``, for random-initialised backbones, or
        with ``include_backbone=True``). It is written through a temporary
        folder renamed into place.

        Parameters
        ----------
        path : str or `~pathlib.Path`
            The folder to create.
        overwrite : bool, optional
            Replace an existing folder.
        include_backbone : bool or None, optional
            Store the backbone's weights even when they can be rebuilt from
            the registry (a self-contained folder, larger). None: only when
            needed.
        """
        from ..utils import check_output_path, write_saved_model
        from .strategies import _lora_state_dict
        self._check_fitted()
        check_output_path(path, overwrite, kind="folder")  # before any work
        if include_backbone is None:
            include_backbone = (self.strategy in ("partial", "finetune")
                                or self._weights_reference() == "random")
        if not include_backbone and self._weights_reference() == "random":
            raise InputError("The backbone was randomly initialised: its weights cannot be "
                             "rebuilt on loading, so they must be saved "
                             "(include_backbone=True or None).")
        tensors = {f"head.{k}": v for k, v in self.head_.state_dict().items()}
        if include_backbone:
            tensors.update({f"backbone.{k}": v for k, v in self.backbone_.state_dict().items()})
        elif self.strategy == "lora":
            tensors.update({f"backbone.{k}": v
                            for k, v in _lora_state_dict(self.backbone_).items()})
        write_saved_model(path, tensors, self._config(include_backbone), overwrite=overwrite,
                          config_name=_CONFIG, weights_name=_WEIGHTS)

    @classmethod
    def load(cls, path, device=None):
        """
        Load a classifier saved by `save`.

        The backbone is rebuilt from the stored registry entry: from the
        saved weights when the folder holds them, else from the weights
        reference (registry default or file) with the saved adapters or
        head on top. Every saved tensor must match the model exactly.

        Parameters
        ----------
        path : str or `~pathlib.Path`
            The folder.
        device : str, optional
            Where to run (default: `~astrofmtools.backbones.default_device`).

        Returns
        -------
        classifier : `Classifier`
            Fitted: ready for `predict`.
        """
        from safetensors.torch import load_file
        from ..backbones import BackboneSpec, load_backbone
        from .heads import head_from_config
        from .strategies import ClassifierModel, _check_keys, apply_lora

        from ..utils import read_saved_config
        path = Path(path)
        config = read_saved_config(path, _FORMAT, _FORMAT_VERSION, _CONFIG, _WEIGHTS)
        params = dict(config["params"])
        augment = params.pop("augment")
        from .augment import SkyAugment
        if isinstance(augment, dict):
            augment = SkyAugment(**augment)
        spec = BackboneSpec.from_dict(config["backbone_spec"])
        clf = cls(backbone=spec, weights=config["weights"], device=device, augment=augment,
                  **params)
        tensors = load_file(str(path / _WEIGHTS), device="cpu")
        head_tensors = {k[5:]: v for k, v in tensors.items() if k.startswith("head.")}
        bb_tensors = {k[9:]: v for k, v in tensors.items() if k.startswith("backbone.")}
        others = set(tensors) - {f"head.{k}" for k in head_tensors} - {
            f"backbone.{k}" for k in bb_tensors}
        if others:
            raise InputError(f"Unexpected tensors in {str(path / _WEIGHTS)!r}: "
                             f"{sorted(others)[:5]}.")
        dev = clf._device()
        weights = "random" if config["includes_backbone"] else config["weights"]
        backbone = load_backbone(spec, weights=weights, device="cpu",
                                 in_chans=config["in_chans"])
        if config["includes_backbone"] and clf.strategy == "lora":
            apply_lora(backbone, r=clf.lora_r, alpha=clf.lora_alpha,
                       target_modules=config["lora_targets"])
        if config["includes_backbone"]:
            _check_keys(backbone.state_dict(), bb_tensors, "backbone weights")
            backbone.load_state_dict(bb_tensors, strict=True)
            backbone.weights = config["weights_source"]
        elif clf.strategy == "lora":
            apply_lora(backbone, r=clf.lora_r, alpha=clf.lora_alpha,
                       target_modules=config["lora_targets"])
            expected = {k for k in backbone.state_dict() if "lora_" in k}
            _check_keys(expected, bb_tensors, "LoRA adapter weights")
            result = backbone.load_state_dict(bb_tensors, strict=False)
            if result.unexpected_keys:  # pragma: no cover - _check_keys catches it
                raise InputError(f"Unexpected adapter tensors {result.unexpected_keys[:5]}.")
        elif bb_tensors:
            raise InputError(f"{str(path)!r} holds backbone tensors it does not declare.")
        if clf.strategy == "lora":
            clf.lora_targets_ = config["lora_targets"]
        backbone = backbone.to(dev).eval()
        head = head_from_config(config["head_config"])
        _check_keys(head.state_dict(), head_tensors, "head weights")
        head.load_state_dict(head_tensors, strict=True)
        clf.backbone_ = backbone
        clf.spec_ = spec
        from ..backbones import Preprocess
        clf.preprocess_ = Preprocess.from_dict(config["preprocess"])
        clf.classes_ = np.array(config["classes"])
        clf.head_ = head.to(dev).eval()
        if clf.strategy == "frozen":
            clf.model_ = None
        else:
            pre = clf.preprocess_
            clf.model_ = ClassifierModel(backbone, clf.head_, clf.pooling, pre.mean, pre.std,
                                         clf.strategy, n_blocks=clf.n_blocks).to(dev).eval()
            clf.model_.configure(warmup=False)
        if config.get("C") is not None:
            clf.C_ = config["C"]
        clf.n_parameters_ = config["n_parameters"]
        clf.n_trainable_ = config["n_trainable"]
        clf.n_train_, clf.n_val_ = config["n_train"], config["n_val"]
        clf.history_ = cls._history_table(config["history"])
        clf._fitted = True
        return clf
