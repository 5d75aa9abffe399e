# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Classification scores: macro-F1, per-class precision/recall/F1, confusion matrices."""

import numpy as np
from astropy.table import QTable

from ..exceptions import InputError
from ..schema import as_labels
from ..utils import provenance

__all__ = ["classification_metrics", "confusion_table"]

# scikit-learn is an optional dependency (the ``ml`` extra)
__doctest_requires__ = {("classification_metrics", "confusion_table"): ["sklearn"]}


def classification_metrics(y_true, y_pred, classes=None):
    """
    Score single-label multiclass predictions against true labels.

    The headline score is the macro-averaged F1 (the unweighted mean of the
    per-class F1 scores), which weights a rare class as much as a common
    one. Accuracy is given for reference only: on unbalanced samples it is
    dominated by the common classes. Micro-averaged F1 is deliberately not
    reported: for single-label multiclass data it equals the accuracy.

    Parameters
    ----------
    y_true, y_pred : array-like
        True and predicted labels (strings or integers), one per object,
        e.g. a table column.
    classes : sequence, optional
        The classes, in the order used for the confusion matrix and the
        per-class table. Defaults to the sorted union of the labels in
        ``y_true`` and ``y_pred``. Giving it keeps classes that are absent
        from both (their scores are NaN and they are left out of the
        averages) and fixes the order across runs.

    Returns
    -------
    metrics : dict
        - ``macro_f1`` : float, the mean F1 over the classes that occur in
          ``y_true`` or ``y_pred``.
        - ``accuracy`` : float, the fraction of correct predictions.
        - ``balanced_accuracy`` : float, the mean recall over the classes
          present in ``y_true``.
        - ``per_class`` : `~astropy.table.QTable` with a row per class and
          columns ``class``, ``precision``, ``recall``, ``f1``, ``support``
          (number of true objects of that class). Precision is 0 for a
          class that is never predicted and recall 0 for a class that never
          occurs (scikit-learn's ``zero_division=0``); all three are NaN for
          a class found in neither ``y_true`` nor ``y_pred``.
        - ``confusion`` : `~numpy.ndarray` of int, shape (K, K); rows are
          true classes, columns predicted classes, both in ``classes``
          order.
        - ``classes`` : list, the class order.
        - ``n`` : int, the number of objects.

    Raises
    ------
    astrofmtools.InputError
        If the label arrays are empty, of different lengths, masked, or hold
        labels missing from ``classes``.

    Examples
    --------
    >>> from astrofmtools.evaluate import classification_metrics
    >>> y_true = ["FRI", "FRI", "FRII", "FRII", "compact", "compact"]
    >>> y_pred = ["FRI", "FRII", "FRII", "FRII", "compact", "FRI"]
    >>> m = classification_metrics(y_true, y_pred)
    >>> m["classes"]
    ['FRI', 'FRII', 'compact']
    >>> m["confusion"]
    array([[1, 1, 0],
           [0, 2, 0],
           [1, 0, 1]])
    >>> round(m["macro_f1"], 4), round(m["accuracy"], 4)
    (0.6556, 0.6667)
    >>> m["per_class"]["f1"].round(3).tolist()
    [0.5, 0.8, 0.667]
    """
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    y_true, y_pred, classes = _check_labels(y_true, y_pred, classes)
    cm = confusion_matrix(y_true, y_pred, labels=classes)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, average=None, zero_division=0)
    precision = precision.astype(float)
    recall = recall.astype(float)
    f1 = f1.astype(float)
    # a class in neither y_true nor y_pred has no score at all
    tp = np.diag(cm)
    absent = (cm.sum(axis=0) + cm.sum(axis=1) - tp) == 0
    precision[absent] = recall[absent] = f1[absent] = np.nan
    present = [c for c, a in zip(classes, absent) if not a]
    macro_f1 = float(f1_score(y_true, y_pred, labels=present, average="macro",
                              zero_division=0))
    has_true = support > 0
    balanced = float(np.mean(recall[has_true]))

    per_class = QTable(meta=provenance(stage="evaluate", metric="per-class scores"))
    per_class["class"] = _class_column(classes)
    per_class["class"].description = "Class label"
    per_class["precision"] = precision
    per_class["precision"].description = ("Fraction of objects predicted as this class "
                                          "that truly are (0 if never predicted)")
    per_class["recall"] = recall
    per_class["recall"].description = ("Fraction of true objects of this class that "
                                       "were predicted as it")
    per_class["f1"] = f1
    per_class["f1"].description = "Harmonic mean of precision and recall"
    for name in ("precision", "recall", "f1"):
        per_class[name].info.format = ".3f"
    per_class["support"] = support.astype(int)
    per_class["support"].description = "Number of true objects of this class"
    per_class.meta.update(macro_f1=macro_f1, accuracy=float(np.mean(y_true == y_pred)))
    return {
        "macro_f1": macro_f1,
        "accuracy": float(np.mean(y_true == y_pred)),
        "balanced_accuracy": balanced,
        "per_class": per_class,
        "confusion": cm,
        "classes": list(classes),
        "n": int(len(y_true)),
    }


