# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Similarity search: the sources whose features are nearest (cosine) to a query."""

import logging
import weakref
from pathlib import Path

import numpy as np
import astropy.units as u
from astropy.coordinates import SkyCoord

from ..exceptions import InputError
from ..schema import parse_positions
from ..utils import check_output_path, provenance, save_figure
from .embedding import as_embedding

__all__ = ["similar", "SimilarityIndex", "plot_similar", "has_faiss", "BACKENDS"]

log = logging.getLogger("astrofmtools")

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

# similar() reuses one index per Embedding (the norms, a faiss index) between calls
_INDEXES = weakref.WeakKeyDictionary()

__doctest_requires__ = {"similar": ["matplotlib"]}


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


def _index_for(emb, backend):
    """The cached `SimilarityIndex` of an embedding (rebuilt if its features were replaced)."""
    backend = _backend(backend)
    cached = _INDEXES.get(emb)
    if cached is not None and cached.features is emb.features and cached.backend == backend:
        return cached
    index = SimilarityIndex(emb.features, backend=backend)
    _INDEXES[emb] = index
    return index


# ------------------------------------------------------------------ queries

def _sky_coords(table):
    """ICRS positions of the rows that have one, their row numbers, and where they came from."""
    pos = parse_positions(table, kind="sky", name="the embedding's table", required=False)
    if pos is None:
        raise InputError("A query by sky position needs sky positions in the embedding's "
                         "table: a SkyCoord column (e.g. 'sky_centroid') or longitude/latitude "
                         "columns (ra/dec, RAJ2000/DEJ2000, GLON/GLAT, l/b...); its columns are "
                         f"{', '.join(table.colnames)}.")
    return pos.sky[pos.valid], np.flatnonzero(pos.valid), pos.describe()


def _is_image_query(query):
    if isinstance(query, (str, bytes, SkyCoord)) or np.isscalar(query):
        return False
    if hasattr(query, "data") and hasattr(query, "table") and not isinstance(query, np.ndarray):
        return True  # a CutoutStack
    if hasattr(query, "detach") and hasattr(query, "shape"):
        return len(query.shape) >= 2  # a torch tensor
    try:
        arr = np.asarray(query)
    except (TypeError, ValueError):
        return False
    return arr.ndim >= 2 and arr.dtype.kind in "fiub"


def _queries(emb, query, column, max_separation):
    """(kind, rows, records): rows (M,) of source queries and their records; for an image
    query ("image", None, the images)."""
    if _is_image_query(query):
        return "image", None, query
    if isinstance(query, SkyCoord):
        coords, valid_rows, name = _sky_coords(emb.table)
        positions = query.reshape(-1) if not query.isscalar else query.reshape((1,))
        if len(coords) == 0:
            raise InputError("The embedding has no rows to search (with a sky position).")
        rows, sep, _ = positions.match_to_catalog_sky(coords)
        rows = valid_rows[np.atleast_1d(rows).astype(np.int64)]
        sep = np.atleast_1d(sep.to(u.arcsec))
        if max_separation is not None:
            limit = u.Quantity(max_separation, u.arcsec)
            far = sep > limit
            if far.any():
                j = int(np.flatnonzero(far)[0])
                raise InputError(f"No source within {limit:g} of the query position "
                                 f"{positions[j].to_string('decimal', precision=6)}: the "
                                 f"nearest (from {name}) is {sep[j]:.3g} away.")
        records = []
        for j, (row, s) in enumerate(zip(rows, sep)):
            pos = positions[j].icrs
            records.append({"kind": "position", "ra_deg": float(pos.ra.deg),
                            "dec_deg": float(pos.dec.deg), "row": int(row),
                            "id": _plain(emb.table[column][row]) if column in emb.table.colnames
                            else None, "separation_arcsec": float(s.value)})
        return "position", rows, records
    ids = [query] if isinstance(query, (str, bytes)) or np.isscalar(query) else list(query)
    if not ids:
        raise InputError("query is empty: give a source id, a list of ids, a SkyCoord or an "
                         "image.")
    for value in ids:
        if isinstance(value, (bool, np.bool_)) or not (
                isinstance(value, (str, bytes)) or np.isscalar(value)):
            raise InputError(f"A source id must be an integer or a string, not {value!r}.")
    rows = np.array([emb.index_of(value, column=column) for value in ids], dtype=np.int64)
    records = [{"kind": "id", column: _plain(value), "row": int(row)}
               for value, row in zip(ids, rows)]
    return "id", rows, records


