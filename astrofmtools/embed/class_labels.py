# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Class labels in feature space: class-balanced subsamples, and how well a map
(or the features) keeps classes together (kNN purity).
"""

import numpy as np

from ..exceptions import InputError

__all__ = ["balanced_indices", "knn_purity"]

# scikit-learn is an optional dependency (the ``ml`` extra)
__doctest_requires__ = {("knn_purity",): ["sklearn"]}


def balanced_indices(labels, n_per_class=None, seed=0):
    """
    Rows of a class-balanced random subsample.

    Parameters
    ----------
    labels : array-like
        The class of every row; masked or empty values are no class and
        never chosen.
    n_per_class : int, optional
        Rows per class (classes with fewer keep them all); default: the
        size of the smallest class.
    seed : int, optional
        Random seed.

    Returns
    -------
    rows : `~numpy.ndarray`
        Sorted row indices.

    Examples
    --------
    >>> from astrofmtools.embed import balanced_indices
    >>> labels = ["a"] * 6 + ["b"] * 2 + ["c"] * 3
    >>> rows = balanced_indices(labels)
    >>> [labels[i] for i in rows]
    ['a', 'a', 'b', 'b', 'c', 'c']
    >>> len(balanced_indices(labels, n_per_class=4))    # 4 + 2 + 3
    9
    """
    values, missing = _class_values(labels)
    if n_per_class is not None and (isinstance(n_per_class, bool) or int(n_per_class) != n_per_class
                                    or n_per_class < 1):
        raise InputError(f"The number per class must be a positive integer, not {n_per_class!r}.")
    classes, counts = np.unique(values[~missing], return_counts=True)
    if len(classes) == 0:
        raise InputError("Cannot balance classes: no row has a label.")
    n = int(counts.min()) if n_per_class is None else int(n_per_class)
    rng = np.random.default_rng(seed)
    rows = []
    for c in classes:
        members = np.flatnonzero((values == c) & ~missing)
        rows.append(members if len(members) <= n else rng.choice(members, n, replace=False))
    return np.sort(np.concatenate(rows))


def knn_purity(points, labels, k=10, per_class=False):
    """
    Mean fraction of each point's k nearest neighbours that share its class.

    A measure of how well a map (or a feature space) keeps classes
    together: 1 when every neighbourhood is pure; about the summed squared
    class fractions when classes are mixed at random.

    Parameters
    ----------
    points : array-like
        (N, D) coordinates (map positions or features); Euclidean distance.
    labels : array-like
        N class labels.
    k : int, optional
        Neighbours per point, the point itself not counted (capped at N - 1).
    per_class : bool, optional
        Also return the purity averaged over the points of each class.

    Returns
    -------
    purity : float
        The mean over all points.
    by_class : dict
        Class -> purity (only with ``per_class=True``).

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.embed import knn_purity
    >>> points = np.r_[np.zeros((5, 2)), np.ones((5, 2))] + np.arange(10)[:, None] * 1e-3
    >>> knn_purity(points, ["a"] * 5 + ["b"] * 5, k=4)
    1.0
    """
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(points, dtype=float)
    values = np.asarray(labels)
    if x.ndim != 2 or len(x) != len(values):
        raise InputError(f"points must be (N, D) with one label per point; got shape "
                         f"{x.shape} and {len(values)} labels.")
    if len(x) < 2:
        raise InputError("knn_purity needs at least 2 points.")
    k = min(int(k), len(x) - 1)
    ind = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x, return_distance=False)
    keep = ind != np.arange(len(x))[:, None]
    keep[keep.all(axis=1), -1] = False  # the point itself was crowded out by duplicates
    neighbours = ind[keep].reshape(len(x), k)
    same = (values[neighbours] == values[:, None]).mean(axis=1)
    purity = float(same.mean())
    if not per_class:
        return purity
    return purity, {c.item() if hasattr(c, "item") else c: float(same[values == c].mean())
                    for c in np.unique(values)}


def _class_values(col):
    """(values as a numpy array, missing mask): masked, empty or NaN values are missing."""
    mask = np.asarray(np.ma.getmaskarray(col))
    data = np.asarray(np.ma.getdata(col) if np.ma.isMaskedArray(col) else col)
    data = np.asarray(getattr(data, "value", data))
    if data.dtype.kind in "US":
        data = np.char.strip(data.astype(str))
        mask = mask | (data == "")
    elif data.dtype.kind == "f":
        mask = mask | ~np.isfinite(data)
    elif data.dtype.kind == "O":
        mask = mask | np.array([v is None for v in data], dtype=bool)
    return data, mask
