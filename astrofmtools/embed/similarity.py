# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Similarity search: the sources whose features are nearest (cosine) to a query."""

import weakref

import numpy as np

from ..utils import check_output_path, provenance
from .embedding import as_embedding
from .similarity_index import SimilarityIndex, _backend, _check_k
from .similarity_plot import plot_similar
from .similarity_queries import _embed_images, _queries

__all__ = ["similar"]

# similar() reuses one index per Embedding (the norms, a faiss index) between calls
_INDEXES = weakref.WeakKeyDictionary()

__doctest_requires__ = {"similar": ["matplotlib"]}


def _index_for(emb, backend):
    """The cached `SimilarityIndex` of an embedding (rebuilt if its features were replaced)."""
    backend = _backend(backend)
    cached = _INDEXES.get(emb)
    if cached is not None and cached.features is emb.features and cached.backend == backend:
        return cached
    index = SimilarityIndex(emb.features, backend=backend)
    _INDEXES[emb] = index
    return index


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
