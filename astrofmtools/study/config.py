# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The settings of a study (`StudyConfig`), its grid of cells (`study_cells`) and the key
that caches each cell's result (`cell_key`).

Torch-free at import: the registries that a config is checked against (backbones,
strategies, heads) are read only when a config is checked.
"""

import hashlib
import json
import sys
from pathlib import Path

from ..exceptions import InputError

__all__ = ["StudyConfig", "study_cells", "cell_key", "METRICS"]

__doctest_requires__ = {("StudyConfig", "study_cells", "cell_key"): ["torch"]}

#: The scores of every cell of a classification study; ``metric`` chooses the headline
#: (a task's own: `~astrofmtools.study.StudyTask.metrics`).
METRICS = ("macro_f1", "accuracy")

#: Classifier arguments that the grid sets itself for every cell.
_SET_PER_CELL = ("backbone", "preprocess", "strategy", "head", "label_fraction", "seed")

#: The keys of a study config, their defaults and what they mean.
KEYS = {
    "task": ("classification", "what the cells train: classification or detection (or a "
                               "registered study task)"),
    "data": (None, "labelled cutout stack (.fits written by 'astrofm cutouts'), or for "
                   "detection the FITS images (folder or glob), relative to the config file"),
    "boxes": (None, "detection: table of boxes with an 'image' column, relative to the "
                    "config file"),
    "labels": ("label", "column of the stack's table (detection: of the boxes) holding the "
                        "classes"),
    "split_column": ("split", "column whose 'test' rows form the test split, when the table "
                              "has it"),
    "test_fraction": (0.3, "fraction of each class held out once for testing (without a "
                           "split column)"),
    "backbones": (["efficientnet_lite0"], "registered backbone names, or {name:, weights:, "
                                          "label:} for other weights (a file relative to the "
                                          "config file, or 'random')"),
    "preprocess": ({"default": {}}, "preprocessing variants: {name: Preprocess settings}"),
    "methods": ([{"strategy": "frozen", "head": "linear"}],
                "strategy/head pairs: 'frozen/linear' or {strategy:, head:, options...}"),
    "fractions": ([1.0], "label fractions, each in (0, 1]"),
    "seeds": ([0, 1, 2], "seeds (an int n: 0 .. n-1)"),
    "metric": (None, "headline score (default the task's first: classification macro_f1 "
                     "or accuracy, detection map50 or recall50)"),
    "max_hours": (None, "budget: skip the most expensive cells beyond it"),
    "classifier": ({}, "Classifier arguments for every cell (epochs, tta, device, ...); a "
                       "method's own options override them"),
}


class StudyConfig:
    """
    The settings of a study: data, grid, metric and budget.

    Parameters
    ----------
    config : dict, str or `~pathlib.Path`
        The settings (``data``, ``labels``, ``split_column``, ``test_fraction``,
        ``backbones``, ``preprocess``, ``methods``, ``fractions``, ``seeds``,
        ``metric``, ``max_hours``, ``classifier``: the documentation's "Studies"
        page describes them), or a YAML (``.yaml``, ``.yml``) or JSON
        (``.json``) file of them; a relative ``data`` path is read relative to
        the file. ``data`` may also be a `~astrofmtools.cutouts.CutoutStack`.

    Raises
    ------
    astrofmtools.InputError
        For an unknown key, or a value a key does not take; the message names
        the key (and lists the registered backbones, strategies or heads).

    Examples
    --------
    >>> from astrofmtools.study import StudyConfig
    >>> config = StudyConfig({"data": "cutouts.fits", "methods": ["frozen/linear"],
    ...                       "fractions": [0.5, 1], "seeds": 2})
    >>> config.methods, config.fractions, config.seeds
    ([{'strategy': 'frozen', 'head': 'linear'}], [0.5, 1.0], [0, 1])
    """

    def __init__(self, config):
        base = Path(".")
        if isinstance(config, (str, Path)):
            path = Path(config)
            config, base = _read(path), path.parent
        if not isinstance(config, dict):
            raise InputError(f"A study config must be a mapping of {', '.join(KEYS)}; got "
                             f"a {type(config).__name__}.")
        unknown = [k for k in config if k not in KEYS]
        if unknown:
            raise InputError(f"Unknown study config key(s) {', '.join(map(repr, unknown))}; "
                             f"known: {', '.join(KEYS)}.")
        given = {k: config.get(k, default) for k, (default, _) in KEYS.items()}
        from .tasks import get_study_task
        try:
            self.task = get_study_task(given["task"])
        except InputError as err:
            raise InputError(f"'task': {err}") from None
        if given["data"] is None:
            raise InputError("The study config needs 'data': a labelled cutout stack file "
                             "(detection: FITS images).")
        self.data = _path(given["data"], base)
        if not isinstance(self.data, Path) and not hasattr(self.data, "table") and \
                self.task.name == "classification":
            raise InputError(f"'data' must be a cutout stack file, not {self.data!r}.")
        self.boxes = None if given["boxes"] is None else _path(given["boxes"], base)
        for key in ("labels", "split_column"):
            if not isinstance(given[key], str) or not given[key]:
                raise InputError(f"'{key}' must be a column name, not {given[key]!r}.")
        self.labels, self.split_column = given["labels"], given["split_column"]
        self.test_fraction = _number("test_fraction", given["test_fraction"], 0, 1)
        self.fractions = sorted({_number("fractions", f, 0, 1, high_closed=True)
                                 for f in _list("fractions", given["fractions"])})
        self.seeds = _seeds(given["seeds"])
        metrics = self.task.metrics
        self.metric = metrics[0] if given["metric"] is None else given["metric"]
        if self.metric not in metrics:
            raise InputError(f"'metric' of a {self.task.name} study must be one of "
                             f"{', '.join(metrics)}, not {given['metric']!r}.")
        self.max_hours = None if given["max_hours"] is None else \
            _number("max_hours", given["max_hours"], 0, None)
        self.backbones = [_backbone(b, base) for b in _list("backbones", given["backbones"])]
        labels = [b["label"] for b in self.backbones]
        if len(set(labels)) != len(labels):
            raise InputError(f"'backbones': each entry needs its own label; {labels} repeats "
                             "one (give 'label:' to entries of the same model).")
        self.preprocess = _variants(given["preprocess"])
        methods = given["methods"]
        if self.task.head is not None and "methods" not in config:
            methods = [{"strategy": "finetune"}]
        self.methods = [_method(m, self.task.head) for m in _list("methods", methods)]
        if not isinstance(given["classifier"], dict):
            raise InputError(f"'classifier' must be a mapping of Classifier arguments, not "
                             f"{given['classifier']!r}.")
        fixed = [k for k in _SET_PER_CELL if k in given["classifier"]]
        if fixed:
            raise InputError(f"'classifier' sets {', '.join(fixed)}, which the grid sets per "
                             "cell (use backbones, preprocess, methods, fractions, seeds).")
        self.classifier = dict(given["classifier"])
        self._check_registries()

    def _check_registries(self):
        from ..adapt import list_strategies
        from ..backbones import list_backbones
        known = list(list_backbones()["name"])
        bad = [b["name"] for b in self.backbones if b["name"] not in known]
        if bad:
            raise InputError(f"'backbones': unknown {', '.join(map(repr, bad))}; registered: "
                             f"{', '.join(known)}.")
        strategies = list_strategies()
        for m in self.methods:
            if m["strategy"] not in strategies:
                raise InputError(f"'methods': unknown strategy {m['strategy']!r}; registered: "
                                 f"{', '.join(strategies)}.")
            try:  # option names and values: the task's own checks (loads nothing)
                self.task.check(self, m)
            except InputError as err:
                raise InputError(f"'methods' {_method_name(m)} with 'classifier' "
                                 f"{self.classifier}: {err}") from None

    def to_dict(self):
        """The settings as plain values (``data`` as a path string)."""
        out = {k: getattr(self, k) for k in KEYS}
        out["task"] = self.task.name
        for key in ("data", "boxes"):
            out[key] = str(out[key]) if isinstance(out[key], Path) or out[key] is None \
                else repr(out[key])
        out["backbones"] = [dict(b) for b in self.backbones]
        return out


def _path(value, base):
    """A path relative to the config file's folder (other values pass through)."""
    if isinstance(value, (str, Path)):
        return Path(value) if Path(value).is_absolute() else base / value
    return value


