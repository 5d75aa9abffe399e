# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Pictures of a similarity search: a row per query, the query then its neighbours.
"""

from pathlib import Path

import numpy as np

from ..exceptions import InputError
from ..utils import is_random_weights, save_figure, weights_note

__all__ = ["plot_similar"]


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
    from ..cutouts import parse_cutouts
    if cutouts is None:
        raise InputError("A picture of the neighbours needs their cutouts: the embedding has "
                         "none (it was read from a features file); pass cutouts=<the "
                         "CutoutStack or cutouts file the features were made from>.")
    if isinstance(cutouts, (str, Path)):
        from ..cutouts import CutoutStack
        cutouts = CutoutStack.read(cutouts)
    data, _ = parse_cutouts(cutouts, index_table=False)
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
    if is_random_weights(table.meta.get("weights")):  # neighbours by untrained features
        fig.suptitle(weights_note(f"{table.meta.get('backbone') or 'backbone'} features",
                                  "random"), fontsize=9, color="tab:red")
    save_figure(fig, path, overwrite=overwrite)
    return fig
