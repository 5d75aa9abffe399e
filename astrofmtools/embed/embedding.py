# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Feature vectors with their source table: the input of maps and similarity search."""

from pathlib import Path

import numpy as np
from astropy.table import QTable

from ..exceptions import InputError

__all__ = ["Embedding", "embed", "as_embedding"]


class Embedding:
    """
    Feature vectors of sources, with their table (and cutouts).

    Made by `embed` (from cutouts and a backbone) or `Embedding.read` (from a
    file written by `write` or by ``astrofm embed``).

    Parameters
    ----------
    features : array-like
        (N, D) feature vectors, stored as float32.
    table : `~astropy.table.Table`, optional
        N rows, one per vector (source id, sky position, labels...). Without
        an ``id`` column, one is added: 1 to N.
    meta : dict, optional
        How the features were made (backbone, weights, pooling...).
    cutouts : `~astrofmtools.cutouts.CutoutStack`, optional
        The N cutouts, for picture grids; not saved by `write`.

    Attributes
    ----------
    features : `~numpy.ndarray`
        (N, D) float32.
    table : `~astropy.table.QTable`
        One row per vector; always has an ``id`` column.
    meta : dict
    cutouts : `~astrofmtools.cutouts.CutoutStack` or None

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.embed import Embedding
    >>> emb = Embedding(np.eye(3, 4))
    >>> emb
    <Embedding: 3 vectors of dimension 4>
    >>> emb.table["id"].tolist(), emb.index_of(2)
    ([1, 2, 3], 1)
    >>> len(emb[[0, 2]])
    2
    """

    def __init__(self, features, table=None, meta=None, cutouts=None):
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[0] == 0:
            raise InputError(f"features must be (N, D) with N >= 1, not shape {features.shape}.")
        n = len(features)
        table = QTable() if table is None else QTable(table, copy=False)
        if table.colnames and len(table) != n:
            raise InputError(f"The table has {len(table)} rows for {n} feature vectors.")
        if "id" not in table.colnames:
            table.add_column(np.arange(1, n + 1), name="id", index=0)
            table["id"].info.description = "Row number (1-based)"
        if cutouts is not None and len(cutouts) != n:
            raise InputError(f"{len(cutouts)} cutouts for {n} feature vectors.")
        self.features = features
        self.table = table
        self.meta = dict(meta or {})
        self.cutouts = cutouts

    def __len__(self):
        return len(self.features)

    def __repr__(self):
        n, d = self.features.shape
        model = f" from {self.meta['backbone']}" if self.meta.get("backbone") else ""
        return f"<Embedding: {n} vector{'' if n == 1 else 's'} of dimension {d}{model}>"

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            key = [int(key)]
        table = self.table[key]
        table.meta = self.table.meta
        cutouts = self.cutouts[key] if self.cutouts is not None else None
        return Embedding(self.features[key], table, self.meta, cutouts)

    def index_of(self, source_id, column="id"):
        """
        Row index of the source whose ``column`` equals ``source_id``.

        Parameters
        ----------
        source_id : int or str
        column : str, optional

        Returns
        -------
        index : int
        """
        if column not in self.table.colnames:
            raise InputError(f"The embedding's table has no column {column!r}; it has "
                             f"{', '.join(self.table.colnames)}.")
        rows = np.flatnonzero(np.asarray(self.table[column]) == source_id)
        if len(rows) == 0:
            raise InputError(f"No source has {column} = {source_id!r}.")
        if len(rows) > 1:
            raise InputError(f"{len(rows)} sources have {column} = {source_id!r}; "
                             f"it is not a unique id.")
        return int(rows[0])

    def normalized(self):
        """
        The features scaled to unit length (for cosine similarity).

        Returns
        -------
        features : `~numpy.ndarray`
            (N, D) float32; all-zero rows stay zero.
        """
        norm = np.linalg.norm(self.features, axis=1, keepdims=True)
        return self.features / np.where(norm > 0, norm, 1)

    def write(self, path, overwrite=False):
        """
        Save the features and table to one FITS file (`write_features`).

        Examples
        --------
        >>> import numpy as np
        >>> from astrofmtools.embed import Embedding
        >>> Embedding(np.ones((2, 3)), meta={"backbone": "resnet18"}).write("emb.fits")
        >>> Embedding.read("emb.fits")
        <Embedding: 2 vectors of dimension 3 from resnet18>
        """
        from ..backbones.features import write_features
        write_features(path, self.features, self.table, meta=self.meta, overwrite=overwrite)

    @classmethod
    def read(cls, path):
        """Read a file written by `write` or `~astrofmtools.backbones.write_features`."""
        from ..backbones.features import read_features
        features, table, meta = read_features(path)
        return cls(features, table, meta)