def _plain(value):
    """A JSON/YAML-friendly Python scalar."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode()
    return value


def _backbone_from_meta(meta, device):
    """Load the backbone recorded in an embedding's meta."""
    from ..backbones import load_backbone
    name = meta.get("backbone")
    if not name:
        raise InputError("A query by image needs the backbone that made the features, and the "
                         "embedding's meta names none: pass model=<the same Backbone>.")
    recorded = str(meta.get("weights") or "")
    if recorded == "random":
        raise InputError(f"The features were made with randomly initialised {name!r} weights, "
                         "which cannot be rebuilt: pass model=<the same Backbone object>.")
    weights = None
    for candidate in (recorded, recorded.rsplit(": ", 1)[-1]):
        if candidate and Path(candidate).is_file():
            weights = candidate
            break
    backbone = load_backbone(name, weights=weights, device=device,
                             in_chans=int(meta.get("in_chans", 3)))
    if recorded and backbone.weights != recorded and weights is None:
        log.info("features made with weights %s; query images embedded with %s", recorded,
                 backbone.weights)
    return backbone


def _embed_images(emb, images, model, device, batch_size):
    """Feature vectors of query images, made as the embedding's were."""
    from ..backbones import Backbone, extract_features
    from ..backbones.preprocess import Preprocess, _as_cutouts
    data, _ = _as_cutouts(images)
    meta = emb.meta
    if isinstance(model, Backbone):
        backbone = model
        if meta.get("backbone") and meta["backbone"] != backbone.spec.name:
            raise InputError(f"model is {backbone.spec.name!r} but the features were made with "
                             f"{meta['backbone']!r}.")
    elif model is None:
        backbone = _backbone_from_meta(meta, device)
    else:
        raise InputError(f"model must be a loaded Backbone (or None: the one named in the "
                         f"embedding's meta), not {type(model).__name__}.")
    preprocess = meta.get("preprocess")
    preprocess = (Preprocess.from_dict(preprocess) if isinstance(preprocess, dict)
                  else backbone.default_preprocess())
    if preprocess.zoom == "auto":
        raise InputError("The embedding's preprocessing has zoom='auto' without the value it "
                         "resolved to; re-embed with astrofmtools.embed.embed, which records "
                         "it.")
    features = extract_features(backbone, data, pooling=meta.get("pooling"),
                                batch_size=batch_size, device=device, preprocess=preprocess,
                                cache=False, tta=bool(meta.get("tta", False)))
    if features.shape[1] != emb.features.shape[1]:
        raise InputError(f"The query images give {features.shape[1]} features, the embedding "
                         f"has {emb.features.shape[1]}: not the same backbone or pooling.")
    return data, features


# ------------------------------------------------------------------ the search

