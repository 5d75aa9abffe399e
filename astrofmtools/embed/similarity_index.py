# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Exact cosine-similarity search over feature vectors: `SimilarityIndex` and its
backends (numpy, faiss).
"""

import numpy as np

from ..exceptions import InputError

__all__ = ["SimilarityIndex", "has_faiss", "BACKENDS"]

#: Search backends of `SimilarityIndex`; both are exact and give the same neighbours.
#: numpy is the default: in ``benchmarks/similar.py`` it was as fast as faiss-cpu 1.15 or
#: faster for one query, and 3-6 times faster for 100 queries at once (2 CPUs).
BACKENDS = {
    "numpy": "batched float32 matrix products (BLAS) with a running argpartition top-k",
    "faiss": "faiss.IndexFlatIP (exact inner product) over a normalised copy of the vectors "
             "(pip install faiss-cpu; or a faiss build of your own, e.g. for GPUs)",
}

# the numpy search holds at most this many similarities at once (float32: 128 MB)
_MAX_SCORES = 1 << 25


def has_faiss():
    """
    Whether `faiss <https://github.com/facebookresearch/faiss>`_ can be imported.

    Returns
    -------
    available : bool

    Examples
    --------
    >>> from astrofmtools.embed import has_faiss
    >>> has_faiss() in (True, False)
    True
    """
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _backend(backend):
    if backend not in BACKENDS:
        raise InputError(f"Unknown backend {backend!r}; use one of "
                         f"{', '.join(map(repr, BACKENDS))}.")
    if backend == "faiss" and not has_faiss():
        raise InputError("backend='faiss' needs the faiss package (pip install faiss-cpu); "
                         "backend='numpy' gives the same results without it.")
    return backend


class SimilarityIndex:
    """
    Exact cosine-similarity search over feature vectors.

    The vectors' lengths are computed once; a search is then one float32
    matrix product per chunk of ``chunk_size`` vectors (many queries at
    once: a batch costs less per query than one), with a running top-k
    kept by `numpy.argpartition`, so memory stays bounded for millions of
    vectors (no normalised copy is made). With ``backend='faiss'`` a
    ``faiss.IndexFlatIP`` over a normalised copy of the vectors does the
    same exact search. Results are sorted by decreasing similarity, ties
    by increasing row.

    Parameters
    ----------
    features : array-like
        (N, D) feature vectors (float32 is used as is, without a copy).
        All-zero vectors have similarity 0 to everything.
    backend : str, optional
        See `BACKENDS`: ``'numpy'`` or ``'faiss'``.
    chunk_size : int, optional
        Vectors per matrix product (numpy backend).

    Attributes
    ----------
    features : `~numpy.ndarray`
        The (N, D) float32 vectors (not normalised).
    backend : str
        ``'numpy'`` or ``'faiss'``.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.embed import SimilarityIndex
    >>> vectors = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    >>> index = SimilarityIndex(vectors)
    >>> similarity, rows = index.search([[3.0, 0.1]], k=2)
    >>> rows, similarity.round(3)
    (array([[0, 2]]), array([[0.999, 0.73 ]], dtype=float32))
    >>> index.search([[1.0, 0.0]], k=1, exclude=[0])[1]     # leave row 0 out
    array([[2]])
    """

    def __init__(self, features, backend="numpy", chunk_size=65536):
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[0] == 0 or features.shape[1] == 0:
            raise InputError(f"features must be (N, D) with N, D >= 1, not shape "
                             f"{features.shape}.")
        self.features = np.ascontiguousarray(features)
        self.backend = _backend(backend)
        try:
            self.chunk_size = int(chunk_size)
        except (TypeError, ValueError):
            raise InputError(f"chunk_size must be a positive integer, not "
                             f"{chunk_size!r}.") from None
        if self.chunk_size < 1:
            raise InputError(f"chunk_size must be a positive integer, not {chunk_size!r}.")
        norms = np.empty(len(features), dtype=np.float32)
        for start in range(0, len(features), self.chunk_size):
            block = self.features[start:start + self.chunk_size]
            norms[start:start + len(block)] = np.sqrt(np.einsum("ij,ij->i", block, block))
        bad = ~np.isfinite(norms)
        if bad.any():
            rows = np.flatnonzero(bad)
            raise InputError(f"{len(rows)} feature vector(s) hold NaN or infinite values "
                             f"(rows {', '.join(map(str, rows[:10]))}"
                             f"{' ...' if len(rows) > 10 else ''}).")
        self.inverse_norms = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        self._faiss = None

    def __len__(self):
        return len(self.features)

    def __repr__(self):
        n, d = self.features.shape
        return f"<SimilarityIndex: {n} vectors of dimension {d}, backend={self.backend!r}>"

    def normalize(self, vectors):
        """
        Vectors scaled to unit length (zero vectors stay zero), as float32.

        Parameters
        ----------
        vectors : array-like
            (M, D) or (D,).

        Returns
        -------
        unit : `~numpy.ndarray`
            (M, D) float32.
        """
        q = np.asarray(vectors, dtype=np.float32)
        if q.ndim == 1:
            q = q[None]
        if q.ndim != 2 or q.shape[1] != self.features.shape[1]:
            raise InputError(f"Query vectors must be (M, {self.features.shape[1]}), not shape "
                             f"{np.shape(vectors)}.")
        norm = np.linalg.norm(q, axis=1, keepdims=True)
        if not np.all(np.isfinite(norm)):
            raise InputError("Query vectors hold NaN or infinite values.")
        return np.divide(q, norm, out=np.zeros_like(q), where=norm > 0)

    def similarity(self, queries, rows):
        """
        Cosine similarity of each query to given rows.

        Parameters
        ----------
        queries : array-like
            (M, D) vectors.
        rows : array-like of int
            (M,) or (M, K) rows of `features`.

        Returns
        -------
        similarity : `~numpy.ndarray`
            float32, the shape of ``rows``.
        """
        q = self.normalize(queries)
        rows = np.asarray(rows, dtype=np.int64)
        r = rows.reshape(len(q), -1)
        out = np.einsum("md,mkd->mk", q, self.features[r]) * self.inverse_norms[r]
        return np.clip(out, -1, 1).reshape(rows.shape).astype(np.float32)

    def search(self, queries, k=8, exclude=None):
        """
        The ``k`` rows most similar (cosine) to each query.

        Parameters
        ----------
        queries : array-like
            (M, D) query vectors, or one (D,) vector.
        k : int, optional
            Neighbours per query (at most the number of rows left).
        exclude : array-like of int, optional
            (M,) one row per query to leave out (the query's own row;
            -1 for none).

        Returns
        -------
        similarity : `~numpy.ndarray`
            (M, k) float32 in [-1, 1], decreasing along each row (ties by
        increasing row).
        rows : `~numpy.ndarray`
            (M, k) int64 rows of `features`.
        """
        q = self.normalize(queries)
        k = _check_k(k)
        n_exclude = 0
        if exclude is not None:
            exclude = np.asarray(exclude, dtype=np.int64).reshape(-1)
            if exclude.shape != (len(q),):
                raise InputError(f"exclude needs one row per query ({len(q)}), not "
                                 f"{exclude.shape[0]}.")
            n_exclude = int(np.any(exclude >= 0))
        k = min(k, len(self) - n_exclude)
        if k < 1:
            return np.empty((len(q), 0), np.float32), np.empty((len(q), 0), np.int64)
        kk = min(k + n_exclude, len(self))
        if self.backend == "faiss":
            sims, rows = self._search_faiss(q, kk)
        else:
            sims, rows = self._search_numpy(q, kk)
        if n_exclude:
            keep = rows != exclude[:, None]
            # drop the excluded row where it was found, else the last (k-th + 1) result
            keep[keep.all(axis=1), -1] = False
            sims = sims[keep].reshape(len(q), kk - 1)
            rows = rows[keep].reshape(len(q), kk - 1)
        # a cosine is at most 1 in magnitude; float32 rounding can step past it
        return np.clip(sims[:, :k], -1, 1), rows[:, :k]

    def _search_numpy(self, q, k):
        n, m = len(self), len(q)
        chunk = min(self.chunk_size, n)
        batch = max(1, min(m, _MAX_SCORES // chunk))
        out_s = np.empty((m, k), np.float32)
        out_r = np.empty((m, k), np.int64)
        for q0 in range(0, m, batch):
            qq = q[q0:q0 + batch]
            best_s = np.full((len(qq), 0), -np.inf, np.float32)
            best_r = np.empty((len(qq), 0), np.int64)
            for c0 in range(0, n, chunk):
                block = self.features[c0:c0 + chunk]
                scores = qq @ block.T
                scores *= self.inverse_norms[c0:c0 + chunk]
                if scores.shape[1] > k:
                    part = np.argpartition(scores, -k, axis=1)[:, -k:]
                    scores = np.take_along_axis(scores, part, axis=1)
                else:
                    part = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
                best_s = np.concatenate([best_s, scores], axis=1)
                best_r = np.concatenate([best_r, part + c0], axis=1)
                if best_s.shape[1] > k:
                    part = np.argpartition(best_s, -k, axis=1)[:, -k:]
                    best_s = np.take_along_axis(best_s, part, axis=1)
                    best_r = np.take_along_axis(best_r, part, axis=1)
            out_s[q0:q0 + batch], out_r[q0:q0 + batch] = _sort(best_s, best_r)
        return out_s, out_r

    def _search_faiss(self, q, k):
        import faiss
        if self._faiss is None:
            index = faiss.IndexFlatIP(self.features.shape[1])
            for c0 in range(0, len(self), self.chunk_size):
                block = self.features[c0:c0 + self.chunk_size]
                index.add(np.ascontiguousarray(
                    block * self.inverse_norms[c0:c0 + self.chunk_size, None]))
            self._faiss = index
        sims, rows = self._faiss.search(np.ascontiguousarray(q), k)
        return _sort(sims.astype(np.float32), rows.astype(np.int64))


def _sort(sims, rows):
    """Sort each row by decreasing similarity, ties by increasing row."""
    order = np.lexsort((rows, -sims), axis=-1)
    return np.take_along_axis(sims, order, axis=1), np.take_along_axis(rows, order, axis=1)


def _check_k(k):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a positive integer, not {k!r}.")
    return int(k)
