# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Calibration of classifier probabilities: the expected and maximum calibration
error of the top-label confidence (Guo et al. 2017), the reliability table and
diagram behind them, and temperature scaling fitted by maximum likelihood.

All functions take plain arrays: ``probabilities`` of shape (N, K) whose rows
sum to 1, ``logits`` of shape (N, K) (log-probabilities work too, as they are
logits up to a constant per row) and ``labels`` of shape (N,) holding integer
class indices ``0 .. K-1``.
"""

import numpy as np
from astropy.table import Table

from ..exceptions import InputError
from ..utils import provenance, save_figure

__all__ = ["expected_calibration_error", "maximum_calibration_error", "reliability_table",
           "plot_reliability", "fit_temperature", "apply_temperature"]

__doctest_requires__ = {"plot_reliability": ["matplotlib"]}

# the search range of the fitted temperature
_T_MIN, _T_MAX = 0.05, 20.0


def _as_labels(labels, n, k, what="labels"):
    """Integer class indices of shape (n,), each in ``0 .. k-1``."""
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != n:
        raise InputError(f"{what} must be a 1-D array of {n} class indices (one per row of "
                         f"the probabilities); got shape {y.shape}.")
    if y.dtype.kind not in "iub":
        if y.dtype.kind != "f" or not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise InputError(f"{what} must be integer class indices 0 .. {k - 1}; got "
                             f"dtype {y.dtype} (map class names to their column index "
                             f"first, e.g. with np.searchsorted(classes, names)).")
    y = y.astype(np.int64)
    if n and (y.min() < 0 or y.max() >= k):
        raise InputError(f"{what} must be class indices in 0 .. {k - 1} (the columns of "
                         f"the probabilities); got values from {y.min()} to {y.max()}.")
    return y


def _as_probabilities(probabilities, what="probabilities"):
    """A float (N, K) array of probabilities whose rows sum to 1."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 1:
        raise InputError(f"{what} must be a 2-D array of shape (N, K) (one row per object, "
                         f"one column per class); got shape {p.shape}.")
    if not np.all(np.isfinite(p)):
        raise InputError(f"{what} contain NaN or infinite values.")
    if p.size and (p.min() < -1e-6 or p.max() > 1 + 1e-6):
        raise InputError(f"{what} must lie in [0, 1]; got values from {p.min():g} to "
                         f"{p.max():g} (pass logits through apply_temperature first).")
    if len(p):
        sums = p.sum(axis=1)
        worst = np.abs(sums - 1).max()
        if worst > 1e-3:
            raise InputError(f"Each row of the {what} must sum to 1; row "
                             f"{int(np.abs(sums - 1).argmax())} sums to "
                             f"{sums[np.abs(sums - 1).argmax()]:g}.")
    return np.clip(p, 0.0, 1.0)


def _as_logits(logits):
    """A float (N, K) array of logits; ``-inf`` (a zero probability) is allowed."""
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 1:
        raise InputError(f"logits must be a 2-D array of shape (N, K) (one row per object, "
                         f"one column per class); got shape {z.shape}.")
    if np.isnan(z).any() or np.isposinf(z).any():
        raise InputError("logits contain NaN or +inf values.")
    if len(z) and not np.all(np.isfinite(z.max(axis=1))):
        raise InputError("Every row of the logits needs at least one finite value; some "
                         "rows are all -inf.")
    return z


def _check_n_bins(n_bins):
    if isinstance(n_bins, bool) or not float(n_bins).is_integer() or int(n_bins) < 1:
        raise InputError(f"n_bins must be a positive integer; got {n_bins!r}.")
    return int(n_bins)


def _binned(probabilities, labels, n_bins):
    """Per equal-width bin of the top-label confidence: edges, count, mean confidence,
    accuracy (NaN in empty bins)."""
    p = _as_probabilities(probabilities)
    y = _as_labels(labels, len(p), p.shape[1])
    n_bins = _check_n_bins(n_bins)
    if len(p) == 0:
        raise InputError("Calibration needs at least one object; the probabilities are empty.")
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # bins are (lower, upper]; a confidence of exactly 0 falls in the first bin
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, confidence, minlength=n_bins) / count
        accuracy = np.bincount(index, correct, minlength=n_bins) / count
    return edges, count, mean_conf, accuracy


