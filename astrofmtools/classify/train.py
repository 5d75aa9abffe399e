# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Training-set helpers: class weights, label fractions and stratified
validation splits (the loop itself is `astrofmtools.adapt.TrainLoop`).
"""

import numpy as np

from ..exceptions import InputError

__all__ = ["class_weights", "label_fraction_indices", "train_val_split"]


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
