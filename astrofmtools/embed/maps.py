# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Maps of feature space: PCA then UMAP to two dimensions.

A map shows how a survey's sources organise in a foundation model's
feature space: sources the model sees as alike land close together. The
features are scaled (each vector to unit length by default), reduced by
PCA (to 10 components by default, or to a fraction of the variance), then
laid out in 2-D by UMAP (umap-learn). A `FeatureMap` fitted on one set (a
whole survey) places another set (a labelled sample) in the same map.
"""

import functools
import logging
import time
import warnings
from pathlib import Path

import numpy as np
from astropy.table import MaskedColumn, QTable

from ..exceptions import InputError
from ..utils import check_output_path, provenance, save_figure
from .embedding import Embedding, as_embedding

__all__ = ["FeatureMap", "umap_map", "plot_map", "balanced_indices", "knn_purity"]

log = logging.getLogger("astrofmtools")

#: a colour column with at most this many distinct integer values is drawn as classes
MAX_INTEGER_CLASSES = 12

_NORMALIZE = ("l2", "standard", None)

# sources without a label or value: darker than the grey of a background survey
_MISSING = (0.35, 0.35, 0.35, 0.7)

# umap-learn and scikit-learn are optional dependencies (the ``ml`` extra)
__doctest_requires__ = {("FeatureMap", "FeatureMap.*", "umap_map"): ["umap", "sklearn"],
                        ("plot_map",): ["matplotlib"], ("knn_purity",): ["sklearn"]}


class FeatureMap:
    """
    PCA then UMAP: a 2-D map of feature vectors, fitted once, applied to any set.

    The features are first scaled (``normalize``), then reduced by PCA and
    laid out in two dimensions by UMAP. Everything is fitted on the set
    given to `fit` (a whole survey, or a class-balanced subsample of it);
    `transform` places other vectors from the same backbone in that map
    without moving the fitted points. With a ``seed`` the map is
    reproducible: the same features and settings give the same map
    (UMAP then runs on one thread).

    Parameters
    ----------
    n_components : int, float or None, optional
        PCA components kept before UMAP: a number (default 10; capped at
        the number of vectors and dimensions), a fraction in (0, 1) of the
        variance to keep (the smallest number of components that reaches
        it), or None for no PCA.
    n_neighbors : int, optional
        UMAP's neighbourhood size (default 15): smaller values show local
        structure, larger ones the global layout. Capped at N - 1.
    min_dist : float, optional
        UMAP's minimum distance between points in the map (default 0.1):
        smaller values pack clusters tighter.
    metric : str, optional
        UMAP's distance in PCA space (default ``'euclidean'``).
    normalize : {'l2', 'standard', None}, optional
        Scaling before PCA. ``'l2'`` (default) scales every vector to unit
        length, so that the map follows the angle between vectors (cosine
        similarity, as in similarity search) and not their overall size;
        ``'standard'`` gives every feature zero mean and unit variance over
        the fit set (each dimension weighs the same); None uses the raw
        features. PCA always subtracts the mean of the fit set.
    seed : int or None, optional
        Random seed of PCA and UMAP (default 0). None lets UMAP run on all
        cores, at the price of a map that changes from run to run.
    **umap_kwargs
        More arguments of `umap.UMAP` (``spread``, ``init``, ``densmap``...).

    Attributes
    ----------
    n_components_ : int
        PCA components used (the feature dimension without PCA).
    explained_variance_ratio_ : `~numpy.ndarray`
        Fraction of the (scaled) variance in each PCA component; empty
        without PCA.
    embedding_ : `~numpy.ndarray`
        (n_fit, 2) map coordinates of the fit set.
    n_fit_ : int
        Number of vectors the map was fitted on.
    pipeline_ : `sklearn.pipeline.Pipeline`
        The fitted scaling, PCA and UMAP steps.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.embed import FeatureMap
    >>> rng = np.random.default_rng(0)
    >>> centres = rng.normal(size=(2, 16))              # two kinds of source
    >>> survey = np.repeat(centres, 50, axis=0) + rng.normal(0, 0.1, (100, 16))
    >>> fmap = FeatureMap(n_components=0.9).fit(survey)
    >>> fmap                                            # one component holds 90%
    <FeatureMap: 16 features -> PCA 1 (90% of variance kept) -> UMAP 2-D, fitted on 100>
    >>> xy = fmap.transform(survey[:3] + 0.01)       # new vectors, placed in the map
    >>> xy.shape
    (3, 2)
    >>> np.array_equal(fmap.transform(survey), fmap.embedding_)   # the fit set itself
    True
    """

    def __init__(self, n_components=10, n_neighbors=15, min_dist=0.1, metric="euclidean",
                 normalize="l2", seed=0, **umap_kwargs):
        _check_n_components(n_components)
        if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, (int, np.integer)) \
                or n_neighbors < 2:
            raise InputError(f"n_neighbors must be an integer >= 2, not {n_neighbors!r}.")
        if not np.isfinite(min_dist) or min_dist < 0:
            raise InputError(f"min_dist must be >= 0, not {min_dist!r}.")
        if normalize not in _NORMALIZE:
            raise InputError(f"normalize must be one of {_NORMALIZE}, not {normalize!r}.")
        if isinstance(n_components, (float, np.floating)) and float(n_components).is_integer():
            n_components = int(n_components)
        self.n_components = n_components
        self.n_neighbors = int(n_neighbors)
        self.min_dist = float(min_dist)
        self.metric = metric
        self.normalize = normalize
        self.seed = seed
        self.umap_kwargs = dict(umap_kwargs)
        self.pipeline_ = None

    def __repr__(self):
        if self.pipeline_ is None:
            pca = ("no PCA" if self.n_components is None else f"PCA {self.n_components}")
            return f"<FeatureMap: {pca} -> UMAP 2-D, not fitted>"
        pca = "no PCA" if self.pca_ is None else f"PCA {self.n_components_}"
        if isinstance(self.n_components, float):
            pca += f" ({self.n_components:.0%} of variance kept)"
        return (f"<FeatureMap: {self.n_features_} features -> {pca} -> UMAP 2-D, "
                f"fitted on {self.n_fit_}>")

    @property
    def fitted(self):
        """Whether `fit` has run."""
        return self.pipeline_ is not None

    @property
    def pca_(self):
        """The fitted `sklearn.decomposition.PCA`, or None without PCA."""
        self._check_fitted()
        step = self.pipeline_.named_steps["pca"]
        return None if step == "passthrough" else step

    @property
    def umap_(self):
        """The fitted `umap.UMAP`."""
        self._check_fitted()
        return self.pipeline_.named_steps["umap"]

    @property
    def n_components_(self):
        self._check_fitted()
        return self.n_features_ if self.pca_ is None else int(self.pca_.n_components_)

    @property
    def explained_variance_ratio_(self):
        self._check_fitted()
        return np.zeros(0) if self.pca_ is None else self.pca_.explained_variance_ratio_

    @property
    def embedding_(self):
        return self.umap_.embedding_

    def fit(self, features):
        """
        Fit the scaling, PCA and UMAP on a set of feature vectors.

        Parameters
        ----------
        features : `Embedding`, array, str or `~pathlib.Path`
            (N, D) feature vectors (N >= 5), an `Embedding`, or a features
            file (``astrofm embed`` output).

        Returns
        -------
        self : `FeatureMap`
        """
        from sklearn.decomposition import PCA
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import Normalizer, StandardScaler

        umap = _import_umap()
        x = _features(features, "fit")
        n, d = x.shape
        if n < 5:
            raise InputError(f"A map needs at least 5 feature vectors to fit on; got {n}.")
        if self.normalize == "l2":
            scale = Normalizer(norm="l2")
        elif self.normalize == "standard":
            scale = StandardScaler()
        else:
            scale = "passthrough"
        if self.n_components is None:
            pca = "passthrough"
        else:
            k = self.n_components
            if not isinstance(k, float):
                k = min(int(k), n, d)
                if k < self.n_components:
                    log.info("PCA to %d components (the fit set has %d vectors of dimension "
                             "%d)", k, n, d)
            pca = PCA(n_components=k, svd_solver="full" if isinstance(k, float) else "auto",
                      random_state=self.seed)
        n_neighbors = min(self.n_neighbors, n - 1)
        reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=self.min_dist,
                            metric=self.metric, random_state=self.seed,
                            n_jobs=1 if self.seed is not None else -1, **self.umap_kwargs)
        pipeline = Pipeline([("scale", scale), ("pca", pca), ("umap", reducer)])
        t0 = time.perf_counter()
        reduced = pipeline[:-1].fit(x).transform(x)
        # transform (not fit_transform) so that transform(x) later gives the same bits,
        # which umap recognises as its fit set and answers with embedding_ itself
        reducer.fit(reduced)
        self.pipeline_ = pipeline
        self.n_features_ = d
        self.n_fit_ = n
        self._fit_hash = _hash(x)
        log.info("map fitted on %d vectors (PCA %d, UMAP n_neighbors=%d) in %.1f s", n,
                 self.n_components_, n_neighbors, time.perf_counter() - t0)
        return self

    def transform(self, features):
        """
        Place feature vectors in the fitted map.

        Parameters
        ----------
        features : `Embedding`, array, str or `~pathlib.Path`
            (N, D) vectors from the same backbone as the fit set. The fit
            set itself gets its fitted coordinates back exactly.

        Returns
        -------
        xy : `~numpy.ndarray`
            (N, 2) float32 map coordinates.
        """
        self._check_fitted()
        x = _features(features, "transform")
        if x.shape[1] != self.n_features_:
            raise InputError(f"The map was fitted on features of dimension {self.n_features_}; "
                             f"these have dimension {x.shape[1]} (another backbone?).")
        reduced = self.pipeline_[:-1].transform(x)
        return np.asarray(self.umap_.transform(reduced), dtype=np.float32)

    def fit_transform(self, features):
        """`fit`, then the map coordinates of the fit set: (N, 2) float32."""
        return np.asarray(self.fit(features).embedding_, dtype=np.float32)

    def reduce(self, features):
        """
        The scaled, PCA-reduced features (the space UMAP works in).

        Returns
        -------
        reduced : `~numpy.ndarray`
            ``(N, n_components_)``.
        """
        self._check_fitted()
        return self.pipeline_[:-1].transform(_features(features, "reduce"))

    def is_fit_set(self, features):
        """Whether ``features`` are exactly the vectors the map was fitted on."""
        self._check_fitted()
        x = _features(features, "compare")
        return x.shape == (self.n_fit_, self.n_features_) and _hash(x) == self._fit_hash

    def settings(self):
        """The settings and fitted sizes, as a JSON-friendly dict (for table meta)."""
        out = {"n_components": self.n_components, "n_neighbors": self.n_neighbors,
               "min_dist": self.min_dist, "metric": self.metric, "normalize": self.normalize,
               "seed": self.seed}
        if self.umap_kwargs:
            out["umap_kwargs"] = {k: v if isinstance(v, (int, float, str, bool, type(None)))
                                  else repr(v) for k, v in self.umap_kwargs.items()}
        if self.fitted:
            out["n_components_used"] = self.n_components_
            out["explained_variance"] = round(float(np.sum(self.explained_variance_ratio_)), 6)
            out["n_fit"] = self.n_fit_
        return out

    def _check_fitted(self):
        if self.pipeline_ is None:
            raise InputError("This FeatureMap is not fitted yet; call fit() first.")


def umap_map(embedding, color=None, fit_on=None, labels=None, label_column=None,
             n_components=10, n_neighbors=15, min_dist=0.1, metric="euclidean",
             normalize="l2", balance=False, seed=0, path=None, table_path=None,
             overwrite=False, categorical=None, log_color=False, title=None):
    """
    Map sources by their features (PCA then UMAP), as a table and a PNG.

    Parameters
    ----------
    embedding : `Embedding`, str, `~pathlib.Path` or array
        The sources to map: an `Embedding` (from `embed`), a features file
        (``astrofm embed`` output) or an (N, D) array.
    color : str or array-like, optional
        What colours the points: a column of the embedding's table (or of
        ``labels``), or N values. Text, boolean and integer columns with
        at most 12 values are drawn as classes with a legend; other
        numbers (angular size, flux...) with a colour bar.
    fit_on : `FeatureMap`, `Embedding`, str or array, optional
        Fit the map on this set (e.g. a whole survey) and place
        ``embedding`` (e.g. a labelled sample) in it; a fitted `FeatureMap`
        is used as it is. Default: fit on ``embedding`` itself.
    labels : `~astropy.table.Table` or str, optional
        A table (or table file) holding the colour column, matched to the
        embedding's table on ``id`` (sources without a row get no label),
        or row-aligned when either has no ``id`` column.
    label_column : str, optional
        The column of ``labels`` to use; default ``color``. It is added
        to the output table (``<name>_labels`` if the embedding's table
        already has a column of that name).
    n_components, n_neighbors, min_dist, metric, normalize, seed
        Settings of the `FeatureMap` (when ``fit_on`` is not one).
    balance : bool or int, optional
        For classes of very different sizes: fit the map on a random
        subsample of every class of ``color`` (of the fit set), each cut
        to the size of the smallest class (True) or to this number (an
        int; smaller classes are kept whole), then place all sources in
        it. Sources without a label are left out of the fit.
    path : str or `~pathlib.Path`, optional
        Save a PNG of the map here (see `plot_map`).
    table_path : str or `~pathlib.Path`, optional
        Save the table here (ECSV, FITS, VOTable; `~astrofmtools.catalog.write_table`).
    overwrite : bool, optional
        Replace existing output files (checked before any work is done).
    categorical, log_color, title
        Passed to `plot_map`.

    Returns
    -------
    table : `~astropy.table.QTable`
        Every column of the embedding's table (``id``, sky position...),
        and:

        - ``map_x``, ``map_y``: the map coordinates (arbitrary units;
          only distances between points mean something);
        - ``map_fit``: True for the sources the map was fitted on;
        - the colour column, when it came from ``labels``.

        ``meta`` records the map settings, the PCA components and variance
        kept, the backbone of the features and the package versions.

    Examples
    --------
    Three classes of sources that a backbone would see as different:

    >>> import numpy as np
    >>> from astrofmtools.embed import Embedding, knn_purity, umap_map
    >>> rng = np.random.default_rng(1)
    >>> centres = rng.normal(size=(3, 32))
    >>> kind = np.repeat(["compact", "FRI", "FRII"], [120, 20, 40])
    >>> features = centres[np.searchsorted(["FRI", "FRII", "compact"], kind)]
    >>> emb = Embedding(features + rng.normal(0, 0.1, (180, 32)), {"kind": kind})
    >>> table = umap_map(emb, color="kind", balance=True, path="map.png")
    >>> table.colnames
    ['id', 'kind', 'map_x', 'map_y', 'map_fit']
    >>> int(table["map_fit"].sum())              # 20 of each class fitted, all 180 placed
    60
    >>> knn_purity(np.c_[table["map_x"], table["map_y"]], table["kind"]) > 0.95
    True
    """
    from ..catalog import write_table

    for out in (path, table_path):
        if out is not None:
            check_output_path(out, overwrite)
    balance = False if balance is None else balance
    emb = as_embedding(embedding)
    table = QTable(emb.table, copy=True)
    color_name, table = _attach_color(table, color, labels, label_column)

    fmap = fit_on if isinstance(fit_on, FeatureMap) else None
    fit_emb = None
    if fmap is None:
        fmap = FeatureMap(n_components=n_components, n_neighbors=n_neighbors,
                          min_dist=min_dist, metric=metric, normalize=normalize, seed=seed)
        fit_emb = emb if fit_on is None else as_embedding(fit_on)
    elif not fmap.fitted:
        fit_emb = emb
    elif balance is not False:
        raise InputError("balance chooses the vectors a map is fitted on; fit_on is a "
                         "FeatureMap that is already fitted.")
    if fit_emb is not None:
        fit_rows = np.arange(len(fit_emb))
        if balance is not False:
            fit_table = table if fit_emb is emb else QTable(fit_emb.table, copy=False)
            if color_name is None or color_name not in fit_table.colnames:
                raise InputError("balance needs a class column in the set the map is fitted "
                                 f"on: {color_name!r} is not a column of "
                                 f"{'the embedding' if fit_emb is emb else 'fit_on'}'s table.")
            n_per_class = None if balance is True else balance
            fit_rows = balanced_indices(fit_table[color_name], n_per_class=n_per_class,
                                        seed=seed)
        fmap.fit(fit_emb.features[fit_rows])

    if fit_emb is emb:
        xy = np.full((len(emb), 2), np.nan, dtype=np.float32)
        xy[fit_rows] = fmap.embedding_
        rest = np.setdiff1d(np.arange(len(emb)), fit_rows)
        if len(rest):
            xy[rest] = fmap.transform(emb.features[rest])
        in_fit = np.isin(np.arange(len(emb)), fit_rows)
    else:
        xy = fmap.transform(emb.features)
        in_fit = np.full(len(emb), fmap.is_fit_set(emb))

    for name in ("map_x", "map_y", "map_fit"):
        if name in table.colnames:
            table.rename_column(name, f"{name}_input")
    table["map_x"] = xy[:, 0].astype(float)
    table["map_x"].info.description = "UMAP map coordinate 1 (arbitrary units)"
    table["map_y"] = xy[:, 1].astype(float)
    table["map_y"].info.description = "UMAP map coordinate 2 (arbitrary units)"
    table["map_fit"] = in_fit
    table["map_fit"].info.description = "True for the sources the map was fitted on"
    table.meta.update(provenance(
        packages=("umap-learn", "scikit-learn"), stage="map", **fmap.settings(),
        color=color_name, balance=balance if isinstance(balance, bool) else int(balance),
        fit_on=("the mapped sources" if in_fit.all() else
                "a balanced subsample of the mapped sources" if in_fit.any() else
                str(fit_on) if isinstance(fit_on, (str, Path)) else "another set"),
        backbone=emb.meta.get("backbone"), weights=emb.meta.get("weights")))

    if path is not None:
        background = None if in_fit.any() else fmap.embedding_
        plot_map(table, color=color_name, path=path, background=background,
                 categorical=categorical, log_color=log_color, title=title,
                 overwrite=overwrite)
    if table_path is not None:
        write_table(table, table_path, overwrite=overwrite)
    return table


def plot_map(table, color=None, path=None, background=None, categorical=None,
             log_color=False, cmap=None, title=None, overwrite=False, ax=None):
    """
    Draw a map table (`umap_map` output), coloured by a class or a number.

    Parameters
    ----------
    table : `~astropy.table.Table`
        With ``map_x`` and ``map_y`` columns.
    color : str, optional
        A column of ``table``. Classes get a legend with their counts
        (sources without a label are grey), numbers a colour bar (a
        Quantity's unit is in its label; NaN is grey).
    path : str or `~pathlib.Path`, optional
        Save the figure to this PNG file (atomically; 640 x 560 pixels).
    background : array-like, optional
        (M, 2) coordinates drawn first in light grey, e.g. the whole
        survey the map was fitted on (``FeatureMap.embedding_``).
    categorical : bool, optional
        Force classes (True) or a colour bar (False); default from the
        column: text, booleans and integers with at most 12 values are
        classes.
    log_color : bool, optional
        Logarithmic colour scale for numbers (fluxes...); values <= 0 are
        grey.
    cmap : str, optional
        Colour map (default ``'tab10'``/``'tab20'`` for classes,
        ``'viridis'`` for numbers).
    title : str, optional
        Figure title; default: the number of sources and the backbone.
    overwrite : bool, optional
        Replace an existing ``path``.
    ax : `~matplotlib.axes.Axes`, optional
        Draw into these axes instead of a new figure.

    Returns
    -------
    fig : `~matplotlib.figure.Figure`
        The figure (not registered with pyplot).

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.table import QTable
    >>> from astrofmtools.embed import plot_map
    >>> rng = np.random.default_rng(0)
    >>> t = QTable({"map_x": rng.normal(size=50), "map_y": rng.normal(size=50),
    ...             "flux": rng.lognormal(size=50)})
    >>> fig = plot_map(t, color="flux", log_color=True, path="flux_map.png")
    >>> fig.axes[1].get_ylabel()
    'flux'
    """
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    if path is not None:
        check_output_path(path, overwrite)
    for name in ("map_x", "map_y"):
        if name not in table.colnames:
            raise InputError(f"The table has no {name!r} column (is it umap_map output?); "
                             f"its columns: {', '.join(table.colnames)}.")
    x = np.asarray(table["map_x"], dtype=float)
    y = np.asarray(table["map_y"], dtype=float)
    n = len(table)
    if ax is None:
        fig = Figure(figsize=(6.4, 5.6), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    size = float(np.clip(6000.0 / max(n, 1), 2.0, 30.0))
    if background is not None:
        bg = np.asarray(background, dtype=float)
        ax.scatter(bg[:, 0], bg[:, 1], s=max(size / 3, 1.0), c="0.85", lw=0, rasterized=True,
                   label=f"map fitted on ({len(bg)})")
    order = np.random.default_rng(0).permutation(n)  # no class drawn over all others
    if color is None:
        ax.scatter(x[order], y[order], s=size, c="C0", lw=0, alpha=0.8)
        if background is not None:
            ax.legend(fontsize=8, markerscale=2)
    else:
        if color not in table.colnames:
            raise InputError(f"The table has no column {color!r}; its columns: "
                             f"{', '.join(table.colnames)}.")
        col = table[color]
        if _is_categorical(col, categorical):
            values, missing = _class_values(col)
            classes = sorted(set(values[~missing].tolist()), key=_sort_key)
            cmap = colormaps[cmap or ("tab10" if len(classes) <= 10 else "tab20")]
            palette = [cmap(i % cmap.N) for i in range(len(classes))]
            index = {c: i for i, c in enumerate(classes)}
            colors = np.array([_MISSING if m else palette[index[v]]
                               for v, m in zip(values, missing)]).reshape(-1, 4)
            ax.scatter(x[order], y[order], s=size, c=colors[order], lw=0)
            handles = [Line2D([], [], ls="", marker="o", color=palette[i],
                              label=f"{c} ({int(np.sum(values[~missing] == c))})")
                       for i, c in enumerate(classes[:20])]
            if missing.any():
                handles.append(Line2D([], [], ls="", marker="o", color=_MISSING,
                                      label=f"no label ({int(missing.sum())})"))
            if background is not None:
                handles.insert(0, Line2D([], [], ls="", marker="o", color="0.85",
                                         label=f"map fitted on ({len(background)})"))
            ax.legend(handles=handles, title=color, fontsize=8, title_fontsize=8,
                      loc="best", framealpha=0.8)
        else:
            values, unit = _numeric_values(col, color)
            good = np.isfinite(values) & ((values > 0) if log_color else True)
            if not good.any():
                raise InputError(f"Column {color!r} has no finite"
                                 f"{' positive' if log_color else ''} value to colour by.")
            scale = LogNorm if log_color else Normalize
            norm = scale(vmin=np.min(values[good]), vmax=np.max(values[good]))
            if (~good).any():
                ax.scatter(x[~good], y[~good], s=size, c=[_MISSING], lw=0,
                           label=f"no value ({int((~good).sum())})")
            sel = order[good[order]]
            points = ax.scatter(x[sel], y[sel], s=size, c=values[sel], cmap=cmap or "viridis",
                                norm=norm, lw=0)
            bar = fig.colorbar(points, ax=ax, shrink=0.85)
            bar.set_label(f"{color} [{unit}]" if unit else color)
            if (~good).any() or background is not None:
                ax.legend(fontsize=8, markerscale=2)
    ax.set_xlabel("UMAP 1")
    ax.set_ylabel("UMAP 2")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is None:
        backbone = table.meta.get("backbone")
        k = table.meta.get("n_components_used")
        title = (f"{n} sources" + (f", {backbone} features" if backbone else "")
                 + (f", PCA {k}" if k else ""))
    if title:
        ax.set_title(title, fontsize=10)
    save_figure(fig, path, overwrite)
    return fig


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


def _import_umap():
    """umap-learn, without its warning that TensorFlow (for ParametricUMAP) is missing, and
    with numba's on-disk cache on for its compiled functions."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Tensorflow not installed",
                                category=ImportWarning)
        import umap
    _cache_numba_functions(("umap", "pynndescent"))
    return umap


