# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Maps of feature space: PCA then UMAP to two dimensions.

A map shows how a survey's sources organise in a foundation model's
feature space: sources the model sees as alike land close together. The
features are scaled (each vector to unit length by default), reduced by
PCA (to 10 components by default, or to a fraction of the variance), then
laid out in 2-D by UMAP (umap-learn). A `FeatureMap` fitted on one set (a
whole survey) places another set (a labelled sample) in the same map.
`umap_map` makes the map of an embedding as a table (and a picture,
`plot_map`).
"""

from pathlib import Path

import numpy as np
from astropy.table import MaskedColumn, QTable

from ..exceptions import InputError
from ..utils import check_output_path, provenance
from .class_labels import balanced_indices
from .embedding import as_embedding
from .feature_map import FeatureMap
from .map_plot import plot_map

__all__ = ["umap_map"]

# umap-learn and scikit-learn are optional dependencies (the ``ml`` extra)
__doctest_requires__ = {("umap_map",): ["umap", "sklearn"]}


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
