# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
A study: every cell of a grid of backbones, preprocessing variants, strategies and heads,
label fractions and seeds, trained and scored once (`run_study`), with a cost estimate
before it starts (`estimate_cost`).

Each cell's result is a JSON file under ``output_dir/cells/`` named by its key
(`cell_key`: settings, data and package version), so the study folder is a cache: an
interrupted study resumes, and a widened grid runs only its new cells.
"""

import json
import logging
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from astropy.table import QTable

from ..utils import atomic_output, provenance
from .config import StudyConfig, cell_key, study_cells
from .cost import estimate_cost

__all__ = ["run_study", "StudyResult", "study_data"]

__doctest_requires__ = {("run_study",): ["torch"]}

log = logging.getLogger("astrofmtools")


class StudyResult:
    """
    What `run_study` did: the tables, and which cells ran, were cached or were skipped.

    Attributes
    ----------
    results, summary : `~astropy.table.QTable`
        As written to ``results.ecsv`` and ``summary.ecsv``.
    ran, cached, skipped : list of str
        Names of the cells computed now, found in the cache, or left out by the
        budget (``max_hours``).
    estimate : dict
        Estimated seconds per cell name (`estimate_cost`).

    Examples
    --------
    See `run_study`, which returns one.
    """

    def __init__(self, results, summary, ran, cached, skipped, estimate):
        self.results, self.summary = results, summary
        self.ran, self.cached, self.skipped, self.estimate = ran, cached, skipped, estimate

    def __repr__(self):
        return (f"<StudyResult: {len(self.results)} cells ({len(self.ran)} run, "
                f"{len(self.cached)} cached, {len(self.skipped)} skipped)>")


def study_data(config):
    """
    What every cell of a study shares: the data, labels, train and test rows, fingerprint.

    For classification, the test rows are those whose ``split_column`` is
    ``'test'`` when the table has that column, else a stratified
    ``test_fraction`` of each class drawn once with seed 0 (the same for every
    cell); detection splits its images the same way
    (`~astrofmtools.study.StudyTask.read`).

    Returns
    -------
    data, labels, train, test, fingerprint
        Classification: the `~astrofmtools.cutouts.CutoutStack`, the labels
        (array), the train and test row indices, and the sha256 of pixels,
        labels and split.

    Examples
    --------
    >>> from astrofmtools.study import StudyConfig, study_data
    >>> from astrofmtools.datasets import make_radio_cutouts
    >>> config = StudyConfig({"data": make_radio_cutouts(n_per_class=10, size=32),
    ...                       "labels": "class", "test_fraction": 0.2})
    >>> stack, labels, train, test, fingerprint = study_data(config)
    >>> len(train), len(test), sorted(set(labels[test].tolist()))
    (16, 4, ['compact', 'extended'])
    """
    return config.task.read(config)


def _run_cell(task, shared):
    """Train and score one cell; write its result file. Run by `map_tasks` (picklable)."""
    cell, key, cells_dir, study_task = task
    data, labels, train, test = shared
    start = time.perf_counter()
    scores = study_task.run(cell, data, labels, train, test)
    seconds = time.perf_counter() - start
    result = {"key": key, **cell, **scores, "n_test": int(len(test)),
              "seconds": float(seconds),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    with atomic_output(Path(cells_dir) / f"{key}.json", overwrite=True) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=1, sort_keys=True, default=str))
    return cell["name"]


def run_study(config, output_dir, scheduler=None, workers=None, max_hours=None, data=None,
              report=True, maps=True, estimate=None):
    """
    Run every cell of a study not yet in ``output_dir``, then write its tables.

    Each cell fits a `~astrofmtools.classify.Classifier` on its seeded,
    per-class label fraction of the training rows and scores it on the test
    rows (`study_data`): macro-F1 and accuracy, seconds, trainable parameters.
    Its result is written atomically to ``output_dir/cells/<key>.json``; a cell
    whose file exists is not run again (the folder is a cache: rerun to resume,
    widen the grid to run only the new cells). Frozen cells of the same backbone
    and preprocessing share features through the feature cache.

    Parameters
    ----------
    config : `StudyConfig`, dict or path
        The study (`StudyConfig`).
    output_dir : str or `~pathlib.Path`
        The study folder (created if needed).
    scheduler : str or executor, optional
        Where cells run (`~astrofmtools.io.map_tasks`): None (serial),
        ``'threads'``, ``'dask'`` or a Dask scheduler.
    workers : int, optional
        Threads or local Dask workers.
    max_hours : float, optional
        Budget (default: the config's ``max_hours``): the cells to run, most
        expensive first by `~astrofmtools.study.estimate_cost` (timed on
        this machine), are skipped until the rest fit.
    data : tuple, optional
        What `study_data` returned for this config, when the caller has
        already read it (the data are then not read and hashed again).
    estimate : dict, optional
        Seconds per cell name (`~astrofmtools.study.estimate_cost`), when the
        caller has timed them already (default: estimated here, timed on this
        machine when there is a budget).
    report : bool, optional
        Draw the figures (``fractions.png``: score against label fraction;
        ``methods.png``: score per adaptation; ``cost.png``: cost against
        score with the Pareto front) and write ``report.md`` and
        ``report.html`` (`~astrofmtools.study.write_study_report`).
    maps : bool, optional
        With ``report``: a UMAP map of each backbone's frozen features,
        ``map_<backbone>.png`` (`~astrofmtools.study.study_maps`), drawn
        once per study folder.

    Returns
    -------
    result : `StudyResult`
        ``results`` has one row per cell of the grid with a result: the cell's
        settings (``name``, ``backbone``, ``preprocess_name``, ``strategy``,
        ``head``, ``method``, ``label_fraction``, ``seed``), ``n_labels``,
        ``n_test``, ``macro_f1``, ``accuracy``, ``seconds``, ``device`` (where
        it ran), ``n_trainable``, ``n_parameters`` and ``key``. ``summary`` has
        one row per setting (all but the seed): ``<metric>_mean`` and
        ``<metric>_std`` (ddof=1; 0 for one seed) of each score, mean
        ``seconds``, ``gpu_hours`` (the seeds' time on an accelerator, summed),
        ``n_trainable`` and ``n_seeds``.

    Examples
    --------
    >>> from astrofmtools.datasets import make_radio_cutouts
    >>> from astrofmtools.study import run_study
    >>> make_radio_cutouts(n_per_class=10, size=32).write("cutouts.fits")
    >>> study = {"data": "cutouts.fits", "labels": "class", "methods": ["frozen/knn"],
    ...          "preprocess": {"small": {"input_size": 32}}, "seeds": 2,
    ...          "classifier": {"tta": False}}
    >>> run_study(study, "study", maps=False)
    <StudyResult: 2 cells (2 run, 0 cached, 0 skipped)>
    >>> run_study(study, "study", maps=False)
    <StudyResult: 2 cells (0 run, 2 cached, 0 skipped)>
    >>> import os
    >>> sorted(os.listdir("study"))
    ['cells', 'cost.png', 'fractions.png', 'methods.png', 'report.html', 'report.md',
     'results.ecsv', 'summary.ecsv']
    """
    from ..io import map_tasks
    if not isinstance(config, StudyConfig):
        config = StudyConfig(config)
    max_hours = config.max_hours if max_hours is None else max_hours
    stack, labels, train, test, fingerprint = data or study_data(config)
    cells_dir = Path(output_dir) / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    cells = study_cells(config)
    keys = [cell_key(c, fingerprint) for c in cells]
    todo = [(c, k) for c, k in zip(cells, keys) if not (cells_dir / f"{k}.json").exists()]
    cached = [c["name"] for c, k in zip(cells, keys) if (cells_dir / f"{k}.json").exists()]
    if estimate is None:
        estimate = estimate_cost(config, n_train=len(train), n_test=len(test),
                                 calibrate=max_hours is not None)
    skipped = []
    if max_hours is not None:
        budget = float(max_hours) * 3600
        todo.sort(key=lambda ck: estimate[ck[0]["name"]])
        while todo and sum(estimate[c["name"]] for c, _ in todo) > budget:
            skipped.append(todo.pop()[0]["name"])
        for name in skipped:
            log.warning("over the %g h budget, skipped: %s (about %.0f s)", max_hours, name,
                        estimate[name])
    log.info("%d cells: %d cached, %d to run (about %.0f s), %d skipped", len(cells),
             len(cached), len(todo), sum(estimate[c["name"]] for c, _ in todo), len(skipped))
    ran = map_tasks(_run_cell, [(c, k, str(cells_dir), config.task) for c, k in todo],
                    scheduler,
                    workers=workers, common=(stack, labels, train, test), desc="cells")
    results, summary = _gather(config, cells, keys, cells_dir, fingerprint)
    for table, name in ((results, "results.ecsv"), (summary, "summary.ecsv")):
        with atomic_output(Path(output_dir) / name, overwrite=True) as tmp:
            table.write(tmp, format="ascii.ecsv")
    if report and len(results):
        _report(config, results, Path(output_dir), (stack, labels, train, test), maps)
    return StudyResult(results, summary, list(ran), cached, skipped, estimate)


#: The study's figures: file, drawing function (name in study_figures), caption.
_FIGURES = (("fractions.png", "plot_study_fractions",
             "Test score against the label fraction, per adaptation (mean and std over "
             "seeds)"),
            ("methods.png", "plot_study_methods",
             "Test score per adaptation and backbone, with all the labels"),
            ("cost.png", "plot_study_cost",
             "Seconds per cell against test score, with the Pareto front"))


def _report(config, results, folder, data, maps):
    """Draw the figures (and the maps not drawn yet) and write the report."""
    from . import figures as drawing
    from .report import write_study_report
    random = [b["label"] for b in config.backbones if b["weights"] == "random"]
    note = f" (random weights: {', '.join(random)})" if random else ""
    name = "/".join(config.data.parts[-2:]) if isinstance(config.data, Path) else "study"
    figures = []
    for file, function, caption in _FIGURES:
        getattr(drawing, function)(results, config.metric, path=folder / file,
                                   title=name + note, overwrite=True)
        figures.append((folder / file, caption))
    if maps and config.task.maps:
        todo = [b for b in config.backbones
                if not (folder / f"map_{b['label']}.png").exists()]
        if todo:
            drawing.study_maps(config, data, folder, backbones=todo)
        figures += [(folder / f"map_{b['label']}.png", f"UMAP of the frozen {b['label']} "
                     "features of every cutout, by class (drawn once: delete the file to "
                     "redraw)") for b in config.backbones]
    write_study_report(config, results, folder, figures)


def _columns(metrics):
    return ("name", "backbone", "preprocess_name", "strategy", "head", "method",
            "label_fraction", "seed", "n_labels", "n_test") + tuple(metrics) + (
            "seconds", "device", "n_trainable", "n_parameters", "key")


def _gather(config, cells, keys, cells_dir, fingerprint):
    rows = []
    for cell, key in zip(cells, keys):
        path = cells_dir / f"{key}.json"
        if path.exists():
            rows.append(json.loads(path.read_text()))
    meta = provenance(stage="study", metric=config.metric, data_fingerprint=fingerprint,
                      config=json.loads(json.dumps(config.to_dict(), default=str)))
    for r in rows:
        r.setdefault("device", "cpu")  # cells written before the column was recorded
    metrics = config.task.metrics
    columns = _columns(metrics)
    results = QTable(rows=[[r[c] for c in columns] for r in rows], names=columns,
                     meta=meta) if rows else QTable(names=columns, meta=meta)
    group = ("backbone", "preprocess_name", "strategy", "head", "method", "label_fraction")
    settings = list(dict.fromkeys(tuple(r[g] for g in group) for r in rows))
    out = []
    for setting in settings:
        mine = [r for r in rows if tuple(r[g] for g in group) == setting]
        row = list(setting)
        for m in metrics:
            values = np.array([r[m] for r in mine], dtype=float)
            row += [values.mean(), values.std(ddof=1) if len(values) > 1 else 0.0]
        gpu = sum(r["seconds"] for r in mine if not r["device"].startswith("cpu")) / 3600
        row += [float(np.mean([r["seconds"] for r in mine])), gpu,
                int(mine[0]["n_trainable"]), len(mine)]
        out.append(row)
    names = group + tuple(f"{m}_{s}" for m in metrics for s in ("mean", "std")) + (
        "seconds", "gpu_hours", "n_trainable", "n_seeds")
    summary = QTable(rows=out, names=names, meta=dict(meta)) if out else \
        QTable(names=names, meta=dict(meta))
    return results, summary
