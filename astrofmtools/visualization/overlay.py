# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""An image with its sources drawn on it, on sky axes when a WCS is known."""

import numpy as np

from ..utils import atomic_output

__all__ = ["plot_sources"]


def plot_sources(image, table, path=None, label=None, overwrite=False, ax=None,
                 max_labels=200):
    """
    Draw a table's sources over an image (asinh stretch, sky axes with a WCS).

    Sources are drawn as ellipses when the table has ``semimajor``,
    ``semiminor`` and ``orientation`` columns, and as circles otherwise.

    Parameters
    ----------
    image : `~astrofmtools.io.SkyImage` or any input of `~astrofmtools.io.load_image`
        The image.
    table : `~astropy.table.Table`
        Sources with ``x`` and ``y`` (0-based pixels).
    path : str, optional
        Save the figure to this PNG file (atomically).
    label : str, optional
        A column whose values are written next to each source (e.g. ``id``
        or a class label).
    overwrite : bool, optional
        Replace an existing ``path``.
    ax : `~matplotlib.axes.Axes`, optional
        Draw into these axes instead of a new figure.
    max_labels : int, optional
        Write labels only when there are at most this many sources.

    Returns
    -------
    fig : `~matplotlib.figure.Figure`
        The figure.

    Examples
    --------
    >>> from astropy.table import QTable
    >>> from astrofmtools.datasets import example_image_path
    >>> from astrofmtools.visualization import plot_sources
    >>> table = QTable({"x": [149.0], "y": [160.0], "id": [1]})
    >>> fig = plot_sources(example_image_path(), table, path="overlay.png", label="id")
    """
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.patches import Ellipse
    from astropy.stats import sigma_clipped_stats
    from astropy.visualization import AsinhStretch, ImageNormalize

    from ..io import load_image

    image = load_image(image)
    data = np.asarray(image.data, dtype=float)
    if ax is None:
        fig = Figure(figsize=(7, 7 * data.shape[0] / data.shape[1] + 0.4))
        if image.wcs is not None:
            ax = fig.add_subplot(projection=image.wcs)
        else:
            ax = fig.add_subplot()
    else:
        fig = ax.figure
    # from 2 sigma below the median to the brightest pixel, asinh: noise
    # stays grey and bright sources keep their structure
    _, median, std = sigma_clipped_stats(data, sigma=3.0, maxiters=5)
    vmax = np.nanmax(data)
    vmin = median - 2 * std
    norm = ImageNormalize(vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1,
                          stretch=AsinhStretch(min(0.1, max(1e-3, 10 * std / (vmax - vmin))))
                          if vmax > vmin else AsinhStretch())
    ax.imshow(data, origin="lower", cmap="gray_r", norm=norm, interpolation="nearest")
    if image.wcs is not None:
        ax.set_xlabel("Right ascension" if "RA" in image.wcs.wcs.ctype[0] else
                      image.wcs.wcs.ctype[0])
        ax.set_ylabel("Declination" if "DEC" in image.wcs.wcs.ctype[1] else
                      image.wcs.wcs.ctype[1])
    else:
        ax.set_xlabel("x (0-based pixel)")
        ax.set_ylabel("y (0-based pixel)")
    has_shape = all(c in table.colnames for c in ("semimajor", "semiminor", "orientation"))
    colors = matplotlib.colormaps["tab10"]
    labels = np.asarray(table[label]) if label is not None else None
    # one colour per class for class labels; one colour for ids or many classes
    classes = {v: i for i, v in enumerate(dict.fromkeys(labels.tolist()))} \
        if labels is not None and label != "id" else {}
    for i, row in enumerate(table):
        x, y = float(_value(row["x"])), float(_value(row["y"]))
        color = colors(classes[labels[i]]) if 0 < len(classes) <= 10 else "tab:red"
        if has_shape:
            # 2.5 x the 1-sigma axes encloses most of an island
            width = 2 * 2.5 * float(_value(row["semimajor"]))
            height = 2 * 2.5 * float(_value(row["semiminor"]))
            angle = float(_value(row["orientation"]))
        else:
            width = height = 12.0
            angle = 0.0
        ax.add_patch(Ellipse((x, y), max(width, 4), max(height, 4), angle=angle,
                             fill=False, edgecolor=color, lw=1.0))
        if labels is not None and len(table) <= max_labels:
            ax.text(x + max(width, 4) / 2 + 1, y, str(labels[i]), color=color,
                    fontsize=7, va="center")
    ax.set_xlim(-0.5, data.shape[1] - 0.5)
    ax.set_ylim(-0.5, data.shape[0] - 0.5)
    ax.set_title(f"{len(table)} sources", fontsize=9)
    if path is not None:
        with atomic_output(path, overwrite=overwrite) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    return fig


def _value(v):
    return getattr(v, "value", v)