def expected_calibration_error(probabilities, labels, n_bins=15):
    """
    Expected calibration error of the top-label confidence.

    The confidence (the largest probability of each row) is sorted into
    ``n_bins`` equal-width bins on [0, 1]; the ECE is the mean over bins of
    ``|accuracy - mean confidence|`` weighted by the fraction of objects in
    the bin.

    Parameters
    ----------
    probabilities : array-like of shape (N, K)
        Predicted class probabilities; rows sum to 1.
    labels : array-like of shape (N,)
        True class indices ``0 .. K-1``.
    n_bins : int, optional
        Number of equal-width confidence bins.

    Returns
    -------
    ece : float
        In [0, 1]; 0 for a perfectly calibrated classifier (in the limit of
        many objects per bin).

    Raises
    ------
    astrofmtools.InputError
        If the shapes disagree, a row does not sum to 1 or a label is not a
        column index.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.trust import expected_calibration_error
    >>> p = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    >>> round(expected_calibration_error(p, [0, 0, 0, 1], n_bins=10), 3)
    0.1
    """
    _, count, conf, acc = _binned(probabilities, labels, n_bins)
    full = count > 0
    return float(np.sum(count[full] * np.abs(acc[full] - conf[full])) / count.sum())


def maximum_calibration_error(probabilities, labels, n_bins=15):
    """
    Maximum calibration error: the largest ``|accuracy - mean confidence|`` of a bin.

    Parameters
    ----------
    probabilities : array-like of shape (N, K)
        Predicted class probabilities; rows sum to 1.
    labels : array-like of shape (N,)
        True class indices ``0 .. K-1``.
    n_bins : int, optional
        Number of equal-width confidence bins; empty bins are skipped.

    Returns
    -------
    mce : float
        In [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.trust import maximum_calibration_error
    >>> p = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    >>> round(maximum_calibration_error(p, [0, 0, 0, 1], n_bins=10), 3)
    0.1
    """
    _, count, conf, acc = _binned(probabilities, labels, n_bins)
    full = count > 0
    return float(np.max(np.abs(acc[full] - conf[full])))


def reliability_table(probabilities, labels, n_bins=15):
    """
    The reliability table: accuracy against mean confidence per confidence bin.

    Parameters
    ----------
    probabilities : array-like of shape (N, K)
        Predicted class probabilities; rows sum to 1.
    labels : array-like of shape (N,)
        True class indices ``0 .. K-1``.
    n_bins : int, optional
        Number of equal-width confidence bins on [0, 1]; bin ``i`` holds the
        confidences in ``(bin_lower, bin_upper]`` (the first bin also 0).

    Returns
    -------
    table : `~astropy.table.Table`
        One row per bin, empty bins included. Columns: ``bin_lower``,
        ``bin_upper`` (the bin edges), ``count`` (objects whose top-label
        confidence falls in the bin; they sum to N), ``confidence`` (their
        mean top-label confidence) and ``accuracy`` (the fraction whose top
        class is the true class); both NaN for an empty bin. ``meta`` holds
        ``ece``, ``mce``, ``n``, ``n_bins`` and the provenance (date,
        versions).

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.trust import reliability_table
    >>> p = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    >>> t = reliability_table(p, [0, 0, 0, 1], n_bins=5)
    >>> t["count"].tolist(), t["accuracy"][[2, 4]].tolist()
    ([0, 0, 2, 0, 2], [0.5, 1.0])
    >>> round(t.meta["ece"], 3)
    0.1
    """
    edges, count, conf, acc = _binned(probabilities, labels, n_bins)
    full = count > 0
    ece = float(np.sum(count[full] * np.abs(acc[full] - conf[full])) / count.sum())
    mce = float(np.max(np.abs(acc[full] - conf[full])))
    table = Table({"bin_lower": edges[:-1], "bin_upper": edges[1:], "count": count.astype(np.int64),
                   "confidence": conf, "accuracy": acc},
                  meta=provenance(stage="reliability", n=int(count.sum()), n_bins=len(count),
                                  ece=ece, mce=mce))
    table["bin_lower"].description = "lower edge of the confidence bin (exclusive)"
    table["bin_upper"].description = "upper edge of the confidence bin (inclusive)"
    table["count"].description = "number of objects whose top-label confidence is in the bin"
    table["confidence"].description = "mean top-label confidence in the bin (NaN if empty)"
    table["accuracy"].description = "fraction whose top class is the true class (NaN if empty)"
    return table


