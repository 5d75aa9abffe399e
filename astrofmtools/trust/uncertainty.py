# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Predictive uncertainty of class probabilities: the entropy of one prediction
and its split into aleatoric and epistemic parts over stochastic passes
(Monte-Carlo dropout) or ensemble members.

For S passes with probabilities :math:`p_s` the total uncertainty is the
entropy of the mean, :math:`H[\\bar p]`; the aleatoric part is the mean
entropy :math:`\\frac{1}{S}\\sum_s H[p_s]` and the epistemic part is their
difference, the mutual information between the prediction and the model
(the "BALD" score of Houlsby et al. 2011; Gal & Ghahramani 2016). All
entropies are in nats. Works on numpy arrays only; never imports torch.
"""

import numpy as np

from ..exceptions import InputError

__all__ = ["predictive_entropy", "uncertainty_from_samples", "uncertainty_columns"]

#: How far a row of probabilities may sum from 1 (float32 softmax is within 1e-6).
_SUM_TOLERANCE = 1e-3


def _check_probabilities(probabilities, shape_name, ndim):
    """Finite, non-negative probabilities of ``ndim`` dimensions whose last axis sums to 1."""
    try:
        p = np.asarray(probabilities, dtype=float)
    except (TypeError, ValueError) as err:
        raise InputError(f"The {shape_name} probabilities must be numbers; {err}") from None
    if p.ndim != ndim:
        raise InputError(f"The probabilities must be a {ndim}-D array of shape {shape_name}; "
                         f"got shape {p.shape}.")
    if p.size == 0 or p.shape[-1] == 0:
        raise InputError(f"The probabilities are empty (shape {p.shape}); expected "
                         f"{shape_name} with at least one object and one class.")
    if not np.all(np.isfinite(p)):
        raise InputError(f"The probabilities hold {int(np.sum(~np.isfinite(p)))} NaN or "
                         "infinite values.")
    if np.any(p < -_SUM_TOLERANCE):
        raise InputError(f"The probabilities must be >= 0; the smallest is {p.min():g}.")
    sums = p.sum(axis=-1)
    if np.max(np.abs(sums - 1)) > _SUM_TOLERANCE:
        off = float(sums.flat[np.argmax(np.abs(sums - 1))])
        raise InputError("Each row of probabilities must sum to 1 over the classes (the "
                         f"last axis); one sums to {off:g}. Apply a softmax to logits first.")
    return np.clip(p, 0.0, None)


def _entropy(p):
    """Entropy in nats over the last axis, with 0 log 0 = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return np.clip(-plogp.sum(axis=-1), 0.0, None)


def predictive_entropy(probabilities):
    """
    The entropy of each row of class probabilities, in nats.

    Parameters
    ----------
    probabilities : array-like, shape (N, K)
        Class probabilities of N objects over K classes; each row sums to 1
        (within 1e-3). Zero probabilities contribute nothing (0 log 0 = 0).

    Returns
    -------
    entropy : `~numpy.ndarray`, shape (N,)
        :math:`-\\sum_k p_k \\ln p_k`: 0 for a certain prediction, up to
        :math:`\\ln K` for the uniform one.

    Raises
    ------
    astrofmtools.InputError
        If the array is not 2-D, is empty, holds NaN, infinite or negative
        values, or a row does not sum to 1.

    Examples
    --------
    >>> from astrofmtools.trust import predictive_entropy
    >>> predictive_entropy([[1.0, 0.0], [0.5, 0.5], [0.25, 0.75]]).round(4).tolist()
    [0.0, 0.6931, 0.5623]
    """
    p = _check_probabilities(probabilities, "(N, K)", 2)
    return _entropy(p)


