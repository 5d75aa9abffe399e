# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Heads fitted in closed form on frozen features: the logistic regression
(scikit-learn, then held as a `LinearHead`) and the kNN memory bank.
"""

import numpy as np
import torch

from ..exceptions import InputError
from .head_modules import KNNHead, LinearHead, Standardize, _as_tensor

__all__ = ["fit_logistic_head"]


def _fit_knn(features, labels, n_classes, val_features=None, val_labels=None,
             class_weight="balanced", seed=0, k=10):
    """The kNN head's fit: a memory bank of the training and validation features."""
    from .train import class_weights
    if val_features is not None and len(val_features):
        features = np.concatenate([features, val_features])
        labels = np.concatenate([labels, val_labels])
    weights = class_weights(labels, n_classes) if class_weight == "balanced" else None
    head = KNNHead(features.shape[1], n_classes, n_train=len(labels), k=k)
    return head.fit(features, labels, class_weight=weights)


def _fit_logistic(features, labels, n_classes, val_features=None, val_labels=None,
                  class_weight="balanced", seed=0, C=None):
    return fit_logistic_head(features, labels, n_classes, class_weight=class_weight, C=C,
                             val_features=val_features, val_labels=val_labels, seed=seed)


def fit_logistic_head(features, labels, n_classes, class_weight="balanced", C=None,
                      val_features=None, val_labels=None, seed=0):
    """
    Fit a logistic regression on standardised features and return it as a `LinearHead`.

    scikit-learn's `~sklearn.linear_model.LogisticRegression` (L-BFGS,
    L2 penalty) is fitted on standardised features; its coefficients become
    the head's linear layer, so predictions need no scikit-learn and the
    head saves like any other.

    Parameters
    ----------
    features : array-like
        ``(N, D)`` training features.
    labels : array-like
        ``(N,)`` integer class indices in ``[0, n_classes)``.
    n_classes : int
        Number of classes.
    class_weight : 'balanced' or None, optional
        Weight classes inversely to their counts.
    C : float or None, optional
        Inverse regularisation strength. None: chosen among ``10**[-3..2]``
        by the class-weighted log-loss on the validation features, then the
        model is refitted on training and validation features together;
        with no validation set, 1.0.
    val_features, val_labels : array-like, optional
        The validation split used to choose ``C``.
    seed : int, optional
        Random state passed to scikit-learn.

    Returns
    -------
    head : `LinearHead`
        With ``head.C`` the regularisation used.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from astrofmtools.classify import fit_logistic_head
    >>> rng = np.random.default_rng(1)
    >>> y = np.repeat([0, 1], 20)
    >>> x = rng.normal(size=(40, 5)) + 2.0 * y[:, None]
    >>> head = fit_logistic_head(x, y, 2, C=1.0)
    >>> float((head(torch.as_tensor(x, dtype=torch.float32)).argmax(1).numpy() == y).mean())
    1.0
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if len(np.unique(labels)) < 2:
        raise InputError("A logistic regression needs training samples of at least two classes.")

    def standardize(norm, x):
        return (x - norm.mean.double().numpy()) / norm.scale.double().numpy()

    def fit(x, y, c):
        norm = Standardize(x.shape[1]).fit(x)
        model = LogisticRegression(C=c, class_weight=class_weight, max_iter=2000,
                                   random_state=seed)
        model.fit(standardize(norm, x), y)
        return norm, model

    have_val = (val_features is not None and val_labels is not None and len(val_labels) > 0)
    if C is None and have_val:
        val_features = np.asarray(val_features, dtype=np.float64)
        val_labels = np.asarray(val_labels, dtype=np.int64)
        weights = None
        if class_weight == "balanced":
            counts = np.bincount(val_labels, minlength=n_classes).astype(float)
            w = np.where(counts > 0, len(val_labels) / (n_classes * np.maximum(counts, 1)), 0)
            weights = w[val_labels]
        best = None
        for c in 10.0 ** np.arange(-3, 3):
            norm, model = fit(features, labels, c)
            proba = np.zeros((len(val_labels), n_classes))
            proba[:, model.classes_] = model.predict_proba(standardize(norm, val_features))
            loss = log_loss(val_labels, np.clip(proba, 1e-12, 1), labels=np.arange(n_classes),
                            sample_weight=weights)
            if best is None or loss < best[0] - 1e-12:
                best = (loss, c)
        C = best[1]
        features = np.concatenate([features, val_features])
        labels = np.concatenate([labels, val_labels])
    elif C is None:
        C = 1.0
    norm, model = fit(features, labels, float(C))
    head = LinearHead(features.shape[1], n_classes)
    coef = np.zeros((n_classes, features.shape[1]))
    intercept = np.zeros(n_classes)
    present = model.classes_
    if len(present) == 2:
        # binary: softmax([0, z]) equals scikit-learn's sigmoid(z)
        coef[present[1]] = model.coef_[0]
        intercept[present[1]] = model.intercept_[0]
    else:
        coef[present] = model.coef_
        intercept[present] = model.intercept_
    absent = np.setdiff1d(np.arange(n_classes), present)
    intercept[absent] = -1e4  # classes never seen in training are never predicted
    with torch.no_grad():
        head.norm.mean.copy_(norm.mean)
        head.norm.scale.copy_(norm.scale)
        head.fc.weight.copy_(_as_tensor(coef))
        head.fc.bias.copy_(_as_tensor(intercept))
    head.C = float(C)
    return head
