# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The Gini-M20 diagram of a morphology table, with the Lotz et al. (2008) classes."""

import numpy as np

from ..exceptions import InputError
from ..utils import save_figure
from .columns import FLAG_FAILED

__all__ = ["plot_morphology", "lotz_class"]

__doctest_requires__ = {("plot_morphology",): ["matplotlib"]}

#: Lotz et al. (2008) in the Gini-M20 plane: mergers above G = -0.14 M20 + 0.33;
#: below it, E/S0/Sa above G = 0.14 M20 + 0.80 and Sb/Ir under it.
MERGER_LINE = (-0.14, 0.33)
HUBBLE_LINE = (0.14, 0.80)


def lotz_class(gini, m20):
    """
    The Lotz et al. (2008) class of each (Gini, M20): merger, E/S0/Sa or Sb/Ir.

    Parameters
    ----------
    gini, m20 : array-like
        Gini and M20 (the ``gini`` and ``m20`` columns of
        `measure_morphology`).

    Returns
    -------
    classes : `~numpy.ndarray` of str
        ``'merger'`` above the merger line, else ``'E/S0/Sa'`` or
        ``'Sb/Ir'``; ``''`` where either value is NaN.

    Examples
    --------
    >>> from astrofmtools.morphology import lotz_class
    >>> lotz_class([0.60, 0.45, 0.62, float("nan")], [-2.2, -1.8, -1.0, -2.0]).tolist()
    ['E/S0/Sa', 'Sb/Ir', 'merger', '']
    """
    gini = np.asarray(gini, dtype=float)
    m20 = np.asarray(m20, dtype=float)
    merger = gini > MERGER_LINE[0] * m20 + MERGER_LINE[1]
    early = gini > HUBBLE_LINE[0] * m20 + HUBBLE_LINE[1]
    out = np.where(merger, "merger", np.where(early, "E/S0/Sa", "Sb/Ir")).astype("<U7")
    out[~(np.isfinite(gini) & np.isfinite(m20))] = ""
    return out


def plot_morphology(table, ax=None, color=None, path=None, overwrite=False, title=None):
    """
    Draw the Gini-M20 diagram of a morphology table, with the Lotz et al. (2008) lines.

    M20 runs from right to left (more negative, more concentrated, to the
    right, as in Lotz et al. 2004), so early types sit top right. The
    merger line ``G = -0.14 M20 + 0.33`` and, below it, the line
    ``G = 0.14 M20 + 0.80`` between E/S0/Sa and Sb/Ir are drawn dashed.
    Cutouts flagged 0 or 1 by statmorph are filled points, those flagged
    2 (bad) open grey ones; failed ones (NaN) are left out.

    Parameters
    ----------
    table : `~astropy.table.Table`
        With ``gini``, ``m20`` and ``flag`` columns (`measure_morphology`).
    ax : `~matplotlib.axes.Axes`, optional
        Draw into these axes (default: a new figure, not registered with
        pyplot).
    color : str, optional
        A numeric column to colour the points by (``sersic_n``,
        ``asymmetry``, a redshift...), with a colour bar.
    path : str or `~pathlib.Path`, optional
        Save the figure to this PNG file (atomically).
    overwrite : bool, optional
        Replace an existing ``path``.
    title : str, optional
        The axes' title (default: the number of sources drawn).

    Returns
    -------
    ax : `~matplotlib.axes.Axes`
        The axes drawn into.

    Raises
    ------
    astrofmtools.InputError
        For a table without ``gini`` or ``m20`` columns, or a ``color``
        that is not a column.

    Examples
    --------
    >>> from astropy.table import QTable
    >>> from astrofmtools.morphology import plot_morphology
    >>> t = QTable({"gini": [0.45, 0.60, 0.62], "m20": [-1.8, -2.3, -1.1],
    ...             "flag": [0, 0, 2]})
    >>> ax = plot_morphology(t, color="gini", path="gini_m20.png")
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('$M_{20}$', 'Gini')
    >>> ax.figure.axes[1].get_ylabel()  # the colour bar
    'gini'
    """
    missing = [c for c in ("gini", "m20") if c not in getattr(table, "colnames", ())]
    if missing:
        raise InputError(f"plot_morphology needs a table with columns 'gini' and 'm20' (from "
                         f"measure_morphology); it lacks {', '.join(map(repr, missing))}.")
    if ax is None:
        from matplotlib.figure import Figure
        ax = Figure(figsize=(5.6, 4.8), layout="constrained").add_subplot()
    gini = np.asarray(table["gini"], dtype=float)
    m20 = np.asarray(table["m20"], dtype=float)
    flag = (np.asarray(table["flag"], dtype=int) if "flag" in table.colnames
            else np.zeros(len(gini), int))
    ok = np.isfinite(gini) & np.isfinite(m20) & (flag < FLAG_FAILED)
    good, bad = ok & (flag <= 1), ok & (flag > 1)
    if color is None:
        ax.scatter(m20[good], gini[good], s=18, color="C0", zorder=3,
                   label=f"flag 0-1 ({np.count_nonzero(good)})")
    else:
        if color not in table.colnames:
            raise InputError(f"color={color!r} is not a column of the table.")
        values = np.asarray(getattr(table[color], "value", table[color]), dtype=float)
        points = ax.scatter(m20[good], gini[good], s=18, c=values[good], cmap="viridis",
                            zorder=3, label=f"flag 0-1 ({np.count_nonzero(good)})")
        ax.figure.colorbar(points, ax=ax, label=color)
    if bad.any():
        ax.scatter(m20[bad], gini[bad], s=18, facecolors="none", edgecolors="0.5", zorder=3,
                   label=f"flag 2, bad ({np.count_nonzero(bad)})")
    lo, hi = -3.0, 0.0
    if ok.any():
        lo, hi = min(lo, np.floor(m20[ok].min() * 2) / 2), max(hi, np.ceil(m20[ok].max()))
    cross = (HUBBLE_LINE[1] - MERGER_LINE[1]) / (MERGER_LINE[0] - HUBBLE_LINE[0])
    x = np.array([lo, hi])
    ax.plot(x, MERGER_LINE[0] * x + MERGER_LINE[1], "k--", lw=1)
    x = np.array([lo, cross])
    ax.plot(x, HUBBLE_LINE[0] * x + HUBBLE_LINE[1], "k:", lw=1)
    ax.set_xlim(hi, lo)
    ylo, yhi = 0.3, 0.75
    if ok.any():
        ylo, yhi = min(ylo, gini[ok].min() - 0.02), max(yhi, gini[ok].max() + 0.02)
    ax.set_ylim(ylo, yhi)
    for text, xy in (("mergers", (-0.6, 0.48)), ("E/S0/Sa", (-2.6, 0.565)),
                     ("Sb/Ir", (-2.6, 0.38))):
        ax.text(*xy, text, fontsize=9, color="0.3", ha="center", va="center",
                transform=ax.transData)
    ax.set_xlabel("$M_{20}$")
    ax.set_ylabel("Gini")
    ax.set_title(title if title is not None else
                 f"Gini-$M_{{20}}$ of {np.count_nonzero(ok)} sources (Lotz et al. 2008 lines)",
                 fontsize=10)
    ax.legend(loc="best", fontsize=8)
    if path is not None:
        save_figure(ax.figure, path, overwrite=overwrite)
    return ax
