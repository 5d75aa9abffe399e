# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Split-conformal prediction sets for classifiers: sets of classes that contain
the true class for at least a fraction ``1 - alpha`` of new objects
(marginally, or for every class with Mondrian calibration), whatever the
model, provided the calibration objects are exchangeable with the new ones.

Three nonconformity scores are available (`CONFORMAL_METHODS`):

- ``"lac"`` (least ambiguous set-valued classifier, Sadinle et al. 2019):
  ``1 - p_y``; the smallest sets on average, but sets may be empty and
  coverage is uneven between easy and hard objects.
- ``"aps"`` (adaptive prediction sets, Romano et al. 2020): the total
  probability of the classes ranked at or above the true class; larger sets
  for ambiguous objects.
- ``"raps"`` (regularised APS, Angelopoulos et al. 2021): APS plus
  ``lam * max(0, rank - k_reg)``, which trims long tails of unlikely classes.

The calibration is a JSON-serialisable dict (`calibrate_conformal`) that keeps
the calibration scores, so `prediction_sets` can use any ``alpha`` later.

This is a short numpy implementation rather than a wrapper of ``crepes``:
crepes' `~crepes.ConformalClassifier` takes ready-made scores and ships only
the hinge (LAC) and margin scores, with neither APS/RAPS scores nor
label-conditional bins for the candidate classes of a test object, so it
would add a pandas-backed dependency for a quantile (the test-suite uses it
to cross-check the LAC and Mondrian sets).
"""

import math

import numpy as np

from ..exceptions import InputError
from .calibration import _as_labels, _as_probabilities

__all__ = ["CONFORMAL_METHODS", "conformal_scores", "conformal_quantile",
           "calibrate_conformal", "prediction_sets", "coverage", "mean_set_size"]

#: The nonconformity scores `conformal_scores` knows.
CONFORMAL_METHODS = ("lac", "aps", "raps")

_OPTIONS = ("lam", "k_reg", "rng")


def _check_method(method):
    if method not in CONFORMAL_METHODS:
        raise InputError(f"Unknown conformal method {method!r}; choose one of "
                         f"{', '.join(CONFORMAL_METHODS)}.")
    return method


def _check_alpha(alpha):
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise InputError(f"alpha (the miscoverage) must be a number in (0, 1); got "
                         f"{alpha!r}.") from None
    if not 0 < a < 1:
        raise InputError(f"alpha (the miscoverage) must be in (0, 1), e.g. 0.1 for 90% "
                         f"coverage; got {alpha!r}.")
    return a


def _check_regularisation(lam, k_reg):
    lam = float(lam)
    if not np.isfinite(lam) or lam < 0:
        raise InputError(f"The RAPS penalty lam must be a finite number >= 0; got {lam!r}.")
    if isinstance(k_reg, bool) or not float(k_reg).is_integer() or int(k_reg) < 0:
        raise InputError(f"The RAPS k_reg must be an integer >= 0; got {k_reg!r}.")
    return lam, int(k_reg)


def _all_scores(p, method, lam, k_reg, u=None):
    """(N, K) score of every class as the candidate label; ``u`` (N,) in [0, 1)
    randomises APS/RAPS (the candidate's own probability counts ``1 - u``)."""
    if method == "lac":
        return 1.0 - p
    n, k = p.shape
    order = np.argsort(-p, axis=1, kind="stable")
    sorted_p = np.take_along_axis(p, order, axis=1)
    cumulative = np.cumsum(sorted_p, axis=1)
    if u is not None:
        cumulative = cumulative - u[:, None] * sorted_p
    if method == "raps":
        rank = np.arange(1, k + 1)
        cumulative = cumulative + lam * np.maximum(0, rank - k_reg)[None, :]
    scores = np.empty_like(p)
    np.put_along_axis(scores, order, cumulative, axis=1)
    return scores


def _uniforms(rng, n):
    return None if rng is None else np.random.default_rng(rng).random(n)


def conformal_scores(probabilities, labels, method="aps", *, lam=0.01, k_reg=1, rng=None):
    """
    Nonconformity scores of the true labels (larger: the label fits the model less).

    Parameters
    ----------
    probabilities : array-like of shape (N, K)
        Predicted class probabilities (calibrated or not); rows sum to 1.
    labels : array-like of shape (N,)
        True class indices ``0 .. K-1``.
    method : {'aps', 'lac', 'raps'}, optional
        ``"lac"``: ``1 - p_y``. ``"aps"``: the sum of the probabilities of
        the classes ranked at or above the true class (ties broken by column
        order). ``"raps"``: APS plus ``lam * max(0, rank_y - k_reg)`` with
        the rank counted from 1.
    lam : float, optional
        RAPS penalty per class beyond rank ``k_reg``.
    k_reg : int, optional
        Number of top classes RAPS does not penalise.
    rng : int or `~numpy.random.Generator`, optional
        Randomise APS/RAPS: the true class's own probability counts only a
        uniform random fraction ``1 - u`` (Romano et al. 2020), which makes
        the coverage exact rather than at least ``1 - alpha``. Without it
        the scores are deterministic. Ignored by LAC.

    Returns
    -------
    scores : `~numpy.ndarray` of shape (N,)

    Raises
    ------
    astrofmtools.InputError
        For an unknown ``method``, shapes that disagree, rows that do not
        sum to 1 or labels that are not column indices.

    Examples
    --------
    >>> from astrofmtools.trust import conformal_scores
    >>> p = [[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]]
    >>> conformal_scores(p, [1, 2], method="lac").round(3).tolist()
    [0.7, 0.7]
    >>> conformal_scores(p, [1, 2], method="aps").round(3).tolist()
    [0.9, 0.8]
    >>> conformal_scores(p, [1, 2], method="raps", lam=0.1, k_reg=1).round(3).tolist()
    [1.0, 0.9]
    """
    _check_method(method)
    lam, k_reg = _check_regularisation(lam, k_reg)
    p = _as_probabilities(probabilities)
    y = _as_labels(labels, len(p), p.shape[1])
    u = None if method == "lac" else _uniforms(rng, len(p))
    return _all_scores(p, method, lam, k_reg, u)[np.arange(len(p)), y]


def conformal_quantile(scores, alpha):
    """
    The split-conformal threshold: the ceil((n+1)(1-alpha))-th smallest score.

    This is the empirical quantile at level ``ceil((n+1)(1-alpha)) / n``
    (the inverse of the empirical distribution function, numpy's
    ``method="inverted_cdf"``), the finite-sample correction that makes a
    new object's score fall at or below it with probability at least
    ``1 - alpha`` (and, for scores without ties, at most
    ``1 - alpha + 1/(n+1)``). numpy's ``method="higher"`` at that level
    interpolates over ``n - 1`` gaps and would pick one rank higher (more
    conservative sets).

    Parameters
    ----------
    scores : array-like of shape (n,)
        Nonconformity scores of the calibration objects.
    alpha : float
        Miscoverage in (0, 1).

    Returns
    -------
    quantile : float
        ``inf`` when there are too few scores for the guarantee, i.e. when
        ``n < 1/alpha - 1`` (fewer than 9 scores for alpha = 0.1, 19 for
        0.05; also for no scores): every class then enters the set.

    Examples
    --------
    >>> from astrofmtools.trust import conformal_quantile
    >>> scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    >>> conformal_quantile(scores, 0.2)     # the ceil(11 * 0.8) = 9th smallest
    0.9
    >>> conformal_quantile(scores, 0.05)
    inf
    """
    a = _check_alpha(alpha)
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise InputError(f"scores must be a 1-D array; got shape {s.shape}.")
    if np.isnan(s).any():
        raise InputError("The conformal scores contain NaN values.")
    n = len(s)
    # the tolerance keeps e.g. 100 * 0.9 = 90.00000000000001 from rounding up to 91
    rank = math.ceil((n + 1) * (1 - a) - 1e-9)
    if rank > n:
        return float("inf")
    return float(np.partition(s, rank - 1)[rank - 1])


def calibrate_conformal(probabilities, labels, method="aps", mondrian=False, **kwargs):
    """
    Calibrate conformal prediction sets on held-out labelled objects.

    Parameters
    ----------
    probabilities : array-like of shape (N, K)
        Predicted probabilities of calibration objects the model never
        trained on (nor used for early stopping or temperature fitting).
    labels : array-like of shape (N,)
        Their true class indices ``0 .. K-1``.
    method : {'aps', 'lac', 'raps'}, optional
        The nonconformity score (see `conformal_scores`).
    mondrian : bool, optional
        Class-conditional (Mondrian) calibration: the coverage then holds
        for every true class separately, at the price of larger sets for
        rare classes. A class with fewer than ``1/alpha - 1`` calibration
        objects enters every set.
    **kwargs
        ``lam``, ``k_reg``, ``rng``: passed to `conformal_scores`. With
        ``rng`` the APS/RAPS scores are randomised and `prediction_sets`
        randomises the test scores too.

    Returns
    -------
    calibration : dict
        JSON-serialisable: ``method``, ``mondrian``, ``scores`` (list of the
        N calibration scores), ``labels`` (list of the N class indices, with
        ``mondrian=True`` only), ``lam``, ``k_reg``, ``randomized`` (bool)
        and ``n_classes`` (K).

    Raises
    ------
    astrofmtools.InputError
        For an unknown ``method`` or keyword, or inputs that
        `conformal_scores` rejects.

    Examples
    --------
    >>> import json
    >>> from astrofmtools.trust import calibrate_conformal
    >>> p = [[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]]
    >>> cal = calibrate_conformal(p, [0, 2, 2], method="lac", mondrian=True)
    >>> [round(s, 3) for s in cal["scores"]], cal["labels"]
    ([0.4, 0.7, 0.2], [0, 2, 2])
    >>> sorted(json.loads(json.dumps(cal)))
    ['k_reg', 'labels', 'lam', 'method', 'mondrian', 'n_classes', 'randomized', 'scores']
    """
    unknown = sorted(set(kwargs) - set(_OPTIONS))
    if unknown:
        raise InputError(f"calibrate_conformal got unknown keyword(s) {', '.join(unknown)}; "
                         f"it accepts {', '.join(_OPTIONS)}.")
    _check_method(method)
    lam, k_reg = _check_regularisation(kwargs.get("lam", 0.01), kwargs.get("k_reg", 1))
    rng = kwargs.get("rng")
    p = _as_probabilities(probabilities)
    y = _as_labels(labels, len(p), p.shape[1])
    scores = conformal_scores(p, y, method, lam=lam, k_reg=k_reg, rng=rng)
    calibration = {"method": method, "mondrian": bool(mondrian),
                   "scores": [float(s) for s in scores]}
    if mondrian:
        calibration["labels"] = [int(c) for c in y]
    calibration.update(lam=lam, k_reg=k_reg,
                       randomized=bool(rng is not None and method != "lac"),
                       n_classes=int(p.shape[1]))
    return calibration


def prediction_sets(probabilities, calibration, alpha, *, rng=None):
    """
    Conformal prediction sets: the classes whose score is at most the calibrated quantile.

    Class ``k`` enters the set of an object when the score it would have as
    the true label is ``<=`` `conformal_quantile` of the calibration scores
    (with Mondrian calibration: of the calibration objects of class ``k``).
    LAC sets may be empty (no class is plausible enough: a hint of an
    unusual object); APS and RAPS sets always contain at least the top
    class, which can only raise the coverage.

    Parameters
    ----------
    probabilities : array-like of shape (N, K)
        Predicted probabilities of new objects, from the same model (and
        temperature) as the calibration.
    calibration : dict
        From `calibrate_conformal` (or its JSON round trip).
    alpha : float
        Miscoverage in (0, 1): the sets hold the true class for at least
        ``1 - alpha`` of the objects.
    rng : int or `~numpy.random.Generator`, optional
        Seed for the random test scores when the calibration was randomised
        (``rng`` given to `calibrate_conformal`); without it they come from
        fresh entropy. Ignored otherwise.

    Returns
    -------
    sets : `~numpy.ndarray` of bool, shape (N, K)
        ``sets[i, k]``: class ``k`` is in the set of object ``i``.

    Raises
    ------
    astrofmtools.InputError
        If ``alpha`` is not in (0, 1), the calibration dict is malformed or
        its number of classes differs from the probabilities'.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.trust import calibrate_conformal, prediction_sets
    >>> rng = np.random.default_rng(0)
    >>> p = rng.dirichlet(np.ones(4), size=400)
    >>> y = np.array([rng.choice(4, p=row) for row in p])
    >>> cal = calibrate_conformal(p[:200], y[:200], method="aps")
    >>> sets = prediction_sets(p[200:], cal, alpha=0.1)
    >>> sets.shape, bool(sets.any(axis=1).all())
    ((200, 4), True)
    """
    a = _check_alpha(alpha)
    if not isinstance(calibration, dict) or "method" not in calibration \
            or "scores" not in calibration:
        raise InputError("calibration must be the dict returned by calibrate_conformal "
                         "(with 'method' and 'scores').")
    method = _check_method(calibration["method"])
    lam, k_reg = _check_regularisation(calibration.get("lam", 0.01), calibration.get("k_reg", 1))
    p = _as_probabilities(probabilities)
    n, k = p.shape
    n_classes = calibration.get("n_classes")
    if n_classes is not None and int(n_classes) != k:
        raise InputError(f"The calibration has {n_classes} classes but the probabilities "
                         f"have {k} columns.")
    cal_scores = np.asarray(calibration["scores"], dtype=np.float64)
    if calibration.get("mondrian", False):
        if "labels" not in calibration or len(calibration["labels"]) != len(cal_scores):
            raise InputError("A Mondrian calibration needs 'labels', one per score.")
        cal_labels = _as_labels(calibration["labels"], len(cal_scores), k,
                                what="calibration labels")
        threshold = np.array([conformal_quantile(cal_scores[cal_labels == c], a)
                              for c in range(k)])[None, :]
    else:
        threshold = conformal_quantile(cal_scores, a)
    u = None
    if calibration.get("randomized", False) and method != "lac":
        u = np.random.default_rng(rng).random(n)
    sets = _all_scores(p, method, lam, k_reg, u) <= threshold
    if method != "lac" and n:
        sets[np.arange(n), p.argmax(axis=1)] = True
    return sets


def _as_sets(sets):
    s = np.asarray(sets)
    if s.ndim != 2:
        raise InputError(f"sets must be a 2-D boolean array of shape (N, K); got shape "
                         f"{s.shape}.")
    if s.dtype != bool:
        if not np.isin(s, (0, 1)).all():
            raise InputError("sets must be boolean (or 0/1): sets[i, k] says whether class "
                             "k is in the set of object i.")
        s = s.astype(bool)
    return s


def coverage(sets, labels):
    """
    Fraction of objects whose true class is in their prediction set.

    Parameters
    ----------
    sets : array-like of bool, shape (N, K)
        From `prediction_sets`.
    labels : array-like of shape (N,)
        True class indices ``0 .. K-1``.

    Returns
    -------
    coverage : float
        In [0, 1]; NaN for no objects.

    Examples
    --------
    >>> from astrofmtools.trust import coverage
    >>> coverage([[True, False], [True, True], [False, True]], [1, 0, 1])
    0.6666666666666666
    """
    s = _as_sets(sets)
    y = _as_labels(labels, len(s), s.shape[1])
    return float(s[np.arange(len(s)), y].mean()) if len(s) else float("nan")


def mean_set_size(sets):
    """
    Mean number of classes per prediction set.

    Parameters
    ----------
    sets : array-like of bool, shape (N, K)
        From `prediction_sets`.

    Returns
    -------
    size : float
        NaN for no objects.

    Examples
    --------
    >>> from astrofmtools.trust import mean_set_size
    >>> mean_set_size([[True, False], [True, True], [False, False]])
    1.0
    """
    s = _as_sets(sets)
    return float(s.sum(axis=1).mean()) if len(s) else float("nan")
