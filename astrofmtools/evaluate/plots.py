# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Figures for classification results: confusion matrices and label-efficiency curves."""

import numpy as np
from astropy.table import QTable, Table

from ..exceptions import InputError
from ..utils import provenance, save_figure
from ..utils.figures import DPI  # noqa: F401 - the resolution of saved figures
from .classification import _normalize, classification_metrics

__all__ = ["plot_confusion_matrix", "plot_label_efficiency", "label_efficiency_table"]

# scikit-learn is an optional dependency (the ``ml`` extra)
__doctest_requires__ = {"plot_confusion_matrix": ["sklearn", "matplotlib"],
                        "plot_label_efficiency": ["matplotlib"]}


def plot_confusion_matrix(y_true, y_pred=None, classes=None, path=None, normalize="true",
                          overwrite=False, title=None, ax=None):
    """
    Draw a confusion matrix with the count and fraction written in each cell.

    Parameters
    ----------
    y_true, y_pred : array-like
        True and predicted labels. Alternatively pass, as ``y_true`` alone,
        the dict returned by `classification_metrics` or a square array of
        counts (rows true, columns predicted; then ``classes`` names them,
        default ``0 .. K-1``).
    classes : sequence, optional
        The class order; defaults to the sorted union of the labels.
    path : str or `~pathlib.Path`, optional
        Save the figure to this PNG file (atomically); its size in pixels
        is the figure size in inches times 100 (dpi).
    normalize : {"true", "pred", "all", None}, optional
        The fraction written under each count and used for the colours:
        of the true class (rows sum to 1; the diagonal is the recall), of
        the predicted class (the diagonal is the precision), of all objects,
        or None for counts only (colours follow the counts).
    overwrite : bool, optional
        Replace an existing ``path``.
    title : str, optional
        Figure title; defaults to the macro-F1, accuracy and number of
        objects.
    ax : `~matplotlib.axes.Axes`, optional
        Draw into these axes instead of a new figure.

    Returns
    -------
    fig : `~matplotlib.figure.Figure`
        The figure (not registered with pyplot).

    Examples
    --------
    >>> from astrofmtools.evaluate import plot_confusion_matrix
    >>> y_true = ["FRI", "FRI", "FRII", "FRII", "compact", "compact"]
    >>> y_pred = ["FRI", "FRII", "FRII", "FRII", "compact", "FRI"]
    >>> fig = plot_confusion_matrix(y_true, y_pred, path="confusion.png")
    >>> fig.axes[0].get_xlabel()
    'Predicted class'
    """
    from matplotlib.figure import Figure

    if normalize not in (None, "true", "pred", "all"):
        raise InputError(f"normalize must be None, 'true', 'pred' or 'all', not {normalize!r}.")
    if y_pred is None:
        cm, classes, scores = _counts_from(y_true, classes)
    else:
        metrics = classification_metrics(y_true, y_pred, classes=classes)
        cm, classes = metrics["confusion"], metrics["classes"]
        scores = metrics
    k = len(classes)
    frac = _normalize(cm, normalize) if normalize is not None else None
    shade = frac if frac is not None else cm
    names = [str(c) for c in classes]

    side = min(max(3.2, 0.7 * k + 2.0), 16.0)
    if ax is None:
        fig = Figure(figsize=(side + 1.0, side), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    vmax = 1.0 if frac is not None else max(int(cm.max()), 1)
    im = ax.imshow(shade, cmap="Blues", vmin=0, vmax=vmax, interpolation="nearest")
    cbar = fig.colorbar(im, ax=ax, shrink=0.8)
    cbar.set_label({None: "Number of objects", "true": "Fraction of true class",
                    "pred": "Fraction of predicted class",
                    "all": "Fraction of all objects"}[normalize])
    if k <= 30:
        fontsize = 9 if k <= 8 else 7 if k <= 15 else 5
        for i in range(k):
            for j in range(k):
                text = f"{cm[i, j]:d}"
                if frac is not None:
                    text += f"\n{frac[i, j]:.2f}"
                dark = shade[i, j] > 0.55 * vmax
                ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                        color="white" if dark else "black")
    ax.set_xticks(range(k), names, rotation=45 if max(map(len, names)) > 4 else 0,
                  ha="right" if max(map(len, names)) > 4 else "center")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    if title is None and scores is not None:
        title = (f"macro-F1 {scores['macro_f1']:.3f}, accuracy {scores['accuracy']:.3f} "
                 f"(N = {scores['n']})")
    if title:
        ax.set_title(title, fontsize=10)
    save_figure(fig, path, overwrite)
    return fig


