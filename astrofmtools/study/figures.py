# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The figures of a study: the score against the label fraction (`plot_study_fractions`),
per adaptation (`plot_study_methods`), cost against score with the Pareto front
(`plot_study_cost`), and a UMAP map of the features of each backbone (`study_maps`).

Each takes the results table of `~astrofmtools.study.run_study` (one row per cell)
and returns a matplotlib figure, saved atomically when given a path.
"""

import numpy as np

from ..utils import save_figure
from .compare import best_settings

__all__ = ["plot_study_fractions", "plot_study_methods", "plot_study_cost",
           "pareto_front", "study_maps"]

_LINESTYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _levels(results, column):
    return list(dict.fromkeys(str(v) for v in results[column]))


def _colors(levels):
    from matplotlib import colormaps
    cmap = colormaps["tab10"]
    return {level: cmap(i % 10) for i, level in enumerate(levels)}


def _mean_std(results, metric, **match):
    rows = [r for r in results if all(str(r[k]) == v for k, v in match.items())]
    fractions = sorted({float(r["label_fraction"]) for r in rows})
    means, stds = [], []
    for f in fractions:
        values = np.array([float(r[metric]) for r in rows
                           if np.isclose(float(r["label_fraction"]), f)])
        means.append(values.mean())
        stds.append(values.std(ddof=1) if len(values) > 1 else 0.0)
    return np.array(fractions), np.array(means), np.array(stds)


def _ranking(results, metric, fraction):
    """The settings ranked at a label fraction (default: the largest), and that fraction."""
    fraction = float(np.max(results["label_fraction"])) if fraction is None else fraction
    return best_settings(results, metric, fraction), fraction


def _label(metric):
    from .tasks import _TASKS
    labels = {k: v for task in _TASKS.values() for k, v in task.metric_labels.items()}
    return labels.get(metric, metric)


def plot_study_fractions(results, metric="macro_f1", path=None, title=None, overwrite=False):
    """
    The score against the label fraction: a panel per adaptation, a line per backbone
    (colour) and preprocessing variant (line style), mean and std over seeds.

    Parameters
    ----------
    results : `~astropy.table.Table`
        One row per cell (``results.ecsv`` of `~astrofmtools.study.run_study`).
    metric : str, optional
        The score column.
    path : str or `~pathlib.Path`, optional
        Save the figure to this PNG file.
    title : str, optional
    overwrite : bool, optional
        Replace an existing ``path``.

    Returns
    -------
    fig : `~matplotlib.figure.Figure`

    Examples
    --------
    >>> from astropy.table import QTable
    >>> from astrofmtools.study import plot_study_fractions
    >>> results = QTable(rows=[("a", "full", m, f, s, 0.5 + 0.3 * f + 0.01 * s, 1.0, 10)
    ...                        for m in ("frozen/linear", "finetune/linear")
    ...                        for f in (0.1, 1.0) for s in range(3)],
    ...                  names=("backbone", "preprocess_name", "method", "label_fraction",
    ...                         "seed", "macro_f1", "seconds", "n_trainable"))
    >>> fig = plot_study_fractions(results, path="fractions.png")
    >>> len(fig.axes), fig.axes[0].get_title()
    (2, 'frozen/linear')
    """
    from matplotlib.figure import Figure
    methods, backbones = _levels(results, "method"), _levels(results, "backbone")
    variants, colors = _levels(results, "preprocess_name"), _colors(_levels(results, "backbone"))
    fig = Figure(figsize=(3.4 * len(methods) + 0.6, 3.6), layout="constrained")
    axes = fig.subplots(1, len(methods), sharey=True, squeeze=False)[0]
    for ax, method in zip(axes, methods):
        for backbone in backbones:
            for i, variant in enumerate(variants):
                x, y, e = _mean_std(results, metric, method=method, backbone=backbone,
                                    preprocess_name=variant)
                if len(x):
                    ax.errorbar(x, y, yerr=e, color=colors[backbone], capsize=2,
                                linestyle=_LINESTYLES[i % 4], marker="o", markersize=3,
                                label=f"{backbone} / {variant}")
        ax.set_xscale("log")
        ax.set_title(method)
        ax.set_xlabel("label fraction")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"test {_label(metric)}")
    axes[-1].legend(fontsize="small", loc="lower right")
    if title:
        fig.suptitle(title)
    save_figure(fig, path, overwrite=overwrite)
    return fig


def plot_study_methods(results, metric="macro_f1", fraction=None, path=None, title=None,
                       overwrite=False):
    """
    The score of each adaptation at one label fraction: a point per backbone (mean and
    std over seeds), a panel per preprocessing variant.

    Parameters
    ----------
    results : `~astropy.table.Table`
        One row per cell.
    metric : str, optional
    fraction : float, optional
        The label fraction (default: the largest).
    path, title, overwrite
        As in `plot_study_fractions`.

    Returns
    -------
    fig : `~matplotlib.figure.Figure`

    Examples
    --------
    >>> from astropy.table import QTable
    >>> from astrofmtools.study import plot_study_methods
    >>> results = QTable(rows=[(b, p, m, 1.0, s, 0.7 + 0.01 * s, 1.0, 10)
    ...                        for b in ("a", "b") for p in ("full", "crop")
    ...                        for m in ("frozen/linear", "finetune/linear") for s in range(2)],
    ...                  names=("backbone", "preprocess_name", "method", "label_fraction",
    ...                         "seed", "macro_f1", "seconds", "n_trainable"))
    >>> fig = plot_study_methods(results, path="methods.png")
    >>> [ax.get_title() for ax in fig.axes]
    ['full (label fraction 1)', 'crop (label fraction 1)']
    """
    from matplotlib.figure import Figure
    ranking, fraction = _ranking(results, metric, fraction)
    methods, backbones = _levels(results, "method"), _levels(results, "backbone")
    variants, colors = _levels(results, "preprocess_name"), _colors(backbones)
    fig = Figure(figsize=(max(2.4, 1.2 + 0.9 * len(methods) * max(1, len(backbones)) / 2)
                          * len(variants) + 0.6, 3.8), layout="constrained")
    axes = fig.subplots(1, len(variants), sharey=True, squeeze=False)[0]
    width = 0.8 / max(1, len(backbones))
    for ax, variant in zip(axes, variants):
        for j, backbone in enumerate(backbones):
            for i, method in enumerate(methods):
                rows = [r for r in ranking if (r["backbone"], r["preprocess_name"],
                                               r["method"]) == (backbone, variant, method)]
                if rows:  # points, not bars: the differences are small next to the scale
                    ax.errorbar(i + (j - (len(backbones) - 1) / 2) * width,
                                rows[0][f"{metric}_mean"], yerr=rows[0][f"{metric}_std"],
                                color=colors[backbone], capsize=3, marker="o", ls="",
                                label=backbone if i == 0 else None)
        ax.set_xticks(range(len(methods)), methods, rotation=20, ha="right",
                      fontsize="small")
        ax.set_title(f"{variant} (label fraction {fraction:g})")
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel(f"test {_label(metric)}")
    axes[0].legend(fontsize="small", loc="lower left")
    if title:
        fig.suptitle(title)
    save_figure(fig, path, overwrite=overwrite)
    return fig


def pareto_front(cost, score):
    """
    Indices of the points no other point beats on both cost (lower) and score (higher).

    Parameters
    ----------
    cost, score : array-like

    Returns
    -------
    front : `~numpy.ndarray`
        Indices, cheapest first.

    Examples
    --------
    >>> from astrofmtools.study import pareto_front
    >>> pareto_front([1, 2, 3, 4], [0.5, 0.4, 0.8, 0.7]).tolist()
    [0, 2]
    """
    cost, score = np.asarray(cost, float), np.asarray(score, float)
    front, best = [], -np.inf
    for i in np.lexsort((-score, cost)):
        if score[i] > best:
            front.append(i)
            best = score[i]
    return np.array(front, dtype=int)


def plot_study_cost(results, metric="macro_f1", fraction=None, path=None, title=None,
                    overwrite=False):
    """
    Cost (seconds per cell) against score for every setting at one label fraction,
    with the Pareto front: the settings nothing beats on both.

    Colour is the backbone, the marker the adaptation, filled for the first
    preprocessing variant and open for the others.

    Parameters
    ----------
    results : `~astropy.table.Table`
        One row per cell.
    metric : str, optional
    fraction : float, optional
        The label fraction (default: the largest).
    path, title, overwrite
        As in `plot_study_fractions`.

    Returns
    -------
    fig : `~matplotlib.figure.Figure`

    Examples
    --------
    >>> from astropy.table import QTable
    >>> from astrofmtools.study import plot_study_cost
    >>> results = QTable(rows=[("a", "full", m, 1.0, s, f, t, 10) for s in range(2)
    ...                        for m, f, t in (("frozen/linear", 0.7, 1.0),
    ...                                        ("finetune/linear", 0.8, 30.0))],
    ...                  names=("backbone", "preprocess_name", "method", "label_fraction",
    ...                         "seed", "macro_f1", "seconds", "n_trainable"))
    >>> fig = plot_study_cost(results, path="cost.png")
    >>> fig.axes[0].get_xlabel()
    'seconds per cell (mean over seeds)'
    """
    from matplotlib.figure import Figure
    ranking, fraction = _ranking(results, metric, fraction)
    methods, variants = _levels(results, "method"), _levels(results, "preprocess_name")
    colors = _colors(_levels(results, "backbone"))
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.subplots()
    cost = np.array(ranking["seconds"], float)
    score = np.array(ranking[f"{metric}_mean"], float)
    for r, c, s in zip(ranking, cost, score):
        filled = str(r["preprocess_name"]) == variants[0]
        color = colors[str(r["backbone"])]
        ax.errorbar(c, s, yerr=r[f"{metric}_std"], color=color, alpha=0.5, capsize=0)
        ax.scatter(c, s, s=36, marker=_MARKERS[methods.index(str(r["method"])) % 8],
                   facecolors=color if filled else "none", edgecolors=color, zorder=3)
    front = pareto_front(cost, score)
    ax.step(cost[front], score[front], where="post", color="k", lw=1, alpha=0.6,
            label="Pareto front")
    for i in front:
        ax.annotate(f"{ranking['backbone'][i]}/{ranking['preprocess_name'][i]}\n"
                    f"{ranking['method'][i]}", (cost[i], score[i]), fontsize=6,
                    xytext=(3, -10), textcoords="offset points")
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], color=c, marker="o", ls="", label=b) for b, c in colors.items()]
    handles += [Line2D([], [], color="grey", marker=_MARKERS[i % 8], ls="", label=m)
                for i, m in enumerate(methods)]
    handles += [Line2D([], [], color="grey", marker="o", ls="", label=variants[0]),
                Line2D([], [], color="grey", marker="o", ls="", markerfacecolor="none",
                       label=" / ".join(variants[1:]))] if len(variants) > 1 else []
    handles.append(Line2D([], [], color="k", alpha=0.6, label="Pareto front"))
    ax.legend(handles=handles, fontsize="x-small", loc="lower right")
    ax.set_xscale("log")
    ax.set_xlabel("seconds per cell (mean over seeds)")
    ax.set_ylabel(f"test {_label(metric)} (label fraction {fraction:g})")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    save_figure(fig, path, overwrite=overwrite)
    return fig


def study_maps(config, data, folder, backbones=None, overwrite=False, seed=0):
    """
    A UMAP map of each backbone's features of every cutout, a panel per preprocessing
    variant, coloured by class: ``folder/map_<backbone>.png``.

    The features are those of the frozen backbone (read from the feature cache
    when the study's frozen cells computed them).

    Parameters
    ----------
    config : `~astrofmtools.study.StudyConfig`
    data : tuple
        What `~astrofmtools.study.study_data` returns for ``config``.
    folder : str or `~pathlib.Path`
        Where the PNG files go.
    backbones : list of dict, optional
        Entries of ``config.backbones`` to map (default: all).
    overwrite : bool, optional
        Replace existing maps.
    seed : int, optional
        The maps' seed.

    Returns
    -------
    paths : list of `~pathlib.Path`

    Examples
    --------
    See `~astrofmtools.study.run_study` (``maps=True``).
    """
    from pathlib import Path
    from astropy.table import QTable
    from matplotlib.figure import Figure
    from ..backbones import load_backbone
    from ..embed import embed, plot_map, umap_map
    from ..utils import weights_note
    stack, labels = data[0], data[1]
    device = config.classifier.get("device")
    paths = []
    for entry in config.backbones if backbones is None else backbones:
        variants = config.preprocess
        fig = Figure(figsize=(4.4 * len(variants), 4.2), layout="constrained")
        axes = fig.subplots(1, len(variants), squeeze=False)[0]
        backbone = load_backbone(entry["name"], weights=entry["weights"], device=device)
        for ax, (variant, settings) in zip(axes, variants.items()):
            # the preprocessing of the study's classifiers: the backbone's, with the variant's
            embedding = embed(stack, model=backbone,
                              preprocess=backbone.default_preprocess(**settings))
            table = umap_map(embedding, seed=seed)
            table = QTable({"map_x": table["map_x"], "map_y": table["map_y"],
                            "class": labels})
            plot_map(table, color="class", ax=ax,
                     title=weights_note(f"{entry['label']} / {variant}", entry["weights"]))
        path = Path(folder) / f"map_{entry['label']}.png"
        save_figure(fig, path, overwrite=overwrite)
        paths.append(path)
    return paths
