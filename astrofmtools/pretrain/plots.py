# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The picture of a pretraining run: the loss and the k-NN monitor against epoch."""

import numpy as np

__all__ = ["plot_history"]


def plot_history(history, path=None, title=None, overwrite=True):
    """
    Draw a pretraining history: the loss, and the k-NN error of the monitor set.

    Parameters
    ----------
    history : `~astropy.table.Table`
        `Pretrainer.history_` (``epoch``, ``loss``, ``knn_error``).
    path : str or `~pathlib.Path`, optional
        A PNG to write.
    title : str, optional
    overwrite : bool, optional

    Returns
    -------
    fig : `~matplotlib.figure.Figure`

    Examples
    --------
    >>> from astropy.table import Table
    >>> from astrofmtools.pretrain import plot_history
    >>> history = Table({"epoch": [0, 1, 2], "loss": [float("nan"), -0.5, -0.8],
    ...                  "knn_error": [0.3, float("nan"), 0.2]})
    >>> fig = plot_history(history, "history.png")
    >>> len(fig.axes)
    2
    """
    from matplotlib.figure import Figure
    from ..utils import save_figure
    epoch = np.asarray(history["epoch"])
    loss = np.asarray(history["loss"], dtype=float)
    knn = np.asarray(history["knn_error"], dtype=float)
    fig = Figure(figsize=(6.4, 3.2), layout="constrained")
    ax = fig.add_subplot(1, 2, 1)
    good = np.isfinite(loss)
    ax.plot(epoch[good], loss[good], color="C0")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax = fig.add_subplot(1, 2, 2)
    good = np.isfinite(knn)
    if good.any():
        ax.plot(epoch[good], 100 * knn[good], "o-", color="C1")
    else:
        ax.text(0.5, 0.5, "no monitor set", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_xlabel("epoch")
    ax.set_ylabel("k-NN error on the monitor set (%)")
    if title:
        fig.suptitle(title)
    if path is not None:
        save_figure(fig, path, overwrite=overwrite)
    return fig
