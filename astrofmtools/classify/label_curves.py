# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Label-efficiency curves: the error of one or several models against the number
of labels they were trained on (`label_efficiency`, `label_efficiency_summary`,
`plot_label_curve`).
"""

import time

import numpy as np
from astropy.table import QTable

from ..exceptions import InputError
from ..utils import json_value, provenance, save_figure
from .inputs import _as_inputs, _as_labels

__all__ = ["label_efficiency", "label_efficiency_summary", "plot_label_curve"]

__doctest_requires__ = {("label_efficiency", "plot_label_curve"): ["torch", "matplotlib"]}

#: Classifier arguments that `label_efficiency` sets itself for every run.
_SET_PER_RUN = ("label_fraction", "seed")


def label_efficiency(cutouts, labels, fractions=(0.1, 0.3, 1.0), seeds=(0, 1, 2), models=None,
                     test=None, folds=5):
    """
    The error of one or several classifiers against the number of labels used.

    Each model is trained on a seeded, per-class fraction of the labels
    (the `~astrofmtools.classify.Classifier`'s ``label_fraction``) and
    scored on cutouts it never saw: the given ``test`` set, or else each
    fold of a stratified cross-validation of the given cutouts. Comparing
    models on the same splits (the same backbone with and without
    self-supervised pretraining, say) shows which needs fewer labels.

    Parameters
    ----------
    cutouts : `~astrofmtools.cutouts.CutoutStack`, list of them, or array
        The labelled cutouts (as for `~astrofmtools.classify.Classifier.fit`).
    labels : str or array-like
        One label per cutout, or the name of a column of the stack's table.
    fractions : sequence of float, optional
        The label fractions, each in (0, 1]; a smaller fraction's labels are
        a subset of a larger one's (same seed).
    seeds : int or sequence of int, optional
        The seeds of the label subsets, validation splits and initialisations
        (an int ``n``: ``0 .. n-1``).
    models : dict, list or str, optional
        ``{name: kwargs}``: a name for each curve and the
        `~astrofmtools.classify.Classifier` arguments (``backbone``,
        ``weights``, ``strategy``, ``head``, ``preprocess``, training
        settings, ...; without ``backbone``, the name is the backbone). A
        list of backbone names, or one name, is ``{name: {}}`` for each.
        Default: ``{"efficientnet_lite0": {}}``.
    test : tuple, optional
        ``(cutouts, labels)`` of a held-out test set. Without it, the
        cutouts are cross-validated.
    folds : int, optional
        Without ``test``: the number of stratified folds (at least 2, and at
        most the size of the smallest class). The folds are the same for
        every model, fraction and seed, so that a frozen backbone's features
        of each fold are computed once (the classifier's feature cache).

    Returns
    -------
    runs : `~astropy.table.QTable`
        One row per (model, fraction, seed, fold), with columns ``model``
        (the curve's name), ``strategy``, ``weights`` (the backbone's weights
        as loaded: ``'random'`` for random initialisation), ``label_fraction``,
        ``seed``, ``fold`` (0-based; -1 with a test set), ``n_labels`` (the
        labelled cutouts the run used, validation split included),
        ``n_test`` (cutouts scored), ``error`` (1 - accuracy), ``macro_f1``
        and ``seconds`` (training and prediction). ``meta`` records the
        settings (``validation``: ``'test set'`` or ``'<k>-fold
        cross-validation'``). `label_efficiency_summary` averages it;
        `plot_label_curve` draws it.

    Raises
    ------
    astrofmtools.InputError
        For bad fractions, seeds, folds or model arguments, labels that do
        not match the cutouts, or classes too small for the folds.

    Examples
    --------
    Compact sources against doubles, with the default backbone frozen at a
    small input size and a logistic-regression head (seconds on a CPU):

    >>> import numpy as np
    >>> from astrofmtools.classify import label_efficiency, label_efficiency_summary
    >>> yy, xx = np.mgrid[:24, :24] - 11.5
    >>> def source(dx):
    ...     return np.exp(-((xx - dx) ** 2 + yy ** 2) / 4) + np.exp(-((xx + dx) ** 2 + yy ** 2) / 4)
    >>> rng = np.random.default_rng(0)
    >>> images = np.array([source(0 if i % 2 else 6) + 0.05 * rng.normal(size=(24, 24))
    ...                    for i in range(60)])
    >>> labels = np.where(np.arange(60) % 2, "compact", "double")
    >>> lite = {"backbone": "efficientnet_lite0", "head": "logistic", "tta": False,
    ...         "preprocess": {"input_size": 32}, "device": "cpu"}
    >>> runs = label_efficiency(images, labels, fractions=(0.2, 1.0), seeds=1, folds=2,
    ...                         models={"lite0": lite})
    >>> len(runs), runs.colnames[:4]
    (4, ['model', 'strategy', 'weights', 'label_fraction'])
    >>> summary = label_efficiency_summary(runs)
    >>> summary["n_labels"].tolist(), bool(summary["error"][-1] < 0.1)
    ([6.0, 30.0], True)
    """
    from ..evaluate import classification_metrics

    fractions = _fractions(fractions)
    seeds = _seeds(seeds)
    models = _models(models)
    inputs, table = _as_inputs(cutouts)
    y = np.asarray(_as_labels(labels, table, len(table)))
    classes = np.unique(y)
    if len(classes) < 2:
        raise InputError(f"A label-efficiency curve needs at least two classes; the labels "
                         f"hold only {classes.tolist()}.")
    if test is not None:
        try:
            test_cutouts, test_labels = test
        except (TypeError, ValueError):
            raise InputError("test must be a (cutouts, labels) pair.") from None
        test_inputs, test_table = _as_inputs(test_cutouts, "test cutouts")
        y_test = np.asarray(_as_labels(test_labels, test_table, len(test_table)))
        splits = [(-1, np.arange(len(y)), None)]
        validation = "test set"
    else:
        splits = [(k, train, held) for k, (train, held) in enumerate(_folds(y, folds))]
        validation = f"{folds}-fold cross-validation"

    from .classifier import Classifier
    from .train import label_fraction_indices
    rows = []
    for name, kwargs in models.items():
        for fraction in fractions:
            for seed in seeds:
                for fold, train, held in splits:
                    clf = Classifier(**kwargs, label_fraction=fraction, seed=seed)
                    if held is None:
                        x_train, y_train, x_held, y_held = inputs, y, test_inputs, y_test
                    else:
                        x_train, y_train = inputs[train], y[train]
                        x_held, y_held = inputs[held], y[held]
                    start = time.perf_counter()
                    clf.fit(x_train, y_train)
                    predicted = clf.classes_[clf.predict_proba(x_held).argmax(axis=1)]
                    seconds = time.perf_counter() - start
                    scores = classification_metrics(y_held, predicted,
                                                     classes=np.union1d(classes, y_held))
                    rows.append({
                        "model": name, "strategy": clf.strategy,
                        "weights": str(clf.backbone_.weights), "label_fraction": fraction,
                        "seed": seed, "fold": fold,
                        "n_labels": len(label_fraction_indices(y_train, fraction, seed=seed)),
                        "n_test": len(y_held), "error": 1.0 - scores["accuracy"],
                        "macro_f1": scores["macro_f1"], "seconds": seconds})
    meta = provenance(stage="label_efficiency", validation=validation,
                      folds=None if test is not None else int(folds),
                      fractions=list(fractions), seeds=list(seeds),
                      models={name: _plain(kwargs) for name, kwargs in models.items()})
    return _runs_table(rows, meta)


_RUN_COLUMNS = {
    "model": (str, "name of the curve (the model compared)"),
    "strategy": (str, "adaptation strategy of the backbone"),
    "weights": (str, "the backbone's weights as loaded ('random': random initialisation)"),
    "label_fraction": (float, "fraction of each class's labels used"),
    "seed": (np.int64, "seed of the label subset, validation split and initialisation"),
    "fold": (np.int64, "cross-validation fold scored (0-based; -1: the given test set)"),
    "n_labels": (np.int64, "labelled cutouts used (training and validation splits)"),
    "n_test": (np.int64, "cutouts scored"),
    "error": (float, "fraction of the scored cutouts misclassified (1 - accuracy)"),
    "macro_f1": (float, "macro-averaged F1 on the scored cutouts"),
    "seconds": (float, "time to train and predict"),
}


def _runs_table(rows, meta):
    out = QTable(meta=meta)
    for name, (dtype, description) in _RUN_COLUMNS.items():
        values = [r[name] for r in rows]
        out[name] = np.array(values, dtype=dtype) if values else np.zeros(0, dtype=dtype)
        out[name].info.description = description
    return out


def label_efficiency_summary(runs):
    """
    The mean and spread of label-efficiency runs, per model and label fraction.

    Parameters
    ----------
    runs : `~astropy.table.Table`
        The table of `label_efficiency` (or one with its columns
        ``model``, ``label_fraction``, ``n_labels``, ``error``,
        ``macro_f1``, ``seconds``; ``weights`` optional).

    Returns
    -------
    summary : `~astropy.table.QTable`
        One row per (model, fraction), in the order the models first appear
        and by fraction: ``model``, ``weights``, ``label_fraction``,
        ``n_labels`` (mean number of labels), ``error``, ``error_std``,
        ``macro_f1``, ``macro_f1_std`` (mean and standard deviation over the
        seeds and folds, ddof=1; 0 for one run), ``seconds`` (mean) and
        ``n_runs``.

    Examples
    --------
    >>> from astropy.table import Table
    >>> from astrofmtools.classify import label_efficiency_summary
    >>> runs = Table({"model": ["a"] * 4, "label_fraction": [0.1, 0.1, 1.0, 1.0],
    ...               "n_labels": [10, 10, 100, 100], "error": [0.3, 0.2, 0.1, 0.1],
    ...               "macro_f1": [0.7, 0.8, 0.9, 0.9], "seconds": [1.0, 1.0, 2.0, 2.0]})
    >>> s = label_efficiency_summary(runs)
    >>> s["error"].round(3).tolist(), s["error_std"].round(3).tolist(), s["n_runs"].tolist()
    ([0.25, 0.1], [0.071, 0.0], [2, 2])
    """
    from ..evaluate import label_efficiency_table
    missing = [c for c in ("model", "label_fraction", "n_labels", "error", "macro_f1",
                           "seconds") if c not in getattr(runs, "colnames", ())]
    if missing:
        raise InputError(f"The runs table lacks the column(s) {', '.join(missing)} (make it "
                         "with label_efficiency).")
    # the mean and spread of each score: evaluate's averaging of repeated runs
    parts = {m: label_efficiency_table(runs, metric=m, group="model")
             for m in ("error", "macro_f1", "n_labels", "seconds")}
    base = parts["error"]
    order = list(dict.fromkeys(str(m) for m in runs["model"]))
    rows = sorted(range(len(base)), key=lambda i: (order.index(str(base["model"][i])),
                                                   float(base["label_fraction"][i])))
    weights = {str(m): str(w) for m, w in zip(runs["model"], runs["weights"])} \
        if "weights" in runs.colnames else {}
    out = QTable(meta=dict(runs.meta))
    out["model"] = base["model"][rows]
    out["model"].info.description = "name of the curve (the model compared)"
    out["weights"] = [weights.get(str(m), "") for m in out["model"]]
    out["weights"].info.description = "the backbone's weights ('random': random initialisation)"
    out["label_fraction"] = base["label_fraction"][rows]
    out["label_fraction"].info.description = "fraction of each class's labels used"
    out["n_labels"] = parts["n_labels"]["n_labels"][rows]
    out["n_labels"].info.description = "labelled cutouts used, mean over the runs"
    for m in ("error", "macro_f1"):
        out[m] = parts[m][m][rows]
        out[m].info.description = f"{m}, mean over the runs (seeds and folds)"
        out[f"{m}_std"] = parts[m][f"{m}_std"][rows]
        out[f"{m}_std"].info.description = f"{m}, standard deviation over the runs"
    out["seconds"] = parts["seconds"]["seconds"][rows]
    out["seconds"].info.description = "time to train and predict, mean over the runs"
    out["n_runs"] = base["n_runs"][rows]
    out["n_runs"].info.description = "runs averaged"
    return out


def plot_label_curve(runs, path=None, metric="error", overwrite=False, title=None, ax=None):
    """
    Plot the error (or macro-F1) against the number of labels, one line per model.

    Parameters
    ----------
    runs : `~astropy.table.Table`
        The table of `label_efficiency`, or its `label_efficiency_summary`.
    path : str or `~pathlib.Path`, optional
        Save the figure to this PNG file (atomically).
    metric : {'error', 'macro_f1'}, optional
        The y axis.
    overwrite : bool, optional
        Replace an existing ``path``.
    title : str, optional
        The title (default: what was compared and how). A figure of a model
        with random weights says so in its title, whatever the title given,
        and in the legend.
    ax : `~matplotlib.axes.Axes`, optional
        Draw into these axes instead of a new figure.

    Returns
    -------
    fig : `~matplotlib.figure.Figure`
        The figure: x is the mean number of labels (log axis), y the mean
        ``metric`` with error bars of one standard deviation over the seeds
        and folds.

    Examples
    --------
    >>> from astropy.table import Table
    >>> from astrofmtools.classify import plot_label_curve
    >>> runs = Table({"model": ["lite0"] * 2 + ["lite0-random"] * 2,
    ...               "weights": ["efficientnet-lite0"] * 2 + ["random"] * 2,
    ...               "label_fraction": [0.1, 1.0] * 2, "n_labels": [10, 100] * 2,
    ...               "error": [0.2, 0.05, 0.4, 0.2], "macro_f1": [0.8, 0.95, 0.6, 0.8],
    ...               "seconds": [1.0] * 4})
    >>> fig = plot_label_curve(runs, "curve.png")
    >>> print(fig.axes[0].get_title())
    Label efficiency
    random weights (not pretrained): lite0-random
    """
    from matplotlib.figure import Figure

    if metric not in ("error", "macro_f1"):
        raise InputError(f"metric must be 'error' or 'macro_f1', not {metric!r}.")
    summary = runs if "n_runs" in getattr(runs, "colnames", ()) else \
        label_efficiency_summary(runs)
    if ax is None:
        fig = Figure(figsize=(6.0, 4.2), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    names = [str(m) for m in summary["model"]]
    random = []
    for name in dict.fromkeys(names):
        sel = np.array([n == name for n in names])
        is_random = "weights" in summary.colnames and \
            str(summary["weights"][np.flatnonzero(sel)[0]]) == "random"
        if is_random:
            random.append(name)
        ax.errorbar(np.asarray(summary["n_labels"][sel], dtype=float),
                    np.asarray(summary[metric][sel], dtype=float),
                    yerr=np.asarray(summary[f"{metric}_std"][sel], dtype=float),
                    marker="o", capsize=3,
                    label=name + (" (random weights)" if is_random else ""))
    ax.set_xscale("log")
    ax.set_xlabel("Number of training labels")
    ax.set_ylabel({"error": "Error (1 - accuracy)", "macro_f1": "Macro-F1"}[metric])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title is None:
        title = "Label efficiency"
        validation = summary.meta.get("validation")
        if validation:
            title += f" ({validation})"
    if random:
        title += "\nrandom weights (not pretrained): " + ", ".join(random)
    ax.set_title(title, fontsize=10)
    save_figure(fig, path, overwrite)
    return fig


# ---------------------------------------------------------------------- checks
def _fractions(fractions):
    try:
        values = sorted({float(f) for f in np.atleast_1d(fractions)})
    except (TypeError, ValueError):
        raise InputError(f"fractions must be numbers in (0, 1], not {fractions!r}.") from None
    if not values or any(not 0 < f <= 1 for f in values):
        raise InputError(f"fractions must be numbers in (0, 1]; got {fractions!r}.")
    return values


def _seeds(seeds):
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise InputError(f"seeds must be a positive number of seeds or a list of them, "
                             f"not {seeds!r}.")
        return list(range(int(seeds)))
    try:
        values = [int(s) for s in seeds]
    except (TypeError, ValueError):
        raise InputError(f"seeds must be an int or a list of ints, not {seeds!r}.") from None
    if not values or len(set(values)) != len(values):
        raise InputError(f"seeds must be distinct integers; got {seeds!r}.")
    return values


def _models(models):
    if models is None:
        models = ["efficientnet_lite0"]
    if isinstance(models, str):
        models = [models]
    if isinstance(models, (list, tuple)):
        if not all(isinstance(m, str) for m in models):
            raise InputError("A list of models must hold backbone names; give a dict "
                             "{name: Classifier arguments} for more.")
        models = {m: {} for m in models}
    if not isinstance(models, dict) or not models:
        raise InputError(f"models must be a dict {{name: Classifier arguments}}, a list of "
                         f"backbone names or a name; got {models!r}.")
    out = {}
    for name, kwargs in models.items():
        if not isinstance(kwargs, dict):
            raise InputError(f"The arguments of model {name!r} must be a dict of Classifier "
                             f"arguments, not a {type(kwargs).__name__}.")
        fixed = [k for k in _SET_PER_RUN if k in kwargs]
        if fixed:
            raise InputError(f"Model {name!r} sets {', '.join(fixed)}, which label_efficiency "
                             "sets for each run (use fractions= and seeds=).")
        kwargs = dict(kwargs)
        kwargs.setdefault("backbone", name)
        out[str(name)] = kwargs
    return out


def _folds(y, folds):
    from sklearn.model_selection import StratifiedKFold
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise InputError(f"folds must be an integer >= 2, not {folds!r}.")
    _, counts = np.unique(y, return_counts=True)
    if counts.min() < folds:
        raise InputError(f"{folds}-fold cross-validation needs at least {folds} cutouts of "
                         f"each class; the smallest class has {counts.min()}. Use fewer "
                         "folds or give a test set.")
    splitter = StratifiedKFold(n_splits=int(folds), shuffle=True, random_state=0)
    return list(splitter.split(np.zeros(len(y)), y))


def _plain(kwargs):
    """Classifier arguments as table meta can hold them (objects by their repr)."""
    out = {}
    for key, value in kwargs.items():
        value = json_value(value)
        out[key] = value if isinstance(value, (str, int, float, bool, list, dict,
                                               type(None))) else repr(value)
    return out