def _read(path):
    if not path.is_file():
        raise InputError(f"Study config {str(path)!r} not found.")
    text = path.read_text()
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        import yaml
        return yaml.safe_load(text)
    except Exception as err:  # a YAML or JSON syntax error, with its line
        raise InputError(f"Study config {str(path)!r} cannot be read: {err}") from None


def _list(key, value):
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise InputError(f"'{key}' must be a non-empty list, not {value!r}.")
    return list(value)


def _number(key, value, low, high, high_closed=False):
    try:
        if isinstance(value, bool):
            raise TypeError
        value = float(value)
    except (TypeError, ValueError):
        value = None
    if value is None or not value > low or (high is not None and (
            value > high if high_closed else value >= high)):
        bound = "" if high is None else f", {high}{']' if high_closed else ')'}"
        what = f"in ({low}{bound}" if high is not None else f"> {low}"
        raise InputError(f"'{key}' must be a number {what}, not {value!r}.")
    return value


def _seeds(seeds):
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise InputError(f"'seeds' must be a positive count or a list, not {seeds!r}.")
        return list(range(seeds))
    values = _list("seeds", seeds)
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in values) \
            or len(set(values)) != len(values):
        raise InputError(f"'seeds' must be distinct integers, not {seeds!r}.")
    return values


