# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
A study: every cell of a grid of backbones, preprocessing variants, strategies and heads,
label fractions and seeds, trained and scored once (`run_study`), with a cost estimate
before it starts (`estimate_cost`).

Each cell's result is a JSON file under ``output_dir/cells/`` named by its key
(`cell_key`: settings, data and package version), so the study folder is a cache: an
interrupted study resumes, and a widened grid runs only its new cells.
"""

import hashlib
import json
import logging
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from astropy.table import QTable

from ..exceptions import InputError
from ..utils import atomic_output, provenance
from .study_config import METRICS, StudyConfig, cell_key, study_cells
from .study_cost import estimate_cost

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
    The study's cutouts, labels, train and test rows, and the data's fingerprint.

    The test rows are those whose ``split_column`` is ``'test'`` when the table
    has that column, else a stratified ``test_fraction`` of each class drawn
    once with seed 0 (the same for every cell).

    Returns
    -------
    stack, labels, train, test, fingerprint
        The `~astrofmtools.cutouts.CutoutStack`, the labels (array), the train and
        test row indices, and the sha256 of pixels, labels and split.

    Examples
    --------
    >>> from astrofmtools.classify import StudyConfig, study_data
    >>> from astrofmtools.datasets import make_radio_cutouts
    >>> config = StudyConfig({"data": make_radio_cutouts(n_per_class=10, size=32),
    ...                       "labels": "class", "test_fraction": 0.2})
    >>> stack, labels, train, test, fingerprint = study_data(config)
    >>> len(train), len(test), sorted(set(labels[test].tolist()))
    (16, 4, ['compact', 'extended'])
    """
    from ..cutouts import CutoutStack
    stack = config.data if not isinstance(config.data, Path) else None
    if stack is None:
        if not config.data.is_file():
            raise InputError(f"'data': cutout stack {str(config.data)!r} not found.")
        stack = CutoutStack.read(config.data)
    if config.labels not in stack.table.colnames:
        raise InputError(f"'labels': the stack has no column {config.labels!r}; its columns: "
                         f"{', '.join(stack.table.colnames)}.")
    labels = np.asarray(stack.table[config.labels]).astype(str)
    if config.split_column in stack.table.colnames:
        is_test = np.char.lower(np.asarray(stack.table[config.split_column]).astype(str)) \
            == "test"
        test, train = np.flatnonzero(is_test), np.flatnonzero(~is_test)
        if not len(test) or not len(train):
            raise InputError(f"'split_column' {config.split_column!r} must mark some rows "
                             "'test' and some not.")
    else:
        from sklearn.model_selection import StratifiedShuffleSplit
        try:
            splitter = StratifiedShuffleSplit(n_splits=1, test_size=config.test_fraction,
                                              random_state=0)
            train, test = next(splitter.split(np.zeros(len(labels)), labels))
        except ValueError as err:
            raise InputError(f"'test_fraction' {config.test_fraction}: {err}") from None
    digest = hashlib.sha256(np.ascontiguousarray(stack.data).tobytes())
    digest.update("\n".join(labels).encode())
    digest.update(np.asarray(test, dtype=np.int64).tobytes())
    return stack, labels, np.sort(train), np.sort(test), digest.hexdigest()


def _run_cell(task, shared):
    """Train and score one cell; write its result file. Run by `map_tasks` (picklable)."""
    from sklearn.metrics import accuracy_score, f1_score
    cell, key, cells_dir = task
    stack, labels, train, test = shared
    from .train import label_fraction_indices
    from .classifier import Classifier
    clf = Classifier(
        backbone=cell["model"], weights=cell["weights"], preprocess=cell["preprocess"] or None,
        strategy=cell["strategy"], head=cell["head"], label_fraction=cell["label_fraction"],
        seed=cell["seed"], **{**cell["classifier"], **cell["options"]})
    start = time.perf_counter()
    clf.fit(stack[train], labels[train])
    predicted = np.asarray(clf.predict(stack[test])["label"]).astype(str)
    seconds = time.perf_counter() - start
    truth = labels[test]
    result = {
        "key": key, **{k: v for k, v in cell.items()},
        "n_labels": int(len(label_fraction_indices(labels[train], cell["label_fraction"],
                                                   seed=cell["seed"]))),
        "n_test": int(len(test)),
        "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(truth, predicted)),
        "seconds": float(seconds), "device": str(clf._device()),
        "n_trainable": int(clf.n_trainable_),
        "n_parameters": int(clf.n_parameters_),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    with atomic_output(Path(cells_dir) / f"{key}.json", overwrite=True) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=1, sort_keys=True, default=str))
    return cell["name"]


