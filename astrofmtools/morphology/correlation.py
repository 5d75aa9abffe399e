# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
What the principal components of foundation-model features track: their rank
correlation with the morphometrics of `measure_morphology`, and its heat map.
"""

import numpy as np
from astropy.table import QTable

from ..exceptions import InputError
from ..utils import provenance, save_figure
from .columns import MORPHOLOGY_COLUMNS

__all__ = ["feature_morphology_correlation", "plot_feature_morphology_correlation",
           "CORRELATION_COLUMNS"]

__doctest_requires__ = {("plot_feature_morphology_correlation",): ["matplotlib"]}

#: The morphometrics correlated by default (those of them the table has).
CORRELATION_COLUMNS = ("gini", "m20", "concentration", "asymmetry", "smoothness", "sersic_n",
                       "sersic_ellip", "ellipticity_asymmetry", "r50")

_METHODS = ("spearman", "pearson")


def feature_morphology_correlation(features, table, columns=None, n_components=8,
                                   method="spearman", max_flag=1):
    """
    Correlate the principal components of features with morphometrics.

    The features are standardised (each dimension to zero mean and unit
    variance; constant ones are left at zero) and projected on their first
    ``n_components`` principal components, fitted on the rows kept. PCA is
    scikit-learn's `~sklearn.decomposition.PCA` (``random_state=0``) when
    scikit-learn is installed, else a full SVD with numpy; both give the
    same components (scikit-learn's randomized solver, which it picks for
    large inputs, to about 1e-6). A component's sign is arbitrary: it is
    fixed here so that its largest loading is positive, with either.

    Each component is then correlated with each morphometric: Spearman's
    rank correlation (the Pearson correlation of the ranks, ties given
    their mean rank, as `scipy.stats.spearmanr`), or Pearson's. Rows are
    skipped where ``flag`` > ``max_flag`` (statmorph's 2 is "bad", 4
    failed, 5 no source), where ``flag_sersic`` > ``max_flag`` for the
    ``sersic_*`` columns, where a feature is not finite, and, for one
    morphometric, where it is NaN or infinite.

    Parameters
    ----------
    features : array-like
        ``(N, D)`` features of the N cutouts (from
        `~astrofmtools.backbones.extract_features` or
        `~astrofmtools.embed.embed`), in the order of the table's rows. A
        torch tensor is read with ``.detach().cpu().numpy()``.
    table : `~astropy.table.Table`
        N rows with the morphometrics: `measure_morphology`'s table, or any
        table with numeric columns (and optionally ``flag`` and
        ``flag_sersic``).
    columns : list of str, optional
        The morphometrics to correlate (default: those of
        `CORRELATION_COLUMNS` the table has).
    n_components : int, optional
        The number of principal components (at most the number of rows
        and of feature dimensions).
    method : {'spearman', 'pearson'}, optional
        The correlation coefficient.
    max_flag : int, optional
        The largest statmorph flag kept (1: good and suspect).

    Returns
    -------
    table : `~astropy.table.QTable`
        One row per principal component, without units:

        - ``component``: 1, 2, ... in order of explained variance;
        - ``explained_variance``: the fraction of the total variance of
          the standardised features that the component explains;
        - one column per morphometric (the names of ``columns``): the
          correlation coefficient of the component's scores with it, NaN
          where fewer than 3 rows have a value or either is constant.

        ``meta`` holds ``method``, ``pca`` (``'scikit-learn'`` or
        ``'numpy'``), ``n_rows`` (rows used for the PCA), ``n_used``
        (rows used for each morphometric), ``n_features``, ``max_flag``,
        the date and the versions. With fewer than 3 rows to use, the
        table has these columns and no rows.

    Raises
    ------
    astrofmtools.InputError
        For features that are not ``(N, D)`` with N the table's length, a
        column the table lacks or that holds no numbers, no column to
        correlate, an unknown ``method`` or an ``n_components`` < 1.

    Examples
    --------
    Features whose main direction of variation follows Gini:

    >>> import numpy as np
    >>> from astropy.table import QTable
    >>> from astrofmtools.morphology import feature_morphology_correlation
    >>> rng = np.random.default_rng(0)
    >>> gini = rng.uniform(0.35, 0.65, 200)
    >>> features = 5 * np.outer(gini - 0.5, rng.normal(size=32)) + rng.normal(0, 0.1, (200, 32))
    >>> t = QTable({"gini": gini, "asymmetry": rng.uniform(0, 0.3, 200),
    ...             "flag": np.zeros(200, int)})
    >>> corr = feature_morphology_correlation(features, t, n_components=3)
    >>> corr.colnames
    ['component', 'explained_variance', 'gini', 'asymmetry']
    >>> row = corr[0]  # PC1: 79% of the variance, Spearman rho 1.00 with Gini
    >>> print(f"{row['explained_variance']:.2f} {row['gini']:.2f} {row['asymmetry']:.2f}")
    0.79 1.00 -0.05
    """
    features = _as_features(features)
    if not hasattr(table, "colnames"):
        raise InputError(f"table must be an astropy Table of morphometrics, not "
                         f"{type(table).__name__}.")
    if features.shape[0] != len(table):
        raise InputError(f"features has {features.shape[0]} rows but the table has "
                         f"{len(table)}: give one feature vector per table row.")
    if method not in _METHODS:
        raise InputError(f"Unknown method {method!r}; choose one of {', '.join(_METHODS)}.")
    if int(n_components) != n_components or n_components < 1:
        raise InputError(f"n_components must be a positive integer, not {n_components!r}.")
    columns = _columns(table, columns)
    values = {name: _numbers(table, name) for name in columns}

    keep = np.isfinite(features).all(axis=1)
    flag = _flag(table, "flag")
    if flag is not None:
        keep &= flag <= max_flag
    flag_sersic = _flag(table, "flag_sersic")
    rows = np.flatnonzero(keep)
    n_comp = int(min(n_components, len(rows), features.shape[1]))
    names = ["component", "explained_variance"] + columns
    meta = provenance(stage="feature_morphology_correlation", method=method,
                      n_features=int(features.shape[1]), n_rows=int(len(rows)),
                      max_flag=max_flag)
    if len(rows) < 3:
        meta.update(pca=None, n_used={name: 0 for name in columns})
        out = QTable([np.zeros(0, np.int64)] + [np.zeros(0)] * (len(names) - 1), names=names,
                     meta=meta)
        _describe(out, method)
        return out

    scores, explained, backend = _pca(features[rows], n_comp)
    coefficients, n_used = {}, {}
    for name in columns:
        good = np.isfinite(values[name][rows])
        if flag_sersic is not None and name.startswith("sersic_"):
            good &= flag_sersic[rows] <= max_flag
        n_used[name] = int(np.count_nonzero(good))
        coefficients[name] = [_correlation(scores[good, k], values[name][rows][good], method)
                              for k in range(n_comp)]
    meta.update(pca=backend, n_used=n_used)
    out = QTable([np.arange(1, n_comp + 1), explained]
                 + [np.array(coefficients[name]) for name in columns], names=names, meta=meta)
    _describe(out, method)
    return out


def plot_feature_morphology_correlation(table, ax=None, path=None, overwrite=False,
                                        title=None, cmap="RdBu_r"):
    """
    Draw a correlation table as a heat map: components by morphometrics.

    One row per principal component (labelled with the fraction of the
    variance it explains), one column per morphometric; the colour map is
    diverging and centred on 0 (from -1 to 1), and each cell shows its
    coefficient. NaN cells are left blank.

    Parameters
    ----------
    table : `~astropy.table.Table`
        From `feature_morphology_correlation`.
    ax : `~matplotlib.axes.Axes`, optional
        Draw into these axes (default: a new figure, not registered with
        pyplot).
    path : str or `~pathlib.Path`, optional
        Save the figure to this PNG file (atomically).
    overwrite : bool, optional
        Replace an existing ``path``.
    title : str, optional
        The axes' title (default: the method and the number of rows).
    cmap : str, optional
        A diverging matplotlib colour map.

    Returns
    -------
    ax : `~matplotlib.axes.Axes`
        The axes drawn into (with a colour bar beside them).

    Raises
    ------
    astrofmtools.InputError
        For a table without ``component`` and ``explained_variance``
        columns or without morphometric columns.

    Examples
    --------
    >>> from astropy.table import QTable
    >>> from astrofmtools.morphology import plot_feature_morphology_correlation
    >>> corr = QTable({"component": [1, 2], "explained_variance": [0.4, 0.1],
    ...                "gini": [0.93, -0.05], "m20": [-0.81, 0.12]},
    ...               meta={"method": "spearman", "n_rows": 500})
    >>> ax = plot_feature_morphology_correlation(corr, path="pca_morphology.png")
    >>> [t.get_text() for t in ax.texts]
    ['0.93', '-0.81', '-0.05', '0.12']
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['PC1 (40%)', 'PC2 (10%)']
    """
    colnames = list(getattr(table, "colnames", ()))
    if "component" not in colnames or "explained_variance" not in colnames:
        raise InputError("plot_feature_morphology_correlation needs the table of "
                         "feature_morphology_correlation (columns 'component' and "
                         "'explained_variance').")
    columns = [c for c in colnames if c not in ("component", "explained_variance")]
    if not columns:
        raise InputError("The correlation table has no morphometric columns to draw.")
    values = np.array([np.asarray(table[c], dtype=float) for c in columns]).T.reshape(
        len(table), len(columns))
    if ax is None:
        from matplotlib.figure import Figure
        ax = Figure(figsize=(1.0 + 0.75 * len(columns), 1.2 + 0.45 * max(len(table), 1)),
                    layout="constrained").add_subplot()
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=-1.0, vmax=1.0,
                      aspect="auto", interpolation="nearest")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            v = values[i, j]
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if abs(v) > 0.6 else "black")
    ax.set_xticks(np.arange(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(np.arange(len(table)),
                  [f"PC{int(c)} ({100 * float(e):.0f}%)"
                   for c, e in zip(table["component"], table["explained_variance"])])
    method = table.meta.get("method", "spearman")
    label = "Spearman $\\rho$" if method == "spearman" else "Pearson $r$"
    ax.figure.colorbar(image, ax=ax, label=label)
    if title is None:
        n = table.meta.get("n_rows")
        title = f"{label} of feature PCs and morphometrics" + (f" ({n} sources)" if n else "")
    ax.set_title(title, fontsize=10)
    if path is not None:
        save_figure(ax.figure, path, overwrite=overwrite)
    return ax


def _as_features(features):
    """An ``(N, D)`` float64 array from an array or a torch tensor (torch not imported)."""
    if hasattr(features, "detach") and hasattr(features, "cpu"):
        features = features.detach().cpu().numpy()
    try:
        array = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"features must be an (N, D) array of numbers, not "
                         f"{type(features).__name__}.") from None
    if array.ndim != 2 or array.shape[1] == 0:
        raise InputError(f"features must be an (N, D) array; got shape {array.shape}.")
    return array


def _columns(table, columns):
    if columns is None:
        columns = [c for c in CORRELATION_COLUMNS if c in table.colnames]
        if not columns:
            raise InputError(f"The table has none of the default morphometrics "
                             f"({', '.join(CORRELATION_COLUMNS)}); name them with columns=.")
        return columns
    columns = [columns] if isinstance(columns, str) else list(columns)
    if not columns:
        raise InputError("columns is empty: name at least one morphometric.")
    missing = [c for c in columns if c not in table.colnames]
    if missing:
        raise InputError(f"The table has no column(s) {', '.join(map(repr, missing))}; its "
                         f"columns: {', '.join(table.colnames)}.")
    if len(set(columns)) != len(columns) or {"component", "explained_variance"} & set(columns):
        raise InputError(f"columns must be distinct morphometrics, not {columns}.")
    return columns


def _numbers(table, name):
    """A column as float64, masked entries NaN."""
    column = table[name]
    values = getattr(column, "value", column)
    if hasattr(values, "filled") and np.asarray(values).dtype.kind == "f":
        values = values.filled(np.nan)
    elif hasattr(values, "mask"):
        values = np.where(np.ma.getmaskarray(values), np.nan, np.ma.getdata(values))
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"Column {name!r} must hold numbers; it holds "
                         f"{np.asarray(column).dtype}.") from None
    if values.ndim != 1:
        raise InputError(f"Column {name!r} must hold one number per row; it has shape "
                         f"{values.shape}.")
    return values


def _flag(table, name):
    if name not in table.colnames:
        return None
    flag = _numbers(table, name)
    return np.where(np.isnan(flag), np.inf, flag)  # a missing flag is not a good one


def _pca(x, n_components):
    """Scores ``(n, k)``, explained variance fractions and the backend of the PCA of the
    standardised ``x``; each component's largest loading positive."""
    x = x - x.mean(axis=0)
    std = x.std(axis=0)
    x = x / np.where(std > 0, std, 1.0)
    total = float(np.sum(x.var(axis=0)))
    try:
        from sklearn.decomposition import PCA
    except ImportError:
        _, s, vt = np.linalg.svd(x, full_matrices=False)
        components = vt[:n_components]
        variance = s[:n_components] ** 2 / len(x)
        backend = "numpy"
    else:
        pca = PCA(n_components=n_components, random_state=0).fit(x)
        components = pca.components_
        variance = pca.explained_variance_ * (len(x) - 1) / len(x)
        backend = "scikit-learn"
    signs = np.sign(components[np.arange(len(components)),
                               np.abs(components).argmax(axis=1)])
    components = components * np.where(signs == 0, 1.0, signs)[:, np.newaxis]
    explained = variance / total if total > 0 else np.zeros(len(variance))
    return x @ components.T, explained, backend


def _correlation(a, b, method):
    """Pearson's r of a and b (of their ranks for Spearman), NaN if undefined."""
    if len(a) < 3:
        return np.nan
    if method == "spearman":
        from scipy.stats import rankdata
        a, b = rankdata(a), rankdata(b)
    a = a - a.mean()
    b = b - b.mean()
    norm = np.sqrt(np.sum(a * a) * np.sum(b * b))
    return float(np.clip(np.sum(a * b) / norm, -1.0, 1.0)) if norm > 0 else np.nan


def _describe(table, method):
    what = "Spearman rank" if method == "spearman" else "Pearson"
    table["component"].info.description = "Principal component (1: largest variance)"
    table["explained_variance"].info.description = (
        "Fraction of the total variance of the standardised features explained")
    for name in table.colnames[2:]:
        about = MORPHOLOGY_COLUMNS.get(name, (None, None, name))[2]
        table[name].info.description = f"{what} correlation of the component with: {about}"