def uncertainty_from_samples(samples):
    """
    Total, aleatoric and epistemic uncertainty of stochastic predictions.

    Parameters
    ----------
    samples : array-like, shape (S, N, K)
        Class probabilities of N objects over K classes from S stochastic
        forward passes (Monte-Carlo dropout) or S ensemble members.

    Returns
    -------
    uncertainty : dict of `~numpy.ndarray`
        - ``mean`` : shape (N, K), the probabilities averaged over the
          samples (the prediction to report).
        - ``entropy`` : shape (N,), the entropy of ``mean`` in nats (total
          uncertainty).
        - ``expected_entropy`` : shape (N,), the mean over samples of each
          sample's entropy (aleatoric uncertainty: the classes overlap).
        - ``mutual_info`` : shape (N,), ``entropy - expected_entropy``, the
          mutual information between the prediction and the model (epistemic
          uncertainty: the samples disagree). Non-negative; rounding below
          zero is clipped to 0. At most :math:`\\ln \\min(S, K)`.
        - ``std`` : shape (N, K), the standard deviation of each class
          probability over the samples (``ddof=0``).

    Raises
    ------
    astrofmtools.InputError
        If the array is not 3-D, is empty, holds NaN, infinite or negative
        values, or a row does not sum to 1.

    Examples
    --------
    Two passes that agree have no epistemic uncertainty; two that disagree
    completely have :math:`\\ln 2` nats of it:

    >>> from astrofmtools.trust import uncertainty_from_samples
    >>> samples = [[[0.5, 0.5], [1.0, 0.0]],
    ...            [[0.5, 0.5], [0.0, 1.0]]]
    >>> u = uncertainty_from_samples(samples)
    >>> u["entropy"].round(4).tolist(), u["mutual_info"].round(4).tolist()
    ([0.6931, 0.6931], [0.0, 0.6931])
    >>> u["std"].tolist()
    [[0.0, 0.0], [0.5, 0.5]]
    """
    p = _check_probabilities(samples, "(S, N, K)", 3)
    mean = p.mean(axis=0)
    entropy = _entropy(mean)
    expected = _entropy(p).mean(axis=0)
    return {
        "mean": mean,
        "entropy": entropy,
        "expected_entropy": expected,
        "mutual_info": np.clip(entropy - expected, 0.0, None),
        "std": p.std(axis=0),
    }


def uncertainty_columns(table, samples, classes):
    """
    Add the uncertainty of stochastic predictions to a table, one row per object.

    Parameters
    ----------
    table : `~astropy.table.Table` or `~astropy.table.QTable`
        The table of N objects; changed in place.
    samples : array-like, shape (S, N, K)
        Class probabilities from S stochastic passes or ensemble members
        (see `uncertainty_from_samples`).
    classes : sequence of K
        The class names, in the order of the last axis of ``samples``.

    Returns
    -------
    table : `~astropy.table.Table` or `~astropy.table.QTable`
        The same table with the columns (replacing any of the same name):

        - ``entropy`` : float, entropy of the mean probabilities in nats
          (total uncertainty).
        - ``mutual_info`` : float, mutual information between prediction and
          model in nats (epistemic uncertainty).
        - ``std_<class>`` : float, for each class, the standard deviation of
          its probability over the samples.

        ``table.meta["uncertainty_samples"]`` records S.

    Raises
    ------
    astrofmtools.InputError
        If ``samples`` is not valid (see `uncertainty_from_samples`), its
        number of objects differs from the table's length, its number of
        classes from ``len(classes)``, or the class names are not distinct.

    Examples
    --------
    >>> from astropy.table import Table
    >>> from astrofmtools.trust import uncertainty_columns
    >>> table = Table({"id": [1, 2]})
    >>> samples = [[[0.9, 0.1], [1.0, 0.0]],
    ...            [[0.9, 0.1], [0.0, 1.0]]]
    >>> table = uncertainty_columns(table, samples, ["star", "galaxy"])
    >>> table.colnames
    ['id', 'entropy', 'mutual_info', 'std_star', 'std_galaxy']
    >>> table["mutual_info"].round(4).tolist(), table["std_star"].tolist()
    ([0.0, 0.6931], [0.0, 0.5])
    """
    u = uncertainty_from_samples(samples)
    n, k = u["mean"].shape
    names = [str(c) for c in classes]
    if len(names) != k:
        raise InputError(f"The samples have {k} classes but {len(names)} class names were "
                         f"given ({names}).")
    if len(set(names)) != len(names):
        raise InputError(f"The class names must be distinct as strings; got {names}.")
    if n != len(table):
        raise InputError(f"The samples describe {n} objects but the table has {len(table)} "
                         "rows.")
    n_samples = int(np.shape(samples)[0])
    table["entropy"] = u["entropy"]
    table["entropy"].description = (
        f"entropy of the class probabilities averaged over {n_samples} stochastic passes, "
        "in nats (total uncertainty; ln K for a uniform prediction)")
    table["mutual_info"] = u["mutual_info"]
    table["mutual_info"].description = (
        "mutual information between prediction and model over the stochastic passes, in "
        "nats (epistemic uncertainty: how much the passes disagree)")
    for j, name in enumerate(names):
        column = f"std_{name}"
        table[column] = u["std"][:, j]
        table[column].description = (f"standard deviation of the probability of {name!r} "
                                     f"over {n_samples} stochastic passes")
    table.meta["uncertainty_samples"] = n_samples
    return table
