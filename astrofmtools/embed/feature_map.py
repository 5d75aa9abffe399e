# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The `FeatureMap`: scaling, PCA then UMAP to two dimensions, fitted once.

The features are scaled (each vector to unit length by default), reduced
by PCA (to 10 components by default, or to a fraction of the variance),
then laid out in 2-D by UMAP (umap-learn). A `FeatureMap` fitted on one
set (a whole survey) places another set (a labelled sample) in the same
map.
"""

import functools
import logging
import time
import warnings

import numpy as np

from ..exceptions import InputError
from .embedding import Embedding, as_embedding

__all__ = ["FeatureMap", "METRICS"]

log = logging.getLogger("astrofmtools")

_NORMALIZE = ("l2", "standard", None)

#: The distances UMAP can use between (PCA-reduced) feature vectors, by name
#: (umap-learn's names; a callable metric is also accepted).
METRICS = ("euclidean", "cosine", "correlation", "manhattan", "chebyshev", "minkowski",
           "canberra", "braycurtis", "seuclidean")

# umap-learn and scikit-learn are optional dependencies (the ``ml`` extra)
__doctest_requires__ = {("FeatureMap", "FeatureMap.*"): ["umap", "sklearn"]}


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
    metric : str or callable, optional
        UMAP's distance in PCA space (default ``'euclidean'``): one of
        `METRICS`, or a numba-compiled function of two vectors.
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
        if not callable(metric) and metric not in METRICS:
            raise InputError(f"Unknown metric {metric!r}; known: {', '.join(METRICS)} (or a "
                             "function of two vectors).")
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
