# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
How a `~astrofmtools.classify.Classifier` earns trust: a temperature fitted on
its validation split, conformal prediction sets calibrated on held-out
cutouts, Monte-Carlo dropout passes and an out-of-distribution detector on its
features (the statistics themselves are in `astrofmtools.trust`).
"""

import numpy as np

from ..exceptions import InputError

__all__ = []


def split_calibration(y_index, keep, fraction, seed):
    """``(keep, calibration)``: a stratified, seeded share of ``keep`` held out for
    conformal calibration (never trained on, never used for early stopping)."""
    if not fraction:
        return keep, keep[:0]
    from .train import train_val_split
    rest, cal = train_val_split(y_index[keep], fraction, seed=seed + 7919)
    return keep[rest], keep[cal]


def logits_of(clf, inputs=None, features=None):
    """Raw logits (no temperature, no test-time augmentation) of parsed inputs, or of
    features for a classifier whose backbone did not change."""
    from .predicting import map_batches
    model = clf.head_ if clf.model_ is None else clf.model_.eval()
    return map_batches(clf, model, inputs, features).double().numpy()


def fit_temperature_on(clf, inputs=None, features=None, labels=None):
    """
    Fit ``clf.temperature_`` on a validation split.

    It stays 1 without a validation split of two classes, and when the split
    holds no error: a perfectly classified split is fitted best by the
    sharpest temperature `~astrofmtools.trust.fit_temperature` allows, which
    would only be over-confidence learnt from too easy a sample.
    """
    from ..trust import fit_temperature
    clf.temperature_ = 1.0
    if labels is None or len(labels) < 2 or len(np.unique(labels)) < 2:
        return clf.temperature_
    logits = logits_of(clf, inputs, features)
    if np.all(logits.argmax(axis=1) == labels):
        return clf.temperature_
    clf.temperature_ = float(fit_temperature(logits, labels))
    return clf.temperature_


def calibrate(clf, inputs, labels, method="aps", mondrian=False, features=None):
    """Conformal calibration scores of held-out, labelled inputs (``clf.conformal_``);
    ``features``: theirs, when already at hand."""
    from ..trust import CONFORMAL_METHODS, calibrate_conformal
    if method not in CONFORMAL_METHODS:
        raise InputError(f"Unknown conformal method {method!r}; choose one of "
                         f"{', '.join(CONFORMAL_METHODS)}.")
    unknown = np.setdiff1d(labels, clf.classes_)
    if len(unknown):
        raise InputError(f"Calibration labels {unknown.tolist()} are not among the classes "
                         f"{clf.classes_.tolist()}.")
    from .predicting import predict_probabilities
    proba = predict_probabilities(clf, inputs, features=features)
    y = np.searchsorted(clf.classes_, labels)
    clf.conformal_ = calibrate_conformal(proba, y, method=method, mondrian=bool(mondrian))
    clf.conformal_["n"] = int(len(y))
    return clf.conformal_


def conformal_columns(clf, table, proba, alpha):
    """Add ``prediction_set`` and ``set_size`` for miscoverage ``alpha``."""
    from ..trust import prediction_sets
    if getattr(clf, "conformal_", None) is None:
        raise InputError("This Classifier has no conformal calibration: train it with "
                         "calibration_fraction > 0 (astrofm train --calibration-fraction) or "
                         "call calibrate() with held-out labelled cutouts.")
    alpha = float(alpha)
    if not 0 < alpha < 1:
        raise InputError(f"The conformal miscoverage alpha must be in (0, 1); got {alpha}.")
    sets = prediction_sets(proba, clf.conformal_, alpha)
    names = np.asarray(clf.classes_).astype(str)
    table["prediction_set"] = [",".join(names[row]) for row in sets]
    table["prediction_set"].description = (
        f"classes of the conformal prediction set ({clf.conformal_['method']}, coverage "
        f">= {1 - alpha:g} of the true class), comma-separated")
    table["set_size"] = sets.sum(axis=1).astype(np.int64)
    table["set_size"].description = "number of classes in the prediction set"
    table.meta["conformal_alpha"] = alpha
    return table


def mc_dropout_samples(clf, inputs, n_samples, features=None, batch_size=64):
    """(S, N, K) probabilities of ``n_samples`` passes with the dropout layers active."""
    import torch
    from torch import nn
    from .predicting import features_of, map_batches
    n_samples = int(n_samples)
    if n_samples < 2:
        raise InputError(f"mc_dropout needs at least 2 passes; got {n_samples}.")
    temperature = getattr(clf, "temperature_", 1.0)
    model = clf.head_ if clf.model_ is None else clf.model_
    dropouts = [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
    if not any(m.p > 0 for m in dropouts):
        raise InputError(f"The {clf.head!r} head and the backbone have no dropout, so every "
                         "pass would be the same; use head='mlp' (dropout=...) for MC dropout.")
    if clf.model_ is None and features is None:
        features = features_of(clf, inputs)  # once for every pass
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(clf.seed)
    model.eval()
    for m in dropouts:
        m.train()
    try:
        samples = [map_batches(clf, lambda x: (model(x).float() / temperature).softmax(1),
                               inputs, features, batch_size).double().numpy()
                   for _ in range(n_samples)]
    finally:
        model.eval()
        torch.random.set_rng_state(generator_state)
    return np.stack(samples)


def ood_features(clf, inputs=None, features=None):
    """The features the out-of-distribution detector sees (the adapted backbone's)."""
    from .predicting import features_of, map_batches
    if clf.model_ is None:
        return features if features is not None else features_of(clf, inputs)
    return map_batches(clf, clf.model_.eval().features, inputs).numpy()


def fit_ood(clf, train_features, y_train, held_out_features=None, quantile=0.95):
    """Fit the out-of-distribution detector on the training features and set its flag
    threshold at the ``quantile`` of held-out (else leave-one-out training) scores."""
    from ..trust import OOD_METHODS, ood_threshold
    detector = OOD_METHODS[clf.ood]()
    if clf.ood == "mahalanobis":
        detector.fit(train_features, y_train)
    else:
        detector.fit(train_features)
    if held_out_features is not None and len(held_out_features):
        scores = detector.score(held_out_features)
    else:
        scores = detector.score(train_features, exclude_self=True)
    clf.ood_ = detector
    clf.ood_threshold_ = float(ood_threshold(scores, quantile))


def ood_state(clf):
    """``(tensors, config)`` of the fitted detector, for the saved model."""
    import torch
    state = clf.ood_.to_state()
    tensors = {f"ood.{k}": torch.as_tensor(np.asarray(v, dtype=np.float32))
               for k, v in state.items() if isinstance(v, np.ndarray)}
    config = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
    return tensors, {"method": clf.ood, "threshold": clf.ood_threshold_, "state": config}


def restore_ood(clf, config, tensors):
    """Rebuild the detector of a saved model from its config and ``ood.*`` tensors."""
    from ..trust import OOD_METHODS
    state = dict(config["state"])
    state.update({k[4:]: v.numpy() for k, v in tensors.items()})
    clf.ood = config["method"]
    clf.ood_ = OOD_METHODS[config["method"]].from_state(state)
    clf.ood_threshold_ = float(config["threshold"])


def fit_trust(clf, inputs, features, train_sel, val_inputs, val_features, y_train, y_val,
              cal_sel, y_cal):
    """After training: the temperature (on the validation split), the out-of-distribution
    detector (on the training features) and the conformal calibration (on the held-out
    calibration split)."""
    from .heads import get_head
    clf.temperature_, clf.conformal_, clf.ood_, clf.ood_threshold_ = 1.0, None, None, None
    # a head fitted in closed form saw the validation split (kNN bank, logistic refit):
    # its logits there say nothing about calibration
    if clf.temperature_scaling and get_head(clf.head).fit is None and len(y_val):
        fit_temperature_on(clf, val_inputs, val_features, y_val)
    if clf.ood is not None:
        cal_inputs = inputs[np.asarray(cal_sel)] if len(cal_sel) else None
        if features is not None:  # the backbone never changed: reuse its features
            train_f, cal_f = features[train_sel], (features[cal_sel] if len(cal_sel) else None)
        else:
            train_f = ood_features(clf, inputs[np.asarray(train_sel)])
            cal_f = None if cal_inputs is None else ood_features(clf, cal_inputs)
        held_out = cal_f if cal_f is not None else (
            val_features if val_features is not None or val_inputs is None
            else ood_features(clf, val_inputs))
        fit_ood(clf, train_f, y_train, held_out)
    if len(cal_sel):
        calibrate(clf, inputs[np.asarray(cal_sel)], clf.classes_[y_cal],
                  method=clf.conformal_method, mondrian=clf.mondrian,
                  features=None if features is None else features[cal_sel])


def trust_columns(clf, table, inputs, proba, features=None, conformal=None, mc_dropout=0):
    """The columns `Classifier.predict` adds beyond the probabilities (``features``: the
    inputs' features when the backbone did not change, computed once by the caller)."""
    from ..trust import ood_columns, uncertainty_columns
    if mc_dropout:
        uncertainty_columns(table, mc_dropout_samples(clf, inputs, mc_dropout, features),
                            [str(c) for c in clf.classes_])
    if conformal is not None:
        conformal_columns(clf, table, proba, conformal)
    if getattr(clf, "ood_", None) is not None:
        ood_columns(table, clf.ood_.score(ood_features(clf, inputs, features)),
                    clf.ood_threshold_)
    return table
