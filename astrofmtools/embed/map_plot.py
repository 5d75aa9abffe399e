# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Pictures of a map: its sources coloured by a class (with a legend) or a number
(with a colour bar).
"""

import numpy as np

from ..exceptions import InputError
from ..utils import check_output_path, save_figure, weights_note
from .class_labels import _class_values

__all__ = ["plot_map"]

#: a colour column with at most this many distinct integer values is drawn as classes
MAX_INTEGER_CLASSES = 12

# sources without a label or value: darker than the grey of a background survey
_MISSING = (0.35, 0.35, 0.35, 0.7)

__doctest_requires__ = {("plot_map",): ["matplotlib"]}


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
    # a map of randomly initialised features says so, whatever the title given
    title = weights_note(title, table.meta.get("weights"), sep="\n")
    if title:
        ax.set_title(title, fontsize=10)
    save_figure(fig, path, overwrite)
    return fig


def _is_categorical(col, categorical=None):
    if categorical is not None:
        return bool(categorical)
    kind = np.asarray(col).dtype.kind
    if kind in "USOb":
        return True
    if kind in "iu" and getattr(col, "unit", None) is None:
        return len(np.unique(np.asarray(col))) <= MAX_INTEGER_CLASSES
    return False


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