def _backbone(value, base):
    """A backbone entry: a registry name, or {name:, weights:, label:}."""
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) or \
            set(value) - {"name", "weights", "label"}:
        raise InputError(f"'backbones' entries are registry names or {{name:, weights:, "
                         f"label:}}, not {value!r}.")
    weights = value.get("weights")
    if weights is not None and weights != "random":
        weights = Path(weights) if Path(weights).is_absolute() else base / weights
        if not weights.is_file():
            raise InputError(f"'backbones': weights file {str(weights)!r} of "
                             f"{value['name']!r} not found.")
        weights = str(weights)
    label = value.get("label") or value["name"] + ("-random" if weights == "random" else "")
    return {"label": str(label), "name": value["name"], "weights": weights}


def _variants(value):
    if isinstance(value, list):
        value = {f"p{i}": v for i, v in enumerate(value)}
    if not isinstance(value, dict) or not value or \
            not all(isinstance(v, dict) for v in value.values()):
        raise InputError(f"'preprocess' must map variant names to Preprocess settings "
                         f"({{small: {{input_size: 64}}}}), not {value!r}.")
    return {str(k): dict(v) for k, v in value.items()}


def _method(value, head=None):
    """A method: strategy, head and options (``head``: the task's only head)."""
    if isinstance(value, str):
        strategy, _, given = value.partition("/")
        value = {"strategy": strategy, **({"head": given} if given else {})}
    if not isinstance(value, dict) or "strategy" not in value:
        raise InputError(f"'methods' entries are 'strategy/head' or {{strategy:, head:, "
                         f"options...}}, not {value!r}.")
    value = dict(value)
    if head is not None and value.setdefault("head", head) != head:
        raise InputError(f"'methods' entry {value}: this task has one head, {head!r}.")
    value.setdefault("head", "linear")
    fixed = [k for k in _SET_PER_CELL[:2] + _SET_PER_CELL[4:] if k in value]
    if fixed:
        raise InputError(f"'methods' entry {value} sets {', '.join(fixed)}, which the grid "
                         "sets per cell.")
    return value


def _method_name(method):
    extra = [f"{k}={v}" for k, v in method.items() if k not in ("strategy", "head")]
    return "/".join([method["strategy"], method["head"]]) + \
        (f"({', '.join(extra)})" if extra else "")


def study_cells(config):
    """
    The grid of a study: one cell per backbone, preprocessing variant, method, fraction, seed.

    Parameters
    ----------
    config : `StudyConfig`, dict or path

    Returns
    -------
    cells : list of dict
        Each with ``name`` (``backbone/variant/strategy/head/f<fraction>/s<seed>``),
        ``backbone`` (the entry's label), ``model`` (its registry name),
        ``weights`` (None: the registry's), ``preprocess_name``, ``preprocess``,
        ``strategy``, ``head``,
        ``method`` (its name), ``options`` (of the method), ``label_fraction``,
        ``seed`` and ``classifier`` (the arguments shared by every cell).

    Examples
    --------
    >>> from astrofmtools.study import study_cells
    >>> cells = study_cells({"data": "c.fits", "methods": ["frozen/linear", "frozen/knn"],
    ...                      "fractions": [0.5, 1.0], "seeds": 2})
    >>> len(cells), cells[0]["name"]
    (8, 'efficientnet_lite0/default/frozen/linear/f0.5/s0')
    """
    if not isinstance(config, StudyConfig):
        config = StudyConfig(config)
    cells = []
    for entry in config.backbones:
        backbone = entry["label"]
        for variant, preprocess in config.preprocess.items():
            for method in config.methods:
                options = {k: v for k, v in method.items() if k not in ("strategy", "head")}
                for fraction in config.fractions:
                    for seed in config.seeds:
                        name = _method_name(method)
                        cells.append({
                            "name": f"{backbone}/{variant}/{name}/f{fraction:g}/s{seed}",
                            "backbone": backbone, "model": entry["name"],
                            "weights": entry["weights"], "preprocess_name": variant,
                            "preprocess": preprocess, "strategy": method["strategy"],
                            "head": method["head"], "method": name, "options": options,
                            "label_fraction": fraction, "seed": seed,
                            "classifier": config.classifier})
    return cells


def cell_key(cell, data_fingerprint):
    """
    The cache key of a cell: sha256 of its settings, the data and the package version.

    The names of the variant and of the backbone entry are not part of it
    (renaming reruns nothing); their settings (model and weights path) are.

    Examples
    --------
    >>> from astrofmtools.study import cell_key, study_cells
    >>> cell = study_cells({"data": "c.fits", "seeds": 1})[0]
    >>> key = cell_key(cell, "abc")
    >>> len(key), key == cell_key(dict(cell, seed=1), "abc"), key == cell_key(cell, "abd")
    (64, False, False)
    """
    version = sys.modules["astrofmtools"].__version__  # the package, imported already
    settings = {k: v for k, v in cell.items()
                if k not in ("name", "preprocess_name", "backbone")}
    text = json.dumps({"cell": settings, "data": str(data_fingerprint),
                       "version": version}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