@functools.lru_cache(maxsize=None)  # once per process
def _cache_numba_functions(packages):
    """
    Turn on numba's on-disk cache for the jitted functions of ``packages``.

    umap-learn and pynndescent compile about 30 s of numba code in every new
    process (a cold ``astrofm map`` spent 30 of its 33 s there) and ask numba
    to cache almost none of it. With the cache on (what ``@njit(cache=True)``
    does), the next process loads the machine code in about 3 s. numba keeps
    the files beside the package (or in its user cache folder, or
    ``NUMBA_CACHE_DIR``) and recompiles when a source file changes. Only
    modules already imported are touched; anything unexpected leaves numba
    as it was.
    """
    import sys
    try:
        from numba.core.dispatcher import Dispatcher
    except ImportError:  # pragma: no cover - umap needs numba
        return
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in packages:
            continue
        for obj in list(vars(module).values()):
            try:
                if isinstance(obj, Dispatcher) and type(obj._cache).__name__ == "NullCache":
                    obj.enable_caching()
            except Exception:  # noqa: BLE001 - numba internals differ: keep compiling
                return


def _hash(x):
    import hashlib
    return hashlib.sha1(np.ascontiguousarray(x).view(np.uint8)).hexdigest()


def _check_n_components(k):
    if k is None:
        return
    if isinstance(k, bool) or not isinstance(k, (int, float, np.integer, np.floating)):
        raise InputError(f"n_components must be an integer, a fraction in (0, 1) or None, "
                         f"not {k!r}.")
    if isinstance(k, (float, np.floating)) and not float(k).is_integer():
        if not 0 < k < 1:
            raise InputError(f"A fractional n_components is the variance to keep and must "
                             f"be in (0, 1), not {k}.")
    elif k < 1:
        raise InputError(f"n_components must be >= 1 (or a fraction in (0, 1)), not {k}.")


