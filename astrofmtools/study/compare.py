# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Comparisons between the settings of a study, paired by seed: the winner and how sure
it is (`best_settings`, `paired_difference`), and the effect of each factor of the grid
(`factor_effects`).

Two cells of the same seed and label fraction train on the same labelled subset and
are scored on the same test rows, so their difference is free of the subset's luck;
the spread of that difference over seeds is the uncertainty of the comparison.

Torch-free: it reads the results table of `~astrofmtools.study.run_study`.
"""

import numpy as np
from astropy.table import QTable

__all__ = ["SETTING", "FACTORS", "best_settings", "paired_difference", "factor_effects"]

#: The columns that make a setting: a row of the summary (all but the seed).
SETTING = ("backbone", "preprocess_name", "method")

#: The grid's factors whose effect `factor_effects` measures, with their names.
FACTORS = {"preprocess_name": "preprocessing", "method": "adaptation",
           "backbone": "backbone"}


def _setting(row):
    return tuple(str(row[c]) for c in SETTING)


def best_settings(results, metric="macro_f1", fraction=None):
    """
    The settings of a study ranked by their mean score over seeds at one label fraction.

    Parameters
    ----------
    results : `~astropy.table.Table`
        One row per cell (``results.ecsv`` of `~astrofmtools.study.run_study`).
    metric : str, optional
        The score column.
    fraction : float, optional
        The label fraction (default: the largest in the table).

    Returns
    -------
    ranking : `~astropy.table.QTable`
        ``backbone``, ``preprocess_name``, ``method``, ``<metric>_mean``,
        ``<metric>_std`` (ddof=1), ``seconds`` (mean per cell),
        ``n_trainable`` and ``n_seeds``, best first.

    Examples
    --------
    >>> from astropy.table import QTable
    >>> from astrofmtools.study import best_settings
    >>> results = QTable(rows=[("a", "full", "frozen/linear", 1.0, s, f, 2.0, 10)
    ...                        for s, f in ((0, 0.8), (1, 0.9))] +
    ...                       [("b", "full", "frozen/linear", 1.0, s, f, 5.0, 10)
    ...                        for s, f in ((0, 0.7), (1, 0.8))],
    ...                  names=("backbone", "preprocess_name", "method", "label_fraction",
    ...                         "seed", "macro_f1", "seconds", "n_trainable"))
    >>> ranking = best_settings(results)
    >>> ranking["backbone"].tolist(), ranking["macro_f1_mean"].round(2).tolist()
    (['a', 'b'], [0.85, 0.75])
    """
    fraction = float(np.max(results["label_fraction"])) if fraction is None else fraction
    rows = [r for r in results if np.isclose(float(r["label_fraction"]), fraction)]
    groups = {}
    for r in rows:
        groups.setdefault(_setting(r), []).append(r)
    out = []
    for setting, mine in groups.items():
        values = np.array([float(r[metric]) for r in mine])
        out.append(setting + (values.mean(), values.std(ddof=1) if len(values) > 1 else 0.0,
                              float(np.mean([float(r["seconds"]) for r in mine])),
                              int(mine[0]["n_trainable"]), len(mine)))
    out.sort(key=lambda row: (-row[3], row[5]))
    names = SETTING + (f"{metric}_mean", f"{metric}_std", "seconds", "n_trainable", "n_seeds")
    return QTable(rows=out, names=names) if out else QTable(names=names)


def paired_difference(results, a, b, metric="macro_f1", fraction=None):
    """
    Setting ``a`` minus setting ``b``, paired by seed (and label fraction).

    Parameters
    ----------
    results : `~astropy.table.Table`
        One row per cell.
    a, b : tuple of str
        Settings: (backbone, preprocess_name, method).
    metric : str, optional
    fraction : float, optional
        Compare at this label fraction only (default: every fraction both have).

    Returns
    -------
    difference : dict
        ``n`` (pairs), ``mean``, ``std`` (ddof=1), ``low``/``high`` (the 95 %
        confidence interval of the mean difference from the paired t
        distribution; NaN under two pairs), ``p`` (paired t-test, two-sided)
        and ``wins`` (pairs where ``a`` scores higher).

    Examples
    --------
    >>> from astropy.table import QTable
    >>> from astrofmtools.study import paired_difference
    >>> results = QTable(rows=[(m, s, f) for m, s, f in (
    ...     ("x", 0, 0.80), ("x", 1, 0.90), ("x", 2, 0.70),
    ...     ("y", 0, 0.75), ("y", 1, 0.84), ("y", 2, 0.66))],
    ...     names=("method", "seed", "macro_f1"))
    >>> results["backbone"], results["preprocess_name"], results["label_fraction"] = "b", "p", 1.0
    >>> d = paired_difference(results, ("b", "p", "x"), ("b", "p", "y"))
    >>> d["n"], round(d["mean"], 3), d["wins"], bool(d["low"] > 0)
    (3, 0.05, 3, True)
    """
    return _paired([(float(r["label_fraction"]), int(r["seed"]), float(r[metric]))
                    for r in results if _setting(r) == tuple(a) and _at(r, fraction)],
                   [(float(r["label_fraction"]), int(r["seed"]), float(r[metric]))
                    for r in results if _setting(r) == tuple(b) and _at(r, fraction)])


def _at(row, fraction):
    return fraction is None or np.isclose(float(row["label_fraction"]), fraction)


def _paired(a, b):
    """Paired statistics of a - b from (key..., value) tuples matched on the key."""
    from scipy import stats
    other = {row[:-1]: row[-1] for row in b}
    diffs = np.array([row[-1] - other[row[:-1]] for row in a if row[:-1] in other])
    n = len(diffs)
    out = {"n": n, "mean": float(diffs.mean()) if n else np.nan,
           "std": float(diffs.std(ddof=1)) if n > 1 else np.nan, "low": np.nan,
           "high": np.nan, "p": np.nan, "wins": int((diffs > 0).sum())}
    if n > 1 and out["std"] > 1e-12:  # (below: equal differences up to rounding)
        test = stats.ttest_1samp(diffs, 0.0)
        interval = test.confidence_interval(0.95)
        out.update(low=float(interval.low), high=float(interval.high), p=float(test.pvalue))
    elif n > 1:  # identical differences: no spread
        out.update(low=out["mean"], high=out["mean"], p=0.0 if out["mean"] else 1.0)
    return out


def factor_effects(results, metric="macro_f1", fraction=None, by=None):
    """
    The effect of each factor of the grid: every other level against the first, paired.

    For a factor (preprocessing, adaptation or backbone) with levels
    ``L0, L1, ...`` (in the grid's order), each cell at ``Li`` is paired with
    the cell at ``L0`` that has the same other settings, label fraction and
    seed; the table gives the mean difference over all such pairs and its
    95 % interval. It answers "does the close crop help?" or "how much does
    fine-tuning add over a frozen linear head?" over the whole grid at once
    (pairs from different backbones or fractions are not independent, so
    read the interval as indicative).

    Parameters
    ----------
    results : `~astropy.table.Table`
        One row per cell.
    metric : str, optional
    fraction : float, optional
        Only this label fraction (default: all of them).
    by : str, optional
        A column of the setting (``'backbone'``, say): the effects of the
        other factors within each of its levels, since a crop may help one
        backbone and hurt another.

    Returns
    -------
    effects : `~astropy.table.QTable`
        ``factor``, ``level``, ``baseline``, ``n``, ``mean``, ``std``,
        ``low``, ``high``, ``p`` and ``wins``: one row per level after the
        first, of each factor with two levels or more; with ``by``, a first
        column named ``by`` gives the level each row is within.

    Examples
    --------
    >>> from astropy.table import QTable
    >>> from astrofmtools.study import factor_effects
    >>> rows = [(p, s, 0.7 + 0.1 * (p == "crop") + 0.01 * s)
    ...         for p in ("full", "crop") for s in range(3)]
    >>> results = QTable(rows=rows, names=("preprocess_name", "seed", "macro_f1"))
    >>> results["backbone"], results["method"], results["label_fraction"] = "b", "m", 1.0
    >>> effects = factor_effects(results)
    >>> effects[0]["factor", "level", "baseline", "n"].as_void().tolist()
    ('preprocessing', 'crop', 'full', 3)
    >>> round(float(effects["mean"][0]), 3)
    0.1
    """
    if by is not None:
        parts = []
        for value in dict.fromkeys(str(v) for v in results[by]):
            part = factor_effects(results[[str(v) == value for v in results[by]]], metric,
                                  fraction)
            part = part[part["factor"] != FACTORS.get(by, by)]
            part.add_column([value] * len(part), name=by, index=0)
            parts.append(part)
        from astropy.table import vstack
        return vstack(parts) if parts else QTable(names=(by,))
    rows = [r for r in results if _at(r, fraction)]
    out = []
    for column, name in FACTORS.items():
        levels = list(dict.fromkeys(str(r[column]) for r in rows))
        others = [c for c in SETTING if c != column]

        def cells(level):
            return [(tuple(str(r[c]) for c in others), float(r["label_fraction"]),
                     int(r["seed"]), float(r[metric])) for r in rows if str(r[column]) == level]
        for level in levels[1:]:
            d = _paired(cells(level), cells(levels[0]))
            out.append((name, level, levels[0], d["n"], d["mean"], d["std"], d["low"],
                        d["high"], d["p"], d["wins"]))
    names = ("factor", "level", "baseline", "n", "mean", "std", "low", "high", "p", "wins")
    return QTable(rows=out, names=names) if out else QTable(names=names)
