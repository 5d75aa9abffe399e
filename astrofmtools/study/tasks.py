# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
What a study trains and scores, one registry entry per task: ``classification`` (a
labelled cutout stack, `~astrofmtools.classify.Classifier`, macro-F1) and ``detection``
(FITS images with boxes, `~astrofmtools.detect.Detector`, mAP@50).

A task reads the data once (`StudyTask.read`), checks the grid's methods, runs one cell
(`StudyTask.run`) and writes the command that trains a setting (`StudyTask.command`);
add one with `register_study_task`.
"""

import hashlib
import json
from pathlib import Path

import numpy as np

from ..exceptions import InputError
from ..utils import Registry

__all__ = ["StudyTask", "register_study_task", "get_study_task", "list_study_tasks"]

_TASKS = Registry("study task")


class StudyTask:
    """
    A kind of study: its data, its cells and its scores.

    Subclasses set ``name``, ``metrics`` (the scores of each cell; the first
    is the default headline) and ``metric_labels`` (how figures name them),
    and implement `check`, `read`, `run` and `command`.

    Examples
    --------
    >>> from astrofmtools.study import get_study_task
    >>> task = get_study_task("detection")
    >>> task.metrics, task.metric_labels["map50"]
    (('map50', 'recall50'), 'mAP@50')
    """

    name = None
    metrics = ()
    metric_labels = {}
    #: The head of every cell when the task has one only (None: the methods choose).
    head = None
    #: Whether `~astrofmtools.study.study_maps` can map the data (cutouts with classes).
    maps = False

    def check(self, config, method):
        """Refuse a method (strategy, head, options) the task cannot run; loads nothing."""
        raise NotImplementedError

    def read(self, config):
        """``(data, labels, train, test, fingerprint)``: what every cell shares."""
        raise NotImplementedError

    def run(self, cell, data, labels, train, test):
        """Train and score one cell: a dict of the scores, ``n_labels``, ``n_trainable``,
        ``n_parameters`` and ``device``."""
        raise NotImplementedError

    def command(self, config, entry, method, preprocess):
        """The words of the ``astrofm`` command that trains one setting on all the data."""
        raise NotImplementedError


def register_study_task(task, overwrite=False):
    """
    Add a task (a `StudyTask` subclass instance) under its ``name``.

    Examples
    --------
    >>> from astrofmtools.study import StudyTask, register_study_task, list_study_tasks
    >>> class Regression(StudyTask):
    ...     name, metrics = "regression", ("rmse",)
    >>> _ = register_study_task(Regression())
    >>> list_study_tasks()
    ['classification', 'detection', 'regression']
    >>> from astrofmtools.study.tasks import _TASKS
    >>> _TASKS.remove("regression")
    """
    return _TASKS.add(task.name, task, overwrite=overwrite)


def get_study_task(name):
    """
    The registered `StudyTask` called ``name`` (an error lists the known ones).

    Examples
    --------
    >>> from astrofmtools.study import get_study_task
    >>> get_study_task("classification").metrics
    ('macro_f1', 'accuracy')
    """
    return _TASKS.lookup(name)


def list_study_tasks():
    """
    The names of the registered study tasks.

    Examples
    --------
    >>> from astrofmtools.study import list_study_tasks
    >>> list_study_tasks()
    ['classification', 'detection']
    """
    return list(_TASKS)


def _split(labels, test_fraction, what):
    from sklearn.model_selection import StratifiedShuffleSplit
    try:
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=test_fraction, random_state=0)
        return next(splitter.split(np.zeros(len(labels)), labels))
    except ValueError as err:
        raise InputError(f"'test_fraction' {test_fraction} of {what}: {err}") from None


class ClassificationTask(StudyTask):
    """Cutouts with classes: a `~astrofmtools.classify.Classifier` per cell, macro-F1."""

    name = "classification"
    metrics = ("macro_f1", "accuracy")
    metric_labels = {"macro_f1": "macro-F1", "accuracy": "accuracy"}
    maps = True

    def check(self, config, method):
        from ..classify.classifier import Classifier
        from ..classify.heads import list_heads
        if method["head"] not in list_heads():
            raise InputError(f"'methods': unknown head {method['head']!r}; registered: "
                             f"{', '.join(list_heads())}.")
        Classifier(**{**config.classifier, **method})  # the method's options win

    def read(self, config):
        from ..cutouts import CutoutStack
        stack = config.data if not isinstance(config.data, Path) else None
        if stack is None:
            if not config.data.is_file():
                raise InputError(f"'data': cutout stack {str(config.data)!r} not found.")
            stack = CutoutStack.read(config.data)
        if config.labels not in stack.table.colnames:
            raise InputError(f"'labels': the stack has no column {config.labels!r}; its "
                             f"columns: {', '.join(stack.table.colnames)}.")
        labels = np.asarray(stack.table[config.labels]).astype(str)
        if config.split_column in stack.table.colnames:
            is_test = np.char.lower(np.asarray(stack.table[config.split_column]).astype(str)) \
                == "test"
            test, train = np.flatnonzero(is_test), np.flatnonzero(~is_test)
            if not len(test) or not len(train):
                raise InputError(f"'split_column' {config.split_column!r} must mark some rows "
                                 "'test' and some not.")
        else:
            train, test = _split(labels, config.test_fraction, "the cutouts")
        digest = hashlib.sha256(np.ascontiguousarray(stack.data).tobytes())
        digest.update("\n".join(labels).encode())
        digest.update(np.asarray(test, dtype=np.int64).tobytes())
        return stack, labels, np.sort(train), np.sort(test), digest.hexdigest()

    def run(self, cell, stack, labels, train, test):
        from sklearn.metrics import accuracy_score, f1_score
        from ..classify.classifier import Classifier
        from ..classify.train import label_fraction_indices
        clf = Classifier(
            backbone=cell["model"], weights=cell["weights"],
            preprocess=cell["preprocess"] or None, strategy=cell["strategy"],
            head=cell["head"], label_fraction=cell["label_fraction"], seed=cell["seed"],
            **{**cell["classifier"], **cell["options"]})
        clf.fit(stack[train], labels[train])
        predicted = np.asarray(clf.predict(stack[test])["label"]).astype(str)
        truth = labels[test]
        n_labels = len(label_fraction_indices(labels[train], cell["label_fraction"],
                                              seed=cell["seed"]))
        return {"macro_f1": float(f1_score(truth, predicted, average="macro",
                                           zero_division=0)),
                "accuracy": float(accuracy_score(truth, predicted)),
                "n_labels": int(n_labels), "n_trainable": int(clf.n_trainable_),
                "n_parameters": int(clf.n_parameters_), "device": str(clf._device())}

    def command(self, config, entry, method, preprocess):
        data = str(config.data) if isinstance(config.data, (str, Path)) else "cutouts.fits"
        words = ["astrofm", "train", data, "--label-column", config.labels,
                 "--model", entry["name"]]
        if entry["weights"] is not None:
            words += ["--weights", entry["weights"]]
        words += ["--strategy", method["strategy"], "--head", method["head"]]
        words += _options({**config.classifier, **_options_of(method)},
                          {"epochs": "--epochs", "lr": "--lr", "batch_size": "--batch-size",
                           "device": "--device", "seed": "--seed"},
                          {"tta": ("--tta", "--no-tta")})
        for key, value in preprocess.items():
            words += ["--preprocess", f"{key}={json.dumps(value)}"]
        return words + ["-o", "model/"]


def _options_of(method):
    return {k: v for k, v in method.items() if k not in ("strategy", "head")}


def _options(settings, direct, flags):
    """Command-line words of settings: direct options, on/off flags, strategy options."""
    words = []
    for key, value in settings.items():
        if key in direct:
            words += [direct[key], str(value)]
        elif key in flags:
            words.append(flags[key][0] if value else flags[key][1])
        else:
            words += ["--strategy-option", f"{key}={json.dumps(value)}"]
    return words


#: Detector arguments a preprocessing variant of a detection study may set (those that
#: ``astrofm train-detector`` takes too).
_DETECTION_VARIANT = ("zoom", "crop_size")


class DetectionTask(StudyTask):
    """
    FITS images with boxes: a `~astrofmtools.detect.Detector` per cell, mAP@50.

    ``data`` is a folder, glob or list of FITS images; ``boxes`` one table of
    boxes with an ``image`` column (`~astrofmtools.detect.load_training_set`);
    ``labels`` the class column (one class, ``source``, when the table has
    none). The test split is a ``test_fraction`` of the images, drawn once;
    a label fraction is a seeded fraction of the training images.
    Preprocessing variants set ``zoom`` and ``crop_size``; methods are
    strategies with their options
    (the head is the detector's, ``faster_rcnn``). ``classifier`` holds the
    Detector arguments of every cell (``epochs``, ``batch_size``...).
    """

    name = "detection"
    metrics = ("map50", "recall50")
    metric_labels = {"map50": "mAP@50", "recall50": "recall at IoU 0.5"}
    head = "faster_rcnn"

    def check(self, config, method):
        from ..detect import Detector
        bad = [k for v in config.preprocess.values() for k in v if k not in _DETECTION_VARIANT]
        if bad:
            raise InputError(f"'preprocess' of a detection study sets {sorted(set(bad))}; "
                             f"it takes {', '.join(_DETECTION_VARIANT)}.")
        options = _options_of(method)
        strategy_options = {k: v for k, v in options.items()
                            if k not in _DETECTOR_SCHEDULE}
        Detector(strategy=method["strategy"], strategy_options=strategy_options,
                 **{**config.classifier, **{k: v for k, v in options.items()
                                            if k in _DETECTOR_SCHEDULE}})

    def read(self, config):
        from astropy.table import Table
        from ..detect import load_training_set
        from ..io import named_files
        if isinstance(config.boxes, (str, Path)):
            path = Path(config.boxes)
            if not path.is_file():
                raise InputError(f"'boxes': table {str(path)!r} not found.")
            boxes = Table.read(path)
        else:
            boxes = config.boxes
        files = named_files(config.data, (".fits", ".fit", ".fts", ".fits.gz"), "FITS")
        label = config.labels if boxes is not None and config.labels in boxes.colnames \
            else None
        samples, classes = load_training_set(files, boxes, label_column=label)
        # a stratum per image: its commonest class (every image counts once)
        strata = np.array([_commonest(s[2]) for s in samples])
        if len(samples) < 2:
            raise InputError("A detection study needs at least two images (train and test).")
        try:
            train, test = _split(strata, config.test_fraction, "the images")
        except InputError:
            train, test = _split(np.zeros(len(samples)), config.test_fraction, "the images")
        digest = hashlib.sha256()
        for image, box, labels in samples:
            digest.update(np.ascontiguousarray(image.data).tobytes())
            digest.update(np.ascontiguousarray(box).tobytes())
            digest.update("\n".join(map(str, labels)).encode())
        digest.update(np.asarray(test, dtype=np.int64).tobytes())
        return (samples, classes), None, np.sort(train), np.sort(test), \
            digest.hexdigest()

    def run(self, cell, data, labels, train, test):
        from ..detect import Detector
        from ..evaluate import detection_map
        samples, classes = data
        rng = np.random.default_rng(cell["seed"])
        n = max(1, int(round(cell["label_fraction"] * len(train))))
        chosen = np.sort(rng.choice(train, n, replace=False))
        options = {**cell["classifier"], **cell["options"]}
        det = Detector(
            cell["model"], strategy=cell["strategy"], weights=cell["weights"],
            classes=classes, seed=cell["seed"], **cell["preprocess"],
            strategy_options={k: v for k, v in options.items() if k not in _DETECTOR_SCHEDULE},
            **{k: v for k, v in options.items() if k in _DETECTOR_SCHEDULE})
        det.fit([samples[i][0] for i in chosen],
                [_truth(samples[i]) for i in chosen], label_column="label")
        pairs = [(det.predict(samples[i][0], score_threshold=0.05),
                  _truth(samples[i])) for i in test]
        scores = detection_map(pairs, iou_thresholds=[0.5], class_agnostic=len(classes) == 1)
        parameters = list(det.model_.parameters())
        return {"map50": float(scores["map_50"]), "recall50": float(scores["mar"]),
                "n_labels": int(sum(len(samples[i][1]) for i in chosen)),
                "n_trainable": int(sum(p.numel() for p in parameters if p.requires_grad)),
                "n_parameters": int(sum(p.numel() for p in parameters)),
                "device": str(det._device())}

    def command(self, config, entry, method, preprocess):
        data = str(config.data) if isinstance(config.data, (str, Path)) else "images/"
        words = ["astrofm", "train-detector", data]
        if isinstance(config.boxes, (str, Path)):
            words += ["--boxes", str(config.boxes)]
        words += ["--model", entry["name"]]
        if entry["weights"] is not None:
            words += ["--weights", entry["weights"]]
        words += ["--strategy", method["strategy"]]
        words += _options({**config.classifier, **_options_of(method), **preprocess},
                          {"epochs": "--epochs", "lr": "--lr", "batch_size": "--batch-size",
                           "device": "--device", "seed": "--seed", "zoom": "--zoom",
                           "crop_size": "--crop-size"}, {})
        return words + ["-o", "detector/"]


#: Detector arguments of the schedule (the rest of a method's options go to the strategy).
_DETECTOR_SCHEDULE = ("epochs", "batch_size", "lr", "backbone_lr_factor",
                      "head_warmup_epochs", "weight_decay", "device", "augment",
                      "fpn_channels", "representation_size", "anchor_sizes", "aspect_ratios")


def _commonest(labels):
    labels = [str(v) for v in labels]
    return max(set(labels), key=labels.count) if labels else ""


def _truth(sample):
    """The boxes of one training sample as a table (bbox columns, label)."""
    from astropy.table import QTable
    from ..schema import boxes_to_columns
    _, boxes, labels = sample
    table = QTable(boxes_to_columns(np.asarray(boxes, float).reshape(-1, 4)))
    table["label"] = np.asarray(labels).astype(str)
    return table


for _task in (ClassificationTask(), DetectionTask()):
    register_study_task(_task)