def _features(obj, what):
    features = obj.features if isinstance(obj, Embedding) else as_embedding(obj).features
    if not np.all(np.isfinite(features)):
        bad = np.flatnonzero(~np.isfinite(features).all(axis=1))
        raise InputError(f"Cannot {what}: {len(bad)} feature vector(s) hold NaN or inf "
                         f"(rows {bad[:10].tolist()}).")
    return features


def _attach_color(table, color, labels, label_column):
    """(name of the colour column, table with it)."""
    if color is None and labels is None:
        return None, table
    if labels is not None:
        from ..catalog import read_table
        source = str(labels) if isinstance(labels, (str, Path)) else "the labels table"
        labels = labels if hasattr(labels, "colnames") else read_table(labels)
        column = label_column or color
        if column is None or not isinstance(column, str):
            raise InputError("Name the column of the labels table to use (label_column).")
        if column not in labels.colnames:
            raise InputError(f"{source} has no column {column!r}; its columns: "
                             f"{', '.join(labels.colnames)}.")
        name = column if column not in table.colnames else f"{column}_labels"
        if "id" in labels.colnames and "id" in table.colnames:
            lookup = {_key(i): j for j, i in enumerate(labels["id"])}
            rows = np.array([lookup.get(_key(i), -1) for i in table["id"]])
            if np.all(rows < 0):
                raise InputError(f"No id of {source} matches an id of the embedding's table.")
            values = labels[column]
            taken = values[np.maximum(rows, 0)]
            if np.any(rows < 0):
                taken = MaskedColumn(np.asarray(getattr(taken, "value", taken)),
                                     mask=rows < 0, unit=getattr(values, "unit", None))
            table[name] = taken
        elif len(labels) == len(table):
            table[name] = labels[column]
        else:
            raise InputError(f"{source} has {len(labels)} rows for {len(table)} sources; give "
                             "both tables an 'id' column or keep them row-aligned.")
        table[name].info.description = f"{column} from {source}"
        if color is None or color == column:
            return name, table
    if isinstance(color, str):
        if color not in table.colnames:
            raise InputError(f"No column {color!r} to colour by; the embedding's table has "
                             f"{', '.join(table.colnames)}.")
        return color, table
    values = np.asarray(color)
    if values.ndim != 1 or len(values) != len(table):
        raise InputError(f"color must be a column name or {len(table)} values, one per "
                         f"source; got shape {values.shape}.")
    name = "color" if "color" not in table.colnames else "color_values"
    table[name] = values
    return name, table


def _key(value):
    value = value.item() if hasattr(value, "item") else value
    return str(value).strip()


def _is_categorical(col, categorical=None):
    if categorical is not None:
        return bool(categorical)
    kind = np.asarray(col).dtype.kind
    if kind in "USOb":
        return True
    if kind in "iu" and getattr(col, "unit", None) is None:
        return len(np.unique(np.asarray(col))) <= MAX_INTEGER_CLASSES
    return False


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


def _sort_key(value):
    return (0, value, "") if isinstance(value, (int, float, np.number)) else (1, 0, str(value))


def _numeric_values(col, name):
    unit = getattr(col, "unit", None)
    data = np.ma.getdata(col) if np.ma.isMaskedArray(col) else col
    data = getattr(data, "value", data)
    try:
        values = np.array(data, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"Column {name!r} is neither numbers nor a class label that can be "
                         "coloured by.") from None
    if values.ndim != 1:
        raise InputError(f"Column {name!r} has shape {values.shape}; colour by a 1-D column.")
    values[np.asarray(np.ma.getmaskarray(col))] = np.nan
    return values, ("" if unit is None or str(unit) == "" else unit.to_string())