def label_efficiency_table(results, metric="macro_f1", group=None):
    """
    Average repeated runs into one row per strategy and label fraction.

    Parameters
    ----------
    results : `~astropy.table.Table`
        One row per run with a ``label_fraction`` column (fraction of the
        training labels used, in (0, 1], or a Quantity in percent), the
        ``metric`` column and the ``group`` column(s). Runs that differ only
        in seed are averaged.
    metric : str, optional
        The score column.
    group : str or list of str, optional
        Column(s) naming a curve. Defaults to those of ``model`` and
        ``strategy`` that exist.

    Returns
    -------
    table : `~astropy.table.QTable`
        Columns: the ``group`` column(s), ``label_fraction`` (fraction),
        ``<metric>`` (mean over runs), ``<metric>_std`` (standard deviation
        over runs, ddof=1; 0 for a single run unless the input had a
        ``<metric>_std`` column, which is then kept), ``n_runs``. Sorted by
        group, then label fraction.

    Examples
    --------
    >>> from astropy.table import Table
    >>> from astrofmtools.evaluate import label_efficiency_table
    >>> runs = Table({"strategy": ["frozen"] * 4, "label_fraction": [0.1, 0.1, 1.0, 1.0],
    ...               "seed": [0, 1, 0, 1], "macro_f1": [0.60, 0.64, 0.80, 0.82]})
    >>> t = label_efficiency_table(runs)
    >>> t["macro_f1"].round(3).tolist(), t["n_runs"].tolist()
    ([0.62, 0.81], [2, 2])
    """
    groups = _group_columns(results, group)
    if metric not in results.colnames:
        raise InputError(f"results has no {metric!r} column; columns: {results.colnames}.")
    fraction = _label_fraction(results)
    value = np.asarray(getattr(results[metric], "value", results[metric]), dtype=float)
    std_in = (np.asarray(results[f"{metric}_std"], dtype=float)
              if f"{metric}_std" in results.colnames else None)
    keys = [tuple(str(results[g][i]) for g in groups) + (float(fraction[i]),)
            for i in range(len(results))]
    order = sorted(set(keys))
    rows = {key: [i for i, k in enumerate(keys) if k == key] for key in order}
    out = QTable(meta=provenance(stage="evaluate", metric=metric, group=groups))
    for n, g in enumerate(groups):
        out[g] = [key[n] for key in order]
        out[g].description = f"Curve: {g}"
    out["label_fraction"] = [key[-1] for key in order]
    out["label_fraction"].description = "Fraction of the training labels used"
    mean, std = [], []
    for key in order:
        idx = rows[key]
        mean.append(np.mean(value[idx]))
        if len(idx) > 1:
            std.append(np.std(value[idx], ddof=1))
        elif std_in is not None:
            std.append(std_in[idx[0]])
        else:
            std.append(0.0)
    out[metric] = mean
    out[metric].description = f"{metric}, mean over runs"
    out[f"{metric}_std"] = std
    out[f"{metric}_std"].description = f"{metric}, standard deviation over runs"
    out["n_runs"] = [len(rows[key]) for key in order]
    out["n_runs"].description = "Number of runs averaged"
    return out


