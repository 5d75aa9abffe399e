# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Out-of-distribution scores on features: how unlike the training set an
object is, so that a classifier's answer on it can be flagged.

Two detectors, both fitted on the training features and scoring new ones
(larger = less like training):

- `KNNDistance`: the cosine distance to the k-th nearest training feature
  (Sun et al. 2022, "Out-of-distribution detection with deep nearest
  neighbors"). Makes no assumption about the shape of the classes.
- `MahalanobisDistance`: the smallest Mahalanobis distance to a class mean
  under a shared, Ledoit-Wolf shrunk covariance (Lee et al. 2018, "A simple
  unified framework for detecting out-of-distribution samples and
  adversarial attacks").

A flag threshold is a quantile of the scores of held-out in-distribution
objects (`ood_threshold`): with 0.95 about 5 % of in-distribution objects
are flagged. Works on numpy arrays; `MahalanobisDistance` needs
scikit-learn. Never imports torch.
"""

import numpy as np

from ..exceptions import InputError

__all__ = ["KNNDistance", "MahalanobisDistance", "OOD_METHODS", "ood_threshold",
           "ood_columns"]

# scikit-learn is an optional dependency (the ``ml`` extra)
__doctest_requires__ = {("MahalanobisDistance", "MahalanobisDistance.*"): ["sklearn"]}

#: Queries scored at once: at most this many, and at most _BLOCK_ELEMENTS / bank size.
_CHUNK = 4096
#: Elements of one (queries, bank) similarity block (128 MiB in float32).
_BLOCK_ELEMENTS = 2 ** 25


def _as_features(features, what="features", dim=None):
    """A finite 2-D float64 array (N, D) with N >= 1, of dimension ``dim`` if given."""
    try:
        x = np.asarray(features, dtype=float)
    except (TypeError, ValueError) as err:
        raise InputError(f"The {what} must be numbers; {err}") from None
    if x.ndim != 2:
        raise InputError(f"The {what} must be a 2-D array (N objects, D features); got shape "
                         f"{x.shape}.")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise InputError(f"The {what} are empty (shape {x.shape}).")
    if not np.all(np.isfinite(x)):
        bad = np.flatnonzero(~np.all(np.isfinite(x), axis=1))
        raise InputError(f"The {what} hold NaN or infinite values in {len(bad)} rows (first: "
                         f"row {bad[0]}).")
    if dim is not None and x.shape[1] != dim:
        raise InputError(f"The {what} have {x.shape[1]} dimensions but the detector was "
                         f"fitted on {dim}.")
    return x


def _check_state(state, keys, cls):
    missing = [k for k in keys if k not in state]
    if missing:
        raise InputError(f"A saved {cls.__name__} state needs the keys {list(keys)}; "
                         f"{missing} are missing (got {sorted(state)}).")


def _unit_rows(x):
    """Rows scaled to unit L2 norm (an all-zero row stays zero), as float32."""
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norm > 0, norm, 1.0)).astype(np.float32)


class KNNDistance:
    """
    Out-of-distribution score: the cosine distance to the k-th nearest training feature.

    As in Sun et al. (2022, "Out-of-distribution detection with deep nearest
    neighbors"), features are L2-normalised and an object's score is its
    distance to the k-th nearest of the normalised training features (the
    bank). The score is the cosine distance ``1 - cos``, which orders
    objects as the Euclidean distance between unit vectors does
    (:math:`\\lVert a - b\\rVert^2 = 2(1 - \\cos)`). Neighbours are found by
    an exact, brute-force float32 matrix product in chunks of at most 4096
    queries (and at most 2**25 query-bank pairs, 128 MiB), so memory stays
    bounded for any number of queries.

    Parameters
    ----------
    k : int, optional
        Which neighbour's distance is the score (1 = the nearest). Sun et
        al. use k = 50 for ImageNet-scale banks and k = 1 for CIFAR-10; 10
        suits banks of thousands. When the bank holds fewer than ``k``
        features (plus one with ``exclude_self``), the farthest one is used.

    Attributes
    ----------
    bank_ : `~numpy.ndarray` of float32, shape (M, D)
        The L2-normalised training features, set by `fit`.

    Examples
    --------
    >>> from astrofmtools.trust import KNNDistance
    >>> detector = KNNDistance(k=1).fit([[1.0, 0.0], [0.0, 2.0]])
    >>> detector.score([[3.0, 0.0], [1.0, 1.0], [-1.0, 0.0]]).round(4).tolist()
    [0.0, 0.2929, 1.0]
    >>> detector.score([[1.0, 0.0], [0.0, 1.0]], exclude_self=True).round(4).tolist()
    [1.0, 1.0]
    """

    def __init__(self, k=10):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InputError(f"k, the neighbour whose distance is the score, must be an "
                             f"integer >= 1; got {k!r}.")
        self.k = int(k)
        self.bank_ = None

    def __repr__(self):
        size = "unfitted" if self.bank_ is None else f"bank={self.bank_.shape}"
        return f"KNNDistance(k={self.k}, {size})"

    def fit(self, features):
        """
        Keep the L2-normalised training features as the bank.

        Parameters
        ----------
        features : array-like, shape (M, D)
            Features of the in-distribution (training) objects. An all-zero
            row has no direction and is kept as zero (cosine distance 1 to
            everything).

        Returns
        -------
        self : `KNNDistance`

        Raises
        ------
        astrofmtools.InputError
            If the features are not a finite, non-empty 2-D array.

        Examples
        --------
        >>> from astrofmtools.trust import KNNDistance
        >>> KNNDistance(k=1).fit([[3.0, 4.0]]).bank_.tolist()
        [[0.6, 0.8]]
        """
        self.bank_ = _unit_rows(_as_features(features, "training features"))
        return self

    def _check_fitted(self):
        if self.bank_ is None:
            raise InputError("This KNNDistance is not fitted: call fit(training_features) "
                             "first.")

    def score(self, features, exclude_self=False):
        """
        The cosine distance of each object to its k-th nearest training feature.

        Parameters
        ----------
        features : array-like, shape (N, D)
            Features of the objects to score.
        exclude_self : bool, optional
            The objects are themselves in the bank (leave-one-out scores of
            the training set): skip the nearest neighbour, taken to be the
            object itself, and use the (k+1)-th.

        Returns
        -------
        scores : `~numpy.ndarray` of float64, shape (N,)
            Cosine distances ``1 - cos`` in [0, 2]; larger is less like the
            training set.

        Raises
        ------
        astrofmtools.InputError
            If the detector is not fitted, the features are not a finite 2-D
            array, their dimension differs from the bank's, or
            ``exclude_self`` leaves no neighbour (a bank of one).

        Examples
        --------
        >>> from astrofmtools.trust import KNNDistance
        >>> detector = KNNDistance(k=2).fit([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
        >>> detector.score([[1.0, 0.0]]).round(4).tolist()
        [0.2929]
        >>> detector.score([[1.0, 0.0]], exclude_self=True).round(4).tolist()
        [1.0]
        """
        self._check_fitted()
        queries = _unit_rows(_as_features(features, "features", dim=self.bank_.shape[1]))
        m = len(self.bank_)
        rank = self.k + int(bool(exclude_self))
        if exclude_self and m < 2:
            raise InputError("exclude_self=True needs a bank of at least 2 training features; "
                             "this one holds 1.")
        rank = min(rank, m)  # a small bank: its farthest member
        chunk = max(1, min(_CHUNK, _BLOCK_ELEMENTS // m))
        out = np.empty(len(queries))
        for start in range(0, len(queries), chunk):
            sim = queries[start:start + chunk] @ self.bank_.T  # (chunk, M) cosines
            # the rank-th largest cosine is the rank-th nearest neighbour
            kth = np.partition(sim, m - rank, axis=1)[:, m - rank]
            out[start:start + chunk] = 1.0 - kth.astype(np.float64)
        return np.clip(out, 0.0, 2.0)

    def to_state(self):
        """
        The fitted detector as arrays and plain values, e.g. to save in safetensors.

        Returns
        -------
        state : dict
            ``bank`` (float32 array (M, D), the normalised training features)
            and ``k`` (int).

        Raises
        ------
        astrofmtools.InputError
            If the detector is not fitted.

        Examples
        --------
        >>> from astrofmtools.trust import KNNDistance
        >>> state = KNNDistance(k=3).fit([[1.0, 0.0], [0.0, 1.0]]).to_state()
        >>> state["k"], state["bank"].dtype.name, state["bank"].shape
        (3, 'float32', (2, 2))
        """
        self._check_fitted()
        return {"bank": self.bank_.copy(), "k": self.k}

    @classmethod
    def from_state(cls, state):
        """
        Rebuild a fitted detector from `to_state`'s dict; it scores identically.

        Parameters
        ----------
        state : dict
            ``bank`` (array (M, D), already normalised: used as is) and ``k``.

        Returns
        -------
        detector : `KNNDistance`

        Raises
        ------
        astrofmtools.InputError
            If a key is missing or the bank is not a finite 2-D array.

        Examples
        --------
        >>> from astrofmtools.trust import KNNDistance
        >>> detector = KNNDistance(k=1).fit([[1.0, 0.0], [0.0, 1.0]])
        >>> copy = KNNDistance.from_state(detector.to_state())
        >>> copy.score([[1.0, 1.0]]).round(4).tolist()
        [0.2929]
        """
        _check_state(state, ("bank", "k"), cls)
        detector = cls(k=int(state["k"]))
        detector.bank_ = _as_features(state["bank"], "saved bank").astype(np.float32)
        return detector


class MahalanobisDistance:
    """
    Out-of-distribution score: the smallest Mahalanobis distance to a class mean.

    As in Lee et al. (2018), each class is a Gaussian with its own mean and
    a covariance shared by all classes, estimated from the class-centred
    training features with Ledoit-Wolf shrinkage
    (`sklearn.covariance.LedoitWolf`), which keeps it invertible when there
    are few objects per feature dimension. Without labels the training set
    is a single Gaussian. An object's score is
    :math:`\\min_c \\sqrt{(x - \\mu_c)^T \\Sigma^{-1} (x - \\mu_c)}`.
    Needs scikit-learn.

    The means and the precision matrix are kept in float32, so a detector
    saved with `to_state` and restored with `from_state` scores
    identically; distances are computed in float64 in chunks of 4096
    objects.

    Attributes
    ----------
    means_ : `~numpy.ndarray` of float32, shape (C, D)
        The class means (one row without labels), set by `fit`.
    precision_ : `~numpy.ndarray` of float32, shape (D, D)
        The inverse of the shared covariance.
    classes_ : `~numpy.ndarray` or None
        The sorted labels of the rows of ``means_`` (None without labels or
        after `from_state`).

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.trust import MahalanobisDistance
    >>> rng = np.random.default_rng(0)
    >>> train = rng.normal(size=(500, 2)) * [1.0, 4.0]
    >>> detector = MahalanobisDistance().fit(train)
    >>> # 4 units along the narrow axis is far; 4 along the wide axis is not
    >>> detector.score([[4.0, 0.0], [0.0, 4.0]]).round(1).tolist()
    [4.0, 1.0]
    """

    def __init__(self):
        self.means_ = None
        self.precision_ = None
        self.classes_ = None
        self._whiten = None

    def __repr__(self):
        size = ("unfitted" if self.means_ is None
                else f"classes={len(self.means_)}, dim={self.means_.shape[1]}")
        return f"MahalanobisDistance({size})"

    def fit(self, features, labels=None):
        """
        Fit the class means and the shared, shrunk covariance.

        Parameters
        ----------
        features : array-like, shape (M, D)
            Features of the in-distribution (training) objects, M >= 2.
        labels : array-like, shape (M,), optional
            The class of each object (any sortable labels): one Gaussian per
            class with a shared covariance. Without labels, one Gaussian.

        Returns
        -------
        self : `MahalanobisDistance`

        Raises
        ------
        astrofmtools.InputError
            If the features are not a finite 2-D array of at least 2 rows, or
            the labels are not one per row.

        Examples
        --------
        >>> from astrofmtools.trust import MahalanobisDistance
        >>> features = [[0.0, 0.0], [0.0, 2.0], [10.0, 0.0], [10.0, 2.0]]
        >>> detector = MahalanobisDistance().fit(features, labels=["a", "a", "b", "b"])
        >>> detector.means_.tolist(), detector.classes_.tolist()
        ([[0.0, 1.0], [10.0, 1.0]], ['a', 'b'])
        """
        from sklearn.covariance import LedoitWolf

        x = _as_features(features, "training features")
        if len(x) < 2:
            raise InputError("A Mahalanobis detector needs at least 2 training features to "
                             f"estimate a covariance; got {len(x)}.")
        if labels is None:
            self.classes_ = None
            index = np.zeros(len(x), dtype=int)
        else:
            labels = np.asarray(labels)
            if labels.shape != (len(x),):
                raise InputError(f"There must be one label per training feature: "
                                 f"{len(x)} features but labels of shape {labels.shape}.")
            self.classes_, index = np.unique(labels, return_inverse=True)
        n_classes = int(index.max()) + 1
        means = np.zeros((n_classes, x.shape[1]))
        np.add.at(means, index, x)
        means /= np.bincount(index, minlength=n_classes)[:, None]
        centred = x - means[index]
        precision = LedoitWolf(assume_centered=True).fit(centred).precision_
        self.means_ = means.astype(np.float32)
        self.precision_ = ((precision + precision.T) / 2).astype(np.float32)
        self._whiten = None
        return self

    def _check_fitted(self):
        if self.means_ is None:
            raise InputError("This MahalanobisDistance is not fitted: call "
                             "fit(training_features, labels) first.")

    def _whitening(self):
        """W with W W^T = precision: Mahalanobis distances are Euclidean ones after x @ W."""
        if self._whiten is None:
            w, v = np.linalg.eigh(self.precision_.astype(np.float64))
            self._whiten = v * np.sqrt(np.clip(w, 0.0, None))
        return self._whiten

    def score(self, features, exclude_self=False):
        """
        The smallest Mahalanobis distance of each object to a class mean.

        Parameters
        ----------
        features : array-like, shape (N, D)
            Features of the objects to score.
        exclude_self : bool, optional
            Accepted for the same interface as `KNNDistance.score` and
            ignored: one object barely moves a fitted Gaussian, so the scores
            of training objects are only slightly smaller than those of
            held-out ones.

        Returns
        -------
        scores : `~numpy.ndarray` of float64, shape (N,)
            Distances (in standard deviations); larger is less like the
            training set.

        Raises
        ------
        astrofmtools.InputError
            If the detector is not fitted or the features are not a finite
            2-D array of the fitted dimension.

        Examples
        --------
        >>> from astrofmtools.trust import MahalanobisDistance
        >>> features = [[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]]
        >>> detector = MahalanobisDistance().fit(features)
        >>> detector.score([[0.0, 0.0], [2.0, 0.0]]).round(3).tolist()
        [0.0, 2.0]
        """
        self._check_fitted()
        x = _as_features(features, "features", dim=self.means_.shape[1])
        w = self._whitening()
        centres = self.means_.astype(np.float64) @ w  # (C, D) whitened means
        centre_sq = np.sum(centres ** 2, axis=1)
        out = np.empty(len(x))
        for start in range(0, len(x), _CHUNK):
            z = x[start:start + _CHUNK] @ w
            d2 = np.sum(z ** 2, axis=1)[:, None] - 2 * z @ centres.T + centre_sq
            out[start:start + _CHUNK] = np.sqrt(np.clip(d2.min(axis=1), 0.0, None))
        return out

    def to_state(self):
        """
        The fitted detector as arrays, e.g. to save in safetensors.

        Returns
        -------
        state : dict
            ``means`` (float32 array (C, D)) and ``precision`` (float32 array
            (D, D)).

        Raises
        ------
        astrofmtools.InputError
            If the detector is not fitted.

        Examples
        --------
        >>> from astrofmtools.trust import MahalanobisDistance
        >>> state = MahalanobisDistance().fit([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]).to_state()
        >>> sorted(state), state["means"].shape, state["precision"].dtype.name
        (['means', 'precision'], (1, 2), 'float32')
        """
        self._check_fitted()
        return {"means": self.means_.copy(), "precision": self.precision_.copy()}

    @classmethod
    def from_state(cls, state):
        """
        Rebuild a fitted detector from `to_state`'s dict; it scores identically.

        Parameters
        ----------
        state : dict
            ``means`` (array (C, D)) and ``precision`` (array (D, D)).

        Returns
        -------
        detector : `MahalanobisDistance`
            With ``classes_`` None (the state holds no labels).

        Raises
        ------
        astrofmtools.InputError
            If a key is missing or the shapes do not match.

        Examples
        --------
        >>> from astrofmtools.trust import MahalanobisDistance
        >>> detector = MahalanobisDistance().fit([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
        >>> copy = MahalanobisDistance.from_state(detector.to_state())
        >>> bool((copy.score([[3.0, 3.0]]) == detector.score([[3.0, 3.0]])).all())
        True
        """
        _check_state(state, ("means", "precision"), cls)
        means = _as_features(state["means"], "saved means").astype(np.float32)
        precision = _as_features(state["precision"], "saved precision").astype(np.float32)
        d = means.shape[1]
        if precision.shape != (d, d):
            raise InputError(f"The saved precision matrix has shape {precision.shape} but the "
                             f"means have {d} dimensions; expected ({d}, {d}).")
        detector = cls()
        detector.means_, detector.precision_ = means, precision
        return detector


#: Out-of-distribution detectors by name.
OOD_METHODS = {"knn": KNNDistance, "mahalanobis": MahalanobisDistance}


def ood_threshold(scores, quantile=0.95):
    """
    The score above which an object is flagged as out of distribution.

    Parameters
    ----------
    scores : array-like, shape (N,)
        Scores of in-distribution objects the detector was not fitted on (a
        held-out split), or leave-one-out scores of the training objects
        (``score(train, exclude_self=True)``).
    quantile : float, optional
        The fraction of in-distribution objects to keep unflagged, in (0, 1):
        0.95 flags about 5 % of them.

    Returns
    -------
    threshold : float
        The ``quantile`` of ``scores`` (`numpy.quantile`, linear
        interpolation). Objects with a score strictly above it are flagged.

    Raises
    ------
    astrofmtools.InputError
        If ``quantile`` is not in (0, 1) or the scores are empty or not
        finite.

    Examples
    --------
    >>> from astrofmtools.trust import ood_threshold
    >>> ood_threshold([0.1, 0.2, 0.3, 0.4, 0.5], quantile=0.75)
    0.4
    """
    quantile = float(quantile)
    if not 0 < quantile < 1:
        raise InputError(f"The OOD quantile must be in (0, 1); got {quantile}.")
    s = np.asarray(scores, dtype=float).ravel()
    if s.size == 0:
        raise InputError("No in-distribution scores to set an OOD threshold from.")
    if not np.all(np.isfinite(s)):
        raise InputError(f"The in-distribution scores hold {int(np.sum(~np.isfinite(s)))} NaN "
                         "or infinite values.")
    return float(np.quantile(s, quantile))


def ood_columns(table, scores, threshold):
    """
    Add out-of-distribution scores and flags to a table, one row per object.

    Parameters
    ----------
    table : `~astropy.table.Table` or `~astropy.table.QTable`
        The table of N objects; changed in place.
    scores : array-like, shape (N,)
        The detector's scores (`KNNDistance.score`,
        `MahalanobisDistance.score`).
    threshold : float
        The flag threshold (`ood_threshold`).

    Returns
    -------
    table : `~astropy.table.Table` or `~astropy.table.QTable`
        The same table with the columns (replacing any of the same name):

        - ``ood_score`` : float, the score; larger is less like the training
          set.
        - ``ood_flag`` : bool, True where ``ood_score > threshold``.

        ``table.meta["ood_threshold"]`` records the threshold.

    Raises
    ------
    astrofmtools.InputError
        If the number of scores differs from the table's length, or the
        scores or threshold are not finite numbers.

    Examples
    --------
    >>> from astropy.table import Table
    >>> from astrofmtools.trust import ood_columns
    >>> table = ood_columns(Table({"id": [1, 2, 3]}), [0.1, 0.5, 0.9], threshold=0.5)
    >>> table["ood_flag"].tolist()
    [False, False, True]
    """
    s = np.asarray(scores, dtype=float)
    if s.shape != (len(table),):
        raise InputError(f"There must be one OOD score per table row: the table has "
                         f"{len(table)} rows but the scores have shape {s.shape}.")
    if not np.all(np.isfinite(s)):
        raise InputError(f"The OOD scores hold {int(np.sum(~np.isfinite(s)))} NaN or "
                         "infinite values.")
    threshold = float(threshold)
    if not np.isfinite(threshold):
        raise InputError(f"The OOD threshold must be a finite number; got {threshold}.")
    table["ood_score"] = s
    table["ood_score"].description = ("out-of-distribution score of the features "
                                      "(larger = less like the training set)")
    table["ood_flag"] = s > threshold
    table["ood_flag"].description = (f"True if ood_score > {threshold:.6g}, the threshold "
                                     "exceeded by a chosen fraction of in-distribution objects")
    table.meta["ood_threshold"] = threshold
    return table