def run_study(config, output_dir, scheduler=None, workers=None, max_hours=None, data=None,
              report=True, maps=True):
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
        expensive first by `~astrofmtools.classify.estimate_cost` (timed on
        this machine), are skipped until the rest fit.
    data : tuple, optional
        What `study_data` returned for this config, when the caller has
        already read it (the data are then not read and hashed again).
    report : bool, optional
        Draw the figures (``fractions.png``: score against label fraction;
        ``methods.png``: score per adaptation; ``cost.png``: cost against
        score with the Pareto front) and write ``report.md`` and
        ``report.html`` (`~astrofmtools.classify.write_study_report`).
    maps : bool, optional
        With ``report``: a UMAP map of each backbone's frozen features,
        ``map_<backbone>.png`` (`~astrofmtools.classify.study_maps`), drawn
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
    >>> from astrofmtools.classify import run_study
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
    ran = map_tasks(_run_cell, [(c, k, str(cells_dir)) for c, k in todo], scheduler,
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
    from . import study_figures
    from .study_report import write_study_report
    random = [b["label"] for b in config.backbones if b["weights"] == "random"]
    note = f" (random weights: {', '.join(random)})" if random else ""
    name = "/".join(config.data.parts[-2:]) if isinstance(config.data, Path) else "study"
    figures = []
    for file, function, caption in _FIGURES:
        getattr(study_figures, function)(results, config.metric, path=folder / file,
                                         title=name + note, overwrite=True)
        figures.append((folder / file, caption))
    if maps:
        todo = [b for b in config.backbones
                if not (folder / f"map_{b['label']}.png").exists()]
        if todo:
            study_figures.study_maps(config, data, folder, backbones=todo)
        figures += [(folder / f"map_{b['label']}.png", f"UMAP of the frozen {b['label']} "
                     "features of every cutout, by class (drawn once: delete the file to "
                     "redraw)") for b in config.backbones]
    write_study_report(config, results, folder, figures)


_COLUMNS = ("name", "backbone", "preprocess_name", "strategy", "head", "method",
            "label_fraction", "seed", "n_labels", "n_test") + METRICS + (
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
    results = QTable(rows=[[r[c] for c in _COLUMNS] for r in rows], names=_COLUMNS,
                     meta=meta) if rows else QTable(names=_COLUMNS, meta=meta)
    group = ("backbone", "preprocess_name", "strategy", "head", "method", "label_fraction")
    settings = list(dict.fromkeys(tuple(r[g] for g in group) for r in rows))
    out = []
    for setting in settings:
        mine = [r for r in rows if tuple(r[g] for g in group) == setting]
        row = list(setting)
        for m in METRICS:
            values = np.array([r[m] for r in mine], dtype=float)
            row += [values.mean(), values.std(ddof=1) if len(values) > 1 else 0.0]
        gpu = sum(r["seconds"] for r in mine if not r["device"].startswith("cpu")) / 3600
        row += [float(np.mean([r["seconds"] for r in mine])), gpu,
                int(mine[0]["n_trainable"]), len(mine)]
        out.append(row)
    names = group + tuple(f"{m}_{s}" for m in METRICS for s in ("mean", "std")) + (
        "seconds", "gpu_hours", "n_trainable", "n_seeds")
    summary = QTable(rows=out, names=names, meta=dict(meta)) if out else \
        QTable(names=names, meta=dict(meta))
    return results, summary
