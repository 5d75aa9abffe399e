# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Figure of completeness against true SNR and reliability against detected SNR.
"""

import numpy as np
from astropy.table import Table

from ..exceptions import InputError
from ..utils import save_figure

__all__ = ["plot_completeness_reliability"]

# matplotlib is an optional dependency
__doctest_requires__ = {"plot_completeness_reliability": ["matplotlib"]}


def plot_completeness_reliability(results, path=None, overwrite=False, title=None, axes=None):
    """
    Draw completeness against true SNR and reliability against detected SNR.

    Parameters
    ----------
    results : `~astropy.table.Table` or dict
        A table from `completeness_reliability`, or a dict ``{name: table}``
        to compare several finders (one line each).
    path : str or `~pathlib.Path`, optional
        Save the figure to this PNG file (atomically).
    overwrite : bool, optional
        Replace an existing ``path``.
    title : str, optional
        Figure title.
    axes : pair of `~matplotlib.axes.Axes`, optional
        Draw the completeness and the reliability into these axes instead
        of a new figure (e.g. ``plt.subplots(1, 2)[1]``).

    Returns
    -------
    fig : `~matplotlib.figure.Figure`
        The figure (not registered with pyplot): two panels sharing a
        logarithmic SNR axis, ticked at the bin edges; each point is drawn
        at the geometric centre of its bin, with its Wilson interval (an
        open last bin is drawn as wide as the one before).

    Examples
    --------
    >>> from astropy.table import QTable
    >>> from astrofmtools.evaluate import (completeness_reliability,
    ...                                    plot_completeness_reliability)
    >>> truth = QTable({"x": [10.0, 30, 50, 70], "y": [10.0, 10, 10, 10],
    ...                 "snr": [4.0, 6, 30, 60]})
    >>> found = QTable({"x": [30.4, 50.0, 70.2, 90.0], "y": [10.0, 10, 10, 10],
    ...                 "snr": [6.5, 29.0, 55.0, 5.5]})
    >>> t = completeness_reliability(found, truth, snr_bins=[3, 10, 100], max_sep=1.5)
    >>> fig = plot_completeness_reliability({"my finder": t}, path="cr.png")
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['Completeness', 'Reliability']
    """
    from matplotlib.figure import Figure

    if isinstance(results, Table):
        results = {None: results}
    if not isinstance(results, dict) or not results:
        raise InputError("results must be a completeness_reliability table or a dict "
                         "{name: table}.")
    needed = ("snr_min", "snr_max", "completeness", "reliability")
    for name, table in results.items():
        if not isinstance(table, Table) or any(c not in table.colnames for c in needed):
            raise InputError(f"results[{name!r}] is not a completeness_reliability table "
                             f"(needs columns {needed}).")
    from matplotlib.ticker import NullLocator

    if axes is None:
        fig = Figure(figsize=(9.0, 3.8), layout="constrained")
        axes = fig.subplots(1, 2, sharex=True)
    else:
        axes = list(np.ravel(axes))
        if len(axes) != 2:
            raise InputError(f"axes must be two matplotlib Axes, got {len(axes)}.")
        fig = axes[0].figure
    ticks = set()
    for name, table in results.items():
        lo = np.asarray(table["snr_min"], dtype=float)
        hi = np.asarray(table["snr_max"], dtype=float)
        ticks.update(lo.tolist() + hi[np.isfinite(hi)].tolist())
        # an open last bin is drawn one previous-bin ratio wide
        width = np.where(np.isfinite(hi), hi / lo, np.nan)
        fallback = width[np.isfinite(width)][-1] if np.isfinite(width).any() else 2.0
        hi = np.where(np.isfinite(hi), hi, lo * fallback)
        x = np.sqrt(lo * hi)
        for ax, what, ylabel in ((axes[0], "completeness", "Completeness"),
                                 (axes[1], "reliability", "Reliability")):
            y = np.asarray(table[what], dtype=float)
            ok = np.isfinite(y)
            yerr = None
            if f"{what}_lo" in table.colnames:
                ylo = np.asarray(table[f"{what}_lo"], dtype=float)
                yhi = np.asarray(table[f"{what}_hi"], dtype=float)
                yerr = np.clip(np.vstack([y - ylo, yhi - y])[:, ok], 0, None)
            ax.errorbar(x[ok], y[ok], xerr=np.vstack([x - lo, hi - x])[:, ok], yerr=yerr,
                        marker="o", ms=4, capsize=2, lw=1.2, label=name)
            ax.set_ylabel(ylabel)
    axes[0].set_xlabel("True SNR")
    axes[1].set_xlabel("Detected SNR")
    ticks = sorted(ticks)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_ylim(-0.02, 1.05)
        ax.axhline(1.0, color="0.7", lw=0.8, zorder=0)
        ax.grid(alpha=0.3)
    if any(name is not None for name in results):
        axes[0].legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path, overwrite=overwrite)
    return fig