def similar(emb, query, k=8, output=None, *, cutouts=None, model=None, column="id",
            include_query=True, max_separation=None, backend="numpy", batch_size=64,
            device=None, overwrite=False):
    """
    The sources most similar to a query, by cosine similarity of their features.

    The search is exact (`SimilarityIndex`) and stays fast for a million
    sources; many queries at once cost little more than one.

    Parameters
    ----------
    emb : `Embedding`, str or array
        The features and their table (`embed`, or a features file written
        by ``astrofm embed`` or `Embedding.write`).
    query : int, str, list, `~astropy.coordinates.SkyCoord` or image
        What to look for:

        - a source id, or a list of them: matched against the table's
          ``column`` (default ``id``: the source ids of the catalogue, not
          row numbers; ``emb.table["id"]`` lists them);
        - a sky position (scalar or array `~astropy.coordinates.SkyCoord`):
          the nearest source of the table (its ``sky_centroid`` or other
          SkyCoord column, else ``ra``/``dec`` in degrees), whose distance
          is recorded in ``meta['queries']``;
        - an image: a 2-D array, an (M, H, W) / (M, C, H, W) array or a
          `~astrofmtools.cutouts.CutoutStack` of raw pixels, like the
          embedding's cutouts. It is embedded as they were: the backbone,
          weights, pooling, preprocessing and test-time augmentation
          recorded in ``emb.meta`` (by `embed` or ``astrofm embed``), or
          ``model``. Features made with random weights need ``model``.
    k : int, optional
        Neighbours per query, not counting the query itself.
    output : str or `~pathlib.Path`, optional
        Save a PNG grid (`plot_similar`): one row per query, the query then
        its neighbours with their ids and similarities.
    cutouts : `~astrofmtools.cutouts.CutoutStack`, str or array, optional
        The pictures for ``output``, row-aligned with ``emb`` (default:
        ``emb.cutouts``).
    model : `~astrofmtools.backbones.Backbone`, optional
        The backbone for image queries (default: the one in ``emb.meta``).
    column : str, optional
        The id column for queries by id.
    include_query : bool, optional
        Give a source query its own row as rank 0 (similarity 1).
    max_separation : `~astropy.units.Quantity` or float, optional
        For sky-position queries: refuse a nearest source further than this
        (arcsec for a number).
    backend : str, optional
        ``'numpy'`` or ``'faiss'`` (see `BACKENDS`).
    batch_size, device
        For embedding image queries.
    overwrite : bool, optional
        Replace an existing ``output``.

    Returns
    -------
    table : `~astropy.table.QTable`
        One row per (query, neighbour), by query then rank: ``query``
        (0-based number of the query), ``rank`` (0 for the query source
        itself, then 1 for the most similar other source...), ``row``
        (0-based row of the source in ``emb`` and its cutouts), every column
        of the embedding's table (``id``, sky position...), and
        ``similarity`` (cosine similarity of the features, -1 to 1). An input
        column with one of these names is kept as ``<name>_input``.
        ``meta['queries']`` records each query (its kind, id, row, position
        and separation); ``meta`` also holds ``k``, the backend, the
        embedding's backbone, weights and pooling, and the versions.

    Raises
    ------
    astrofmtools.InputError
        An unknown or repeated id, a table without sky positions, a query
        image that cannot be embedded like the features, or ``output``
        without cutouts.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.embed import Embedding, similar
    >>> rng = np.random.default_rng(0)
    >>> features = rng.normal(size=(100, 16))
    >>> features[57] = features[41]                       # a duplicate of id 42
    >>> emb = Embedding(features)                         # ids 1 to 100
    >>> hits = similar(emb, query=42, k=3)
    >>> hits["rank"].tolist(), hits["id"].tolist()
    ([0, 1, 2, 3], [42, 58, 68, 60])
    >>> hits["similarity"][:2].round(6).tolist()
    [1.0, 1.0]
    >>> hits.meta["queries"]
    [{'kind': 'id', 'id': 42, 'row': 41}]
    """
    emb = as_embedding(emb)
    k = _check_k(k)
    if output is not None:
        check_output_path(output, overwrite)
    index = _index_for(emb, backend)
    kind, rows, records = _queries(emb, query, column, max_separation)
    images = None
    if kind == "image":
        images, vectors = _embed_images(emb, records, model, device, batch_size)
        records = [{"kind": "image", "index": j} for j in range(len(vectors))]
        sims, found = index.search(vectors, k)
        ranks = np.broadcast_to(np.arange(1, sims.shape[1] + 1), sims.shape)
    else:
        vectors = emb.features[rows]
        sims, found = index.search(vectors, k, exclude=rows)
        ranks = np.broadcast_to(np.arange(1, sims.shape[1] + 1), sims.shape)
        if include_query:
            own = index.similarity(vectors, rows)
            sims = np.concatenate([own[:, None], sims], axis=1)
            found = np.concatenate([rows[:, None], found], axis=1)
            ranks = np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
    table = _result_table(emb, found, ranks, sims, records, k, index.backend)
    if output is not None:
        plot_similar(table, cutouts if cutouts is not None else emb.cutouts, output,
                     query_images=images, overwrite=overwrite, n_rows=len(emb))
    return table


def _result_table(emb, found, ranks, sims, records, k, backend):
    m, n = found.shape
    flat = found.reshape(-1)
    out = emb.table[flat]
    meta = dict(emb.table.meta)
    for name in ("query", "rank", "row", "similarity"):
        if name in out.colnames:
            out.rename_column(name, f"{name}_input")
    out.add_column(np.repeat(np.arange(m), n), name="query", index=0)
    out["query"].info.description = "0-based number of the query (meta['queries'])"
    out.add_column(np.asarray(ranks).reshape(-1), name="rank", index=1)
    out["rank"].info.description = ("0: the query source itself; 1, 2...: the most similar "
                                    "other sources")
    out.add_column(flat, name="row", index=2)
    out["row"].info.description = "0-based row of the source in the embedding and its cutouts"
    out["similarity"] = sims.reshape(-1).astype(np.float32)
    out["similarity"].info.description = "cosine similarity of the features to the query's"
    meta.update(provenance(stage="similar", k=k, backend=backend, queries=records,
                           **{key: emb.meta[key] for key in ("backbone", "weights", "pooling")
                              if key in emb.meta}))
    out.meta = meta
    return out


# ------------------------------------------------------------------ pictures