def plot_reliability(probabilities, labels, n_bins=15, ax=None, title=None, label=None, *,
                     path=None, overwrite=False):
    """
    Draw the reliability diagram: accuracy against confidence per bin.

    Bars show the accuracy of each non-empty confidence bin, a hatched band
    the gap to the bin's mean confidence, and a dashed diagonal perfect
    calibration; the legend gives the ECE.

    Parameters
    ----------
    probabilities : array-like of shape (N, K)
        Predicted class probabilities; rows sum to 1.
    labels : array-like of shape (N,)
        True class indices ``0 .. K-1``.
    n_bins : int, optional
        Number of equal-width confidence bins.
    ax : `~matplotlib.axes.Axes`, optional
        Draw into these axes (e.g. to compare two models side by side)
        instead of a new figure.
    title : str, optional
        Axes title; defaults to the ECE, MCE and number of objects (for a
        new figure, or axes without a title).
    label : str, optional
        Name of the model in the legend (``"<label>: ECE = 0.034"``).
    path : str or `~pathlib.Path`, optional
        Save the figure to this PNG file (atomically).
    overwrite : bool, optional
        Replace an existing ``path``.

    Returns
    -------
    ax : `~matplotlib.axes.Axes`
        The axes drawn into; ``ax.figure`` is the figure (a new one is not
        registered with pyplot).

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.trust import plot_reliability
    >>> rng = np.random.default_rng(0)
    >>> p = rng.dirichlet(np.ones(3), size=500)
    >>> y = np.array([rng.choice(3, p=row) for row in p])
    >>> ax = plot_reliability(p, y, n_bins=10, label="calibrated", path="reliability.png")
    >>> ax.get_xlabel(), ax.get_legend().get_texts()[1].get_text()[:16]
    ('Confidence', 'calibrated: ECE ')
    """
    table = reliability_table(probabilities, labels, n_bins)
    ece, mce, n = table.meta["ece"], table.meta["mce"], table.meta["n"]
    if ax is None:
        from matplotlib.figure import Figure
        fig = Figure(figsize=(4.4, 4.2), layout="constrained")
        ax = fig.add_subplot()
        new = True
    else:
        fig, new = ax.figure, False
    full = np.asarray(table["count"]) > 0
    lower = np.asarray(table["bin_lower"])[full]
    width = np.asarray(table["bin_upper"] - table["bin_lower"])[full]
    acc = np.asarray(table["accuracy"])[full]
    conf = np.asarray(table["confidence"])[full]
    text = f"ECE = {ece:.3f}" if label is None else f"{label}: ECE = {ece:.3f}"
    has_diagonal = any(line.get_label() == "Perfect calibration" for line in ax.get_lines())
    if not has_diagonal:
        ax.plot([0, 1], [0, 1], ls="--", color="0.4", lw=1, label="Perfect calibration")
    bars = ax.bar(lower, acc, width=width, align="edge", alpha=0.75, edgecolor="black",
                  lw=0.6, label=text)
    ax.bar(lower, conf - acc, bottom=acc, width=width, align="edge", fill=False,
           hatch="//", edgecolor=bars.patches[0].get_facecolor() if len(bars) else "C3",
           lw=0.6, label="_gap")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("Confidence")
    ax.set_ylabel("Accuracy")
    ax.legend(loc="upper left", fontsize=8)
    if title is None and (new or not ax.get_title()):
        title = f"ECE {ece:.3f}, MCE {mce:.3f} (N = {n})"
    if title:
        ax.set_title(title, fontsize=10)
    save_figure(fig, path, overwrite)
    return ax


