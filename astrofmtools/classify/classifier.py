# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The `Classifier` estimator: a backbone, a head and an adaptation strategy."""

import numpy as np

from ..exceptions import InputError
from ..utils import json_value
from .inputs import _as_inputs, _as_labels

__all__ = ["Classifier"]

#: The packages whose versions a classifier's outputs record.
ML_PACKAGES = ("torch", "torchvision", "timm", "peft", "safetensors", "scikit-learn")


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
    head : str, optional
        A registered head (`~astrofmtools.classify.list_heads`):
        ``linear`` (default), ``mlp`` (options ``hidden``, ``dropout``),
        ``whitening`` (Ledoit-Wolf whitening, then linear), ``knn``
        (option ``k``) or ``logistic`` (scikit-learn, option ``C``: None
        chooses it on the validation split); the last two work on frozen
        features only.
    strategy : str or `~astrofmtools.adapt.Strategy`, optional
        How much of the backbone trains, from the strategy registry
        (`~astrofmtools.adapt.list_strategies`): ``frozen`` (default:
        features once, the head trains in seconds), ``partial`` (option
        ``n_blocks``: the last layer groups), ``finetune`` (everything,
        with layer-wise learning-rate decay), ``lora`` (options ``lora_r``,
        ``lora_alpha``), ``bitfit`` (biases and norms), or a strategy
        object.
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
    settings : `~astrofmtools.adapt.TrainSettings` or dict, optional
        The training schedule (epochs, learning rates, batch size, patience,
        head warm-up, weight decay, layer decay): a `TrainSettings` replaces
        the strategy's whole schedule, a dict changes some of its values.
        Default: the strategy's
        (`~astrofmtools.adapt.Strategy.defaults`): ``frozen`` 200 epochs of
        the head at lr 1e-3, batch 64, early stopping with patience 20
        (best validation epoch kept); ``partial``, ``finetune`` and
        ``lora`` 30 epochs, batch 32, a cosine decay after 1-3 warm-up
        epochs of the head alone, run to the end with the last weights
        kept (``keep_best=False``) and label smoothing 0.1 (chosen by
        cross-validation on FR-DEEP, ``benchmarks/finetune_recipe_frdeep.py``).
    label_fraction : float, optional
        Use only this fraction of the labelled samples (per class, seeded):
        label-efficiency curves at 0.1, 0.3, 0.5, 1.0.
    val_fraction : float, optional
        Fraction of each class held out for validation: scored every
        epoch, early stopping (``keep_best``), temperature scaling and
        ``validation_scores_`` (0: none; the last epoch is kept).
    augment : bool or `~astrofmtools.classify.SkyAugment`, optional
        Augment training images of the end-to-end strategies (random
        360-degree rotation, flip, resized crop of 80-100% of the area;
        no colour transforms). True: `SkyAugment` defaults.
    tta : bool or 'auto', optional
        Test-time augmentation: average the class probabilities (end-to-end
        strategies) or the features (``frozen``, for training and
        prediction alike) over the eight flips and quarter turns.
        ``'auto'`` (default): on when the device is CUDA, off on a CPU,
        where the eight views make feature extraction and prediction eight
        times slower. ``fit`` fixes the choice: after it ``tta`` reads as
        the bool used, which a saved model stores.
    class_weight : 'balanced' or None, optional
        Weight the loss of each class inversely to its count
        (`~astrofmtools.classify.class_weights`).
    seed : int, optional
        Seed of the label fraction, the validation split, the
        initialisation, the batches and the augmentations.
    device : str, optional
        ``"cuda"`` when available, else ``"cpu"``. Mixed precision is used
        on CUDA only.
    checkpoint_dir : str or path, optional
        Folder of a per-epoch checkpoint (``checkpoint.pt``): ``fit``
        resumes from it when it exists (same settings and data), so an
        interrupted run continues where it stopped.
    probe_init : bool, optional
        End-to-end strategies: first fit the head to the features of the
        unadapted backbone (a linear probe, seconds), then adapt
        (LP-FT, Kumar et al. 2022): the backbone's first updates then follow
        a sensible head instead of a random one.
    cache : bool, optional
        ``frozen``: cache the features on disk
        (`~astrofmtools.backbones.extract_features`), so that heads and
        label fractions on the same data reuse them.
    temperature_scaling : bool, optional
        Fit a temperature on the validation split after training, so that
        the probabilities are calibrated (`~astrofmtools.trust.fit_temperature`;
        heads fitted in closed form, ``knn`` and ``logistic``, keep 1).
    calibration_fraction : float, optional
        Hold out this fraction of each class (never trained on) to calibrate
        conformal prediction sets (`calibrate`, ``predict(conformal=...)``).
    conformal_method : {'aps', 'lac', 'raps'}, optional
        Nonconformity score of the conformal sets.
    mondrian : bool, optional
        Class-conditional conformal calibration (coverage for every class).
    ood : {None, 'knn', 'mahalanobis'}, optional
        Fit an out-of-distribution detector on the training features
        (`~astrofmtools.trust.KNNDistance`, `~astrofmtools.trust.MahalanobisDistance`);
        ``predict`` then adds ``ood_score`` and ``ood_flag`` (above the 95th
        percentile of held-out scores).
    extra_columns : list of str, optional
        Late fusion (``frozen`` only): columns of the cutouts' table
        (morphometrics from `~astrofmtools.morphology.measure_morphology`,
        photometry, redshift) appended to the features before the head, which
        standardises them; missing values take the training median.
    **options
        Any `~astrofmtools.adapt.TrainSettings` field (``epochs=5``,
        ``lr=3e-4``), an option of the strategy (``n_blocks=1``) or of the
        head (``hidden=(64,)``). Unknown names are refused with the list of
        known ones.

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
    tta_ : bool
        Whether test-time augmentation was on when fitting (``tta`` resolved).
    validation_scores_ : dict or None
        ``n``, ``accuracy`` and ``macro_f1`` of the fitted model on the
        validation split (None without one); ``astrofm train`` prints them.

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
                 weights=None, preprocess=None, pooling=None, settings=None,
                 label_fraction=1.0, val_fraction=0.15, augment=True, tta="auto",
                 class_weight="balanced", seed=0, device=None, checkpoint_dir=None,
                 cache=True, probe_init=True, temperature_scaling=True,
                 calibration_fraction=0.0, conformal_method="aps", mondrian=False, ood=None,
                 extra_columns=None, **options):
        from .config import resolve_options
        self.strategy_, self.settings, self.head_options = resolve_options(
            strategy, head, settings, options)
        #: The strategy's name (the object is ``strategy_``).
        self.strategy = self.strategy_.name
        self.head = head
        if class_weight not in ("balanced", None):
            raise InputError(f"class_weight must be 'balanced' or None; got {class_weight!r}.")
        if not 0 < float(label_fraction) <= 1:
            raise InputError(f"label_fraction must be in (0, 1]; got {label_fraction}.")
        if not 0 <= float(val_fraction) < 1:
            raise InputError(f"val_fraction must be in [0, 1); got {val_fraction}.")
        from ..trust import CONFORMAL_METHODS, OOD_METHODS
        if not 0 <= float(calibration_fraction) < 1:
            raise InputError(f"calibration_fraction must be in [0, 1); got "
                             f"{calibration_fraction}.")
        if conformal_method not in CONFORMAL_METHODS:
            raise InputError(f"Unknown conformal_method {conformal_method!r}; choose one of "
                             f"{', '.join(CONFORMAL_METHODS)}.")
        if ood is not None and ood not in OOD_METHODS:
            raise InputError(f"Unknown ood method {ood!r}; choose one of "
                             f"{', '.join(OOD_METHODS)} or None.")
        self.temperature_scaling = bool(temperature_scaling)
        self.calibration_fraction = float(calibration_fraction)
        self.conformal_method, self.mondrian, self.ood = conformal_method, bool(mondrian), ood
        if isinstance(extra_columns, str):
            extra_columns = [c.strip() for c in extra_columns.split(",") if c.strip()]
        self.extra_columns = list(extra_columns) if extra_columns else None
        if self.extra_columns and self.strategy_.trains_backbone:
            raise InputError("extra_columns (late fusion) work with a backbone that does not "
                             f"change (strategy='frozen'), not {self.strategy!r}.")
        self.backbone = backbone
        self.weights = None if weights is None else str(weights)
        self.preprocess = preprocess
        self.pooling = pooling
        self.label_fraction = float(label_fraction)
        self.val_fraction = float(val_fraction)
        self.augment = augment
        self.tta = tta  # checked by the property's setter
        self.class_weight = class_weight
        self.seed = int(seed)
        self.device = device
        self.checkpoint_dir = None if checkpoint_dir is None else str(checkpoint_dir)
        self.cache = bool(cache)
        self.probe_init = bool(probe_init)
        self.classes_ = None
        self._fitted = False

    # ------------------------------------------------------------------ settings
    @property
    def tta(self):
        """
        Whether test-time augmentation is on (a bool: ``'auto'`` resolved).

        ``'auto'`` reads as the choice made by `fit` (``tta_``), or before
        fitting as the one for the current device. Setting a bool after
        fitting changes how `predict` runs (for ``frozen``, the features
        then differ from those the head was trained on).
        """
        if self._tta != "auto":
            return self._tta
        fitted = getattr(self, "tta_", None)
        if fitted is not None:
            return fitted
        from .config import resolve_tta
        return resolve_tta("auto", self._device())

    @tta.setter
    def tta(self, value):
        from .config import check_tta
        self._tta = check_tta(value)

    def _params(self):
        """The constructor arguments that define the model (for the saved config)."""
        augment = self.augment
        if not isinstance(augment, bool):
            augment = augment.to_dict()
        strategy = self.strategy_.config()
        strategy.pop("name")
        return json_value({
            "head": self.head, "strategy": self.strategy, "pooling": self.pooling,
            "label_fraction": self.label_fraction, "val_fraction": self.val_fraction,
            "augment": augment, "tta": self.tta, "class_weight": self.class_weight,
            "seed": self.seed, "cache": self.cache, "probe_init": self.probe_init,
            "temperature_scaling": self.temperature_scaling,
            "calibration_fraction": self.calibration_fraction,
            "conformal_method": self.conformal_method, "mondrian": self.mondrian,
            "ood": self.ood, "extra_columns": self.extra_columns,
            **self.settings.to_dict(), **strategy, **self.head_options,
        })

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
        from .config import weights_reference
        return weights_reference(self)

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
        from .fitting import fit_classifier
        return fit_classifier(self, cutouts, labels, validation)

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
        from .predicting import predict_probabilities
        return predict_probabilities(self, inputs, batch_size)

    def predict(self, cutouts, batch_size=64, conformal=None, mc_dropout=0):
        """
        Classify cutouts.

        Parameters
        ----------
        cutouts : `~astrofmtools.cutouts.CutoutStack`, list of them, or array
            As for `fit`.
        batch_size : int, optional
            Images per forward pass.
        conformal : float, optional
            Add conformal prediction sets of miscoverage ``conformal`` (0.1:
            the set holds the true class for at least 90 % of cutouts like
            the calibration ones); needs a calibrated classifier
            (``calibration_fraction`` or `calibrate`).
        mc_dropout : int, optional
            Add the uncertainty of this many stochastic passes with dropout
            on (a head or backbone with dropout, e.g. ``head='mlp'``).

        Returns
        -------
        table : `~astropy.table.QTable`
            Every input row and column (for a stack: its table, with ``id``
            and sky positions; for an array: ``index``), then:

            - ``label``: the most probable class;
            - ``probability``: its probability;
            - ``p_<class>``: the probability of each class (one column per
              class, in the order of ``classes_``), with the temperature
              fitted on the validation split (``temperature_``);
            - with ``conformal``: ``prediction_set`` (comma-separated
              classes) and ``set_size``;
            - with ``mc_dropout``: ``entropy``, ``mutual_info`` and
              ``std_<class>`` (`~astrofmtools.trust.uncertainty_columns`);
            - with an out-of-distribution detector (``ood``): ``ood_score``
              and ``ood_flag`` (`~astrofmtools.trust.ood_columns`).

            An input column with one of these names is kept as
            ``<name>_input``. ``meta`` holds `~astrofmtools.utils.provenance`
            with ``stage='classify'``, the backbone name and weights, the
            preprocessing, strategy, head, classes, TTA, and the versions
            of torch, timm, peft and scikit-learn.
            `~astrofmtools.catalog.write_regions` colours the regions of
            this table by ``label``.
        """
        from .predicting import features_of, predict_probabilities, prediction_table
        from .trust import trust_columns
        self._check_fitted()
        inputs, table = _as_inputs(cutouts)
        # a backbone that did not change: its features once, for every column
        features = features_of(self, inputs) if self.model_ is None else None
        proba = predict_probabilities(self, inputs, batch_size, features)
        table = prediction_table(self, table, proba)
        return trust_columns(self, table, inputs, proba, features, conformal=conformal,
                             mc_dropout=mc_dropout)

    def calibrate(self, cutouts, labels, method=None, mondrian=None):
        """
        Calibrate conformal prediction sets on held-out labelled cutouts.

        The cutouts must not have been used for training (nor for early
        stopping); ``predict(..., conformal=alpha)`` then gives sets that
        hold the true class with probability at least ``1 - alpha``.

        Parameters
        ----------
        cutouts : `~astrofmtools.cutouts.CutoutStack`, list of them, or array
        labels : str or array-like
            As for `fit`; every label must be one of ``classes_``.
        method : {'aps', 'lac', 'raps'}, optional
            Nonconformity score (default: ``conformal_method``).
        mondrian : bool, optional
            Class-conditional (Mondrian) calibration: the coverage holds for
            every class (default: ``mondrian``).

        Returns
        -------
        self : `Classifier`
        """
        from .trust import calibrate
        self._check_fitted()
        inputs, table = _as_inputs(cutouts, "calibration cutouts")
        labels = _as_labels(labels, table, len(table))
        calibrate(self, inputs, labels, method or self.conformal_method,
                  self.mondrian if mondrian is None else mondrian)
        return self

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
    def save(self, path, overwrite=False, include_backbone=None):
        """
        Save the fitted classifier to a folder.

        The folder holds ``config.json`` (every setting, the backbone's
        registry entry and weights reference, the preprocessing, classes,
        training history and versions) and ``weights.safetensors`` (the
        head, and what the strategy changed in the backbone: nothing for
        ``frozen``, the adapters for ``lora``, biases and norms for
        ``bitfit``, the whole backbone for ``partial`` and ``finetune``, for
        random-initialised backbones, or with ``include_backbone=True``). It
        is written through a temporary folder renamed into place.

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
        from .saving import save_classifier
        self._check_fitted()
        save_classifier(self, path, overwrite=overwrite, include_backbone=include_backbone)

    @classmethod
    def load(cls, path, device=None):
        """
        Load a classifier saved by `save` (this version's format or an earlier one).

        The backbone is rebuilt from the stored registry entry: from the
        saved weights when the folder holds them, else from the weights
        reference (registry default or file) with the strategy's saved
        tensors (adapters, biases) and the head on top. Every saved tensor
        must match the model exactly.

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
        from .saving import load_classifier
        return load_classifier(cls, path, device=device)