def plot_label_efficiency(results, path=None, metric="macro_f1", overwrite=False, group=None,
                          title=None, ax=None):
    """
    Plot a score against the fraction of labels used, one line per strategy.

    Parameters
    ----------
    results : `~astropy.table.Table`
        Results with columns ``label_fraction`` (in (0, 1], or a Quantity in
        percent), ``metric``, optionally ``<metric>_std`` (drawn as a band)
        and a ``strategy`` and/or ``model`` column naming the lines. Repeated
        runs (e.g. seeds) are averaged with `label_efficiency_table`, their
        spread drawn as the band.
    path : str or `~pathlib.Path`, optional
        Save the figure to this PNG file (atomically).
    metric : str, optional
        The score column for the y axis.
    overwrite : bool, optional
        Replace an existing ``path``.
    group : str or list of str, optional
        Column(s) naming a line; defaults to ``model`` and/or ``strategy``.
    title : str, optional
        Figure title.
    ax : `~matplotlib.axes.Axes`, optional
        Draw into these axes instead of a new figure.

    Returns
    -------
    fig : `~matplotlib.figure.Figure`
        The figure; x is the label fraction in percent on a log axis.

    Examples
    --------
    >>> from astropy.table import Table
    >>> from astrofmtools.evaluate import plot_label_efficiency
    >>> results = Table({"strategy": ["frozen"] * 3 + ["lora"] * 3,
    ...                  "label_fraction": [0.01, 0.1, 1.0] * 2,
    ...                  "macro_f1": [0.55, 0.70, 0.78, 0.40, 0.72, 0.86]})
    >>> fig = plot_label_efficiency(results, path="efficiency.png")
    >>> [line.get_label() for line in fig.axes[0].get_lines()]
    ['frozen', 'lora']
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator

    table = label_efficiency_table(results, metric=metric, group=group)
    groups = table.meta["group"]
    if ax is None:
        fig = Figure(figsize=(6.0, 4.2), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    names = [" / ".join(str(row[g]) for g in groups) for row in table]
    for name in dict.fromkeys(names):
        sel = np.array([n == name for n in names])
        x = 100 * np.asarray(table["label_fraction"][sel], dtype=float)
        y = np.asarray(table[metric][sel], dtype=float)
        err = np.asarray(table[f"{metric}_std"][sel], dtype=float)
        (line,) = ax.plot(x, y, marker="o", label=name)
        if np.any(err > 0):
            ax.fill_between(x, y - err, y + err, color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xscale("log")
    ticks = np.unique(100 * np.asarray(table["label_fraction"], dtype=float))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(ticks, [f"{t:g}%" for t in ticks])
    ax.set_xlabel("Training labels used (%)")
    ax.set_ylabel({"macro_f1": "Macro-F1", "accuracy": "Accuracy"}.get(metric, metric))
    ax.grid(alpha=0.3)
    if len(set(names)) > 1 or groups:
        ax.legend(title=" / ".join(groups) if groups else None, fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    save_figure(fig, path, overwrite)
    return fig


def _counts_from(y_true, classes):
    """(counts, classes, scores) from a metrics dict or a square count array."""
    if isinstance(y_true, dict):
        if "confusion" not in y_true:
            raise InputError("A dict passed to plot_confusion_matrix must be the output of "
                             "classification_metrics (with 'confusion' and 'classes').")
        cm = np.asarray(y_true["confusion"])
        return cm, list(y_true["classes"] if classes is None else classes), y_true
    cm = np.asarray(y_true)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.dtype.kind not in "iu" \
            or np.any(cm < 0):
        raise InputError("Without y_pred, y_true must be classification_metrics output or a "
                         f"square array of non-negative integer counts; got shape {cm.shape} "
                         f"and dtype {cm.dtype}.")
    classes = list(range(len(cm))) if classes is None else list(classes)
    if len(classes) != len(cm):
        raise InputError(f"{len(classes)} classes given for a {len(cm)}x{len(cm)} matrix.")
    n = int(cm.sum())
    scores = None
    if n > 0:
        # macro-F1 over the classes present, as classification_metrics does
        tp = np.diag(cm).astype(float)
        denom = cm.sum(axis=0) + cm.sum(axis=1)
        present = denom > 0
        f1 = 2 * tp[present] / denom[present]
        scores = {"macro_f1": float(np.mean(f1)), "accuracy": float(tp.sum() / n), "n": n}
    return cm, classes, scores


def _group_columns(results, group):
    if not isinstance(results, Table):
        raise InputError(f"results must be an astropy Table, not {type(results).__name__}.")
    if group is None:
        groups = [g for g in ("model", "strategy") if g in results.colnames]
    else:
        groups = [group] if isinstance(group, str) else list(group)
    missing = [g for g in groups if g not in results.colnames]
    if missing:
        raise InputError(f"results has no {missing} column(s); columns: {results.colnames}.")
    return groups


def _label_fraction(results):
    if "label_fraction" not in results.colnames:
        raise InputError(f"results has no 'label_fraction' column; columns: {results.colnames}.")
    col = results["label_fraction"]
    unit = getattr(col, "unit", None)
    if unit is not None and str(unit) != "":
        import astropy.units as u

        try:
            fraction = (np.asarray(col) * unit).to_value(u.dimensionless_unscaled)
        except u.UnitConversionError:
            raise InputError(f"label_fraction has unit {unit}; expected a fraction or "
                             "percent.") from None
    else:
        fraction = np.asarray(col, dtype=float)
    if np.any(~np.isfinite(fraction)) or np.any(fraction <= 0) or np.any(fraction > 1):
        raise InputError("label_fraction must be in (0, 1] (use a Quantity in percent for "
                         f"percentages); got {sorted(set(np.round(fraction, 6).tolist()))}.")
    return fraction