def _nll(logits, labels, temperature):
    """Mean negative log-likelihood of softmax(logits / T) at the true labels."""
    from scipy.special import logsumexp
    z = logits / temperature
    return float(np.mean(logsumexp(z, axis=1) - z[np.arange(len(z)), labels]))


def fit_temperature(logits, labels):
    """
    Fit the temperature that makes softmax(logits / T) best calibrated.

    Temperature scaling (Guo et al. 2017) divides all logits by one number
    ``T``, chosen here to minimise the mean negative log-likelihood of the
    true labels (bounded search on ``log T`` with T in [0.05, 20]). ``T > 1``
    softens an over-confident model, ``T < 1`` sharpens an under-confident
    one; the predicted class never changes. Fit it on held-out data (a
    validation split), never on the training set.

    Parameters
    ----------
    logits : array-like of shape (N, K)
        Raw scores of a classifier. Log-probabilities work as well (they
        are logits up to a constant per row); ``-inf`` entries (zero
        probabilities) are replaced by the row's largest logit minus 10^4.
    labels : array-like of shape (N,)
        True class indices ``0 .. K-1``.

    Returns
    -------
    temperature : float
        In [0.05, 20]; a value at a bound means the optimum lies beyond it.

    Raises
    ------
    astrofmtools.InputError
        If the shapes disagree, a label is not a column index, a logit is
        NaN or +inf, or there are no objects.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.trust import apply_temperature, fit_temperature
    >>> rng = np.random.default_rng(1)
    >>> logits = rng.normal(0, 2, size=(4000, 4))
    >>> y = np.array([rng.choice(4, p=row) for row in apply_temperature(logits, 1.0)])
    >>> round(fit_temperature(3 * logits, y), 1)    # over-confident by a factor 3
    3.0
    """
    from scipy.optimize import minimize_scalar
    z = _as_logits(logits)
    if len(z) == 0:
        raise InputError("fit_temperature needs at least one labelled object; the logits "
                         "are empty.")
    y = _as_labels(labels, len(z), z.shape[1])
    z = np.maximum(z, z.max(axis=1, keepdims=True) - 1e4)
    z = z - z.max(axis=1, keepdims=True)
    result = minimize_scalar(lambda log_t: _nll(z, y, np.exp(log_t)), method="bounded",
                             bounds=(np.log(_T_MIN), np.log(_T_MAX)),
                             options={"xatol": 1e-6})
    return float(np.clip(np.exp(result.x), _T_MIN, _T_MAX))


def apply_temperature(logits, temperature):
    """
    Probabilities softmax(logits / T), computed without overflow.

    Parameters
    ----------
    logits : array-like of shape (N, K) or (K,)
        Raw scores (or log-probabilities); ``-inf`` gives a probability of 0.
    temperature : float
        T > 0, e.g. from `fit_temperature`; 1 is the plain softmax.

    Returns
    -------
    probabilities : `~numpy.ndarray` of the shape of ``logits``
        Each row sums to 1.

    Raises
    ------
    astrofmtools.InputError
        If ``temperature`` is not a positive finite number or a logit is
        NaN or +inf.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.trust import apply_temperature
    >>> p = apply_temperature([[1000.0, 999.0, -np.inf]], 1.0)
    >>> p.round(4).tolist()
    [[0.7311, 0.2689, 0.0]]
    >>> apply_temperature([[1000.0, 999.0, -np.inf]], 1e6).round(4).tolist()
    [[0.5, 0.5, 0.0]]
    """
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise InputError(f"temperature must be a positive number; got {temperature!r}.") from None
    if not np.isfinite(t) or t <= 0:
        raise InputError(f"temperature must be a positive finite number; got {temperature!r}.")
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim == 1:
        return apply_temperature(z[None], t)[0]
    z = _as_logits(z) / t
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