def _display(image):
    """A cutout in [0, 1] for display: asinh from the clipped background to the peak."""
    from astropy.stats import sigma_clipped_stats
    from ..stretch import Stretch
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3:
        image = image[0]
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return np.zeros_like(image)
    _, median, _ = sigma_clipped_stats(finite, sigma=3.0, maxiters=5)
    return Stretch("asinh", interval="minmax", vmin=float(median))(image)


def plot_similar(table, cutouts, path=None, query_images=None, overwrite=False, n_rows=None,
                 panel_size=1.5):
    """
    Draw the result of `similar`: a row per query, the query then its neighbours.

    Each panel shows the cutout (first band; an asinh stretch from the
    sigma-clipped background to the brightest pixel, so faint emission
    shows and noise stays dark) with the source id and its similarity;
    the query's panel is framed.

    Parameters
    ----------
    table : `~astropy.table.QTable`
        The output of `similar` (columns ``query``, ``rank``, ``row``,
        ``similarity``).
    cutouts : `~astrofmtools.cutouts.CutoutStack`, str or array
        The embedding's cutouts (indexed by the ``row`` column).
    path : str or `~pathlib.Path`, optional
        Save the figure to this PNG file.
    query_images : array, optional
        The query images of an image query (M, H, W) or (M, C, H, W).
    overwrite : bool, optional
        Replace an existing ``path``.
    n_rows : int, optional
        The number of rows of the embedding, to check ``cutouts`` against.
    panel_size : float, optional
        Side of each panel in inches (100 pixels per inch).

    Returns
    -------
    fig : `~matplotlib.figure.Figure`
    """
    from matplotlib.figure import Figure
    from ..backbones.preprocess import _as_cutouts
    if cutouts is None:
        raise InputError("A picture of the neighbours needs their cutouts: the embedding has "
                         "none (it was read from a features file); pass cutouts=<the "
                         "CutoutStack or cutouts file the features were made from>.")
    if isinstance(cutouts, (str, Path)):
        from ..cutouts import CutoutStack
        cutouts = CutoutStack.read(cutouts)
    data, _ = _as_cutouts(cutouts)
    if n_rows is not None and len(data) != n_rows:
        raise InputError(f"{len(data)} cutouts for an embedding of {n_rows} rows: they must be "
                         "the cutouts the features were made from, in the same order.")
    for name in ("query", "rank", "row", "similarity"):
        if name not in table.colnames:
            raise InputError(f"plot_similar needs the table returned by similar(); it has no "
                             f"{name!r} column.")
    queries = table.meta.get("queries", [])
    qnum = np.asarray(table["query"])
    n_q = int(qnum.max()) + 1 if len(qnum) else 0
    per_query = [np.flatnonzero((qnum == j) & (np.asarray(table["rank"]) > 0))
                 for j in range(n_q)]
    n_cols = 1 + max((len(p) for p in per_query), default=0)
    id_col = "id" if "id" in table.colnames else None
    fig = Figure(figsize=(panel_size * n_cols, (panel_size + 0.3) * max(n_q, 1)),
                 layout="constrained")
    axes = fig.subplots(max(n_q, 1), n_cols, squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_axis_off()
    for j in range(n_q):
        record = queries[j] if j < len(queries) else {}
        ax = axes[j, 0]
        if record.get("kind") == "image" and query_images is not None:
            image, label = query_images[record["index"]], "query image"
        else:
            row = record.get("row")
            if row is None:
                continue
            image = data[row]
            ident = record.get(id_col) if record.get(id_col) is not None else record.get("id")
            label = f"query: id {ident}" if ident is not None else f"query: row {row}"
            if record.get("kind") == "position":
                label += f"\n{record['separation_arcsec']:.3g}\u2033 from position"
        ax.set_axis_on()
        ax.imshow(_display(image), origin="lower", cmap="inferno", vmin=0, vmax=1,
                  interpolation="nearest")
        for spine in ax.spines.values():
            spine.set_edgecolor("tab:cyan")
            spine.set_linewidth(3)
        ax.set_title(label, fontsize=8)
        for c, i in enumerate(per_query[j], start=1):
            ax = axes[j, c]
            ax.set_axis_on()
            ax.imshow(_display(data[int(table["row"][i])]), origin="lower", cmap="inferno",
                      vmin=0, vmax=1, interpolation="nearest")
            name = f"id {table[id_col][i]}" if id_col else f"row {table['row'][i]}"
            ax.set_title(f"{name}\nsimilarity {float(table['similarity'][i]):.3f}", fontsize=8)
            for spine in ax.spines.values():
                spine.set_visible(False)
    save_figure(fig, path, overwrite=overwrite)
    return fig