def as_embedding(obj):
    """
    An `Embedding` from an embedding, a features file, or ``(features, table)``.

    Parameters
    ----------
    obj : `Embedding`, str, `~pathlib.Path`, array or tuple
        A features FITS file (``astrofm embed`` output), an (N, D) array,
        or a ``(features, table)`` pair.

    Returns
    -------
    embedding : `Embedding`

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.embed import as_embedding
    >>> as_embedding(np.zeros((4, 2)))
    <Embedding: 4 vectors of dimension 2>
    """
    if isinstance(obj, Embedding):
        return obj
    if isinstance(obj, (str, Path)):
        return Embedding.read(obj)
    if isinstance(obj, tuple) and len(obj) == 2:
        return Embedding(*obj)
    return Embedding(obj)


def embed(cutouts, model="efficientnet_lite0", weights=None, pooling=None, batch_size=64,
          device=None, preprocess=None, tta=False, cache=True, in_chans=None, scheduler=None,
          workers=None):
    """
    Feature vectors of cutouts from a foundation model, with their table.

    Parameters
    ----------
    cutouts : `~astrofmtools.cutouts.CutoutStack`, str or array
        The cutouts, a cutouts FITS file (``astrofm cutouts`` output), or an
        (N, H, W) / (N, C, H, W) array.
    model : str or `~astrofmtools.backbones.Backbone`, optional
        A registry name or a loaded backbone.
    weights : str, optional
        Weights file (or ``'random'``) when ``model`` is a name.
    pooling, batch_size, device, preprocess, tta, cache, scheduler, workers
        As in `~astrofmtools.backbones.extract_features`.
    in_chans : int, optional
        Input channels of the backbone (default: what the preprocessing
        gives: 3 for single-band cutouts).

    Returns
    -------
    embedding : `Embedding`
        With the cutouts' table (or ids 1..N) and the cutouts themselves.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.embed import embed
    >>> cutouts = np.random.default_rng(0).normal(size=(4, 32, 32))
    >>> emb = embed(cutouts, model="resnet18", weights="random", device="cpu")
    >>> emb
    <Embedding: 4 vectors of dimension 512 from resnet18>
    >>> emb.table["id"].tolist()
    [1, 2, 3, 4]
    """
    from ..backbones import Backbone, extract_features, load_backbone
    from ..cutouts import CutoutStack
    if isinstance(cutouts, (str, Path)):
        cutouts = CutoutStack.read(cutouts)
    elif not isinstance(cutouts, CutoutStack):
        from ..cutouts import parse_cutouts
        data, table = parse_cutouts(cutouts, index_table=False)
        cutouts = CutoutStack(data, table)
    if isinstance(model, Backbone):
        backbone = model
    else:
        kwargs = {} if in_chans is None else {"in_chans": in_chans}
        backbone = load_backbone(model, weights=weights, device=device, **kwargs)
    from ..backbones import Preprocess
    if preprocess is None:
        preprocess = backbone.default_preprocess()
    elif isinstance(preprocess, dict):
        preprocess = Preprocess.from_dict(preprocess)
    if isinstance(preprocess, Preprocess):
        # recorded resolved (zoom='auto' -> a number), so that a new image (similar()) is
        # preprocessed exactly as these cutouts were
        preprocess = preprocess.replace(zoom=preprocess.resolve_zoom(cutouts))
    features = extract_features(backbone, cutouts, pooling=pooling, batch_size=batch_size,
                                device=device, preprocess=preprocess, cache=cache, tta=tta,
                                scheduler=scheduler, workers=workers)
    meta = {"backbone": backbone.spec.name, "weights": backbone.weights,
            "pooling": pooling or backbone.pooling, "tta": bool(tta),
            "in_chans": backbone.in_chans, "preprocess": preprocess.to_dict()}
    table = cutouts.table.copy()
    return Embedding(features, table, meta, cutouts)