def confusion_table(y_true, y_pred, classes=None, normalize=None):
    """
    A confusion matrix as a table, readable in a notebook or an ECSV file.

    Parameters
    ----------
    y_true, y_pred : array-like
        True and predicted labels (strings or integers).
    classes : sequence, optional
        The class order; defaults to the sorted union of the labels.
    normalize : {None, "true", "pred", "all"}, optional
        Counts (None), fractions of each true class (rows sum to 1, the
        diagonal is the recall), of each predicted class (columns sum to 1,
        the diagonal is the precision) or of all objects.

    Returns
    -------
    table : `~astropy.table.QTable`
        A row per true class: column ``true_class`` then a column per
        predicted class, named ``str(class)``.

    Examples
    --------
    >>> from astrofmtools.evaluate import confusion_table
    >>> t = confusion_table([0, 0, 1, 1, 1], [0, 1, 1, 1, 0])
    >>> print(t)
    true_class  0   1
    ---------- --- ---
             0   1   1
             1   1   2
    >>> confusion_table([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], normalize="true")["1"].round(3).tolist()
    [0.5, 0.667]
    """
    from sklearn.metrics import confusion_matrix

    if normalize not in (None, "true", "pred", "all"):
        raise InputError(f"normalize must be None, 'true', 'pred' or 'all', not {normalize!r}.")
    y_true, y_pred, classes = _check_labels(y_true, y_pred, classes)
    cm = confusion_matrix(y_true, y_pred, labels=classes)
    values = _normalize(cm, normalize)
    names = [str(c) for c in classes]
    if len(set(names)) != len(names) or "true_class" in names:
        raise InputError("Class names must be distinct as strings and not 'true_class'; "
                         f"got {names}.")
    what = {None: "Number of objects", "true": "Fraction of the true class",
            "pred": "Fraction of the predicted class", "all": "Fraction of all objects"}
    table = QTable(meta=provenance(stage="evaluate", metric="confusion matrix",
                                   normalize=normalize))
    table["true_class"] = _class_column(classes)
    table["true_class"].description = "True class (one row per class)"
    for j, name in enumerate(names):
        table[name] = values[:, j]
        table[name].description = f"{what[normalize]} predicted as {name!r}"
        if normalize is not None:
            table[name].info.format = ".3f"
    return table


def _normalize(cm, normalize):
    """Normalise a count matrix; rows/columns with no objects give 0."""
    cm = np.asarray(cm)
    if normalize is None:
        return cm
    if normalize == "true":
        total = cm.sum(axis=1, keepdims=True)
    elif normalize == "pred":
        total = cm.sum(axis=0, keepdims=True)
    else:
        total = cm.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, cm / np.where(total > 0, total, 1), 0.0)
    return out.astype(float)


def _check_labels(y_true, y_pred, classes):
    y_true = as_labels(y_true, "y_true")
    y_pred = as_labels(y_pred, "y_pred")
    if len(y_true) == 0:
        raise InputError("y_true is empty: nothing to score.")
    if len(y_true) != len(y_pred):
        raise InputError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}.")
    if (y_true.dtype.kind == "U") != (y_pred.dtype.kind == "U"):
        raise InputError("y_true and y_pred mix string and integer labels "
                         f"({y_true.dtype} and {y_pred.dtype}).")
    seen = np.unique(np.concatenate([y_true, y_pred]))
    if classes is None:
        classes = seen.tolist()
    else:
        classes = as_labels(list(classes), "classes").tolist()
        if len(set(classes)) != len(classes):
            raise InputError(f"classes has repeated entries: {classes}.")
        unknown = sorted(set(seen.tolist()) - set(classes), key=str)
        if unknown:
            raise InputError(f"Labels {unknown} are not in classes {classes}.")
    return y_true, y_pred, classes


def _class_column(classes):
    return np.array(classes)
