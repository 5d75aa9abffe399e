# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The training schedule as one settings object."""

import dataclasses
import math
from dataclasses import dataclass

from ..exceptions import InputError

__all__ = ["TrainSettings", "cosine_factor"]


def _number(name, value, kind, low, high=math.inf, low_open=False, allow_none=False):
    """``value`` as ``kind``, checked against ``[low, high]`` (``(low, high]`` if low_open)."""
    if value is None and allow_none:
        return None
    try:
        if isinstance(value, bool) or (kind is int and float(value) != int(value)):
            raise ValueError
        number = kind(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be {'an integer' if kind is int else 'a number'}; got "
                         f"{value!r}.") from None
    bad = (number <= low if low_open else number < low) or number > high or number != number
    if bad:
        span = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise InputError(f"{name} must be in {span}; got {value!r}.")
    return number


def _flag(name, value):
    """``value`` as a bool (True, False, 1, 0 or their JSON/CLI spellings)."""
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if value in (True, False):  # 1 and 0 too
        return bool(value)
    raise InputError(f"{name} must be true or false; got {value!r}.")


@dataclass(frozen=True)
class TrainSettings:
    """
    The training schedule: everything that sets how long and how fast a model trains.

    One object travels from the command line to `~astrofmtools.classify.Classifier`,
    `~astrofmtools.detect.Detector` and the training loop
    (`~astrofmtools.adapt.TrainLoop`); every value is checked when it is made,
    before any work, so ``epochs=-1`` or ``lr=-1`` fail at once with a clear
    message. Each strategy (`~astrofmtools.adapt.Strategy.defaults`) fills
    what the user leaves out.

    Parameters
    ----------
    epochs : int
        Passes over the training set (at least 1).
    lr : float
        Learning rate of the backbone's top layer group (of the head for
        strategies that keep the backbone fixed).
    head_lr : float or None
        Learning rate of the head when the backbone trains too (None:
        ``1e-3``).
    batch_size : int
        Samples per step.
    patience : int or None
        Epochs without a better validation loss before stopping (None: never).
        Only with ``keep_best``.
    head_warmup_epochs : int
        Epochs of the head alone (backbone fixed) before the backbone trains.
    weight_decay : float
        AdamW weight decay.
    layer_decay : float
        Strategies with layer-wise learning-rate decay: each layer group
        trains this many times slower than the one above it (0 < x <= 1).
    keep_best : bool
        True: keep the weights of the epoch with the lowest validation loss
        and stop after ``patience`` epochs without a better one (early
        stopping). False: run every epoch of the schedule and keep the last
        weights; the validation split is still scored each epoch. On a
        validation split of ~100 images the loss is noisy, and a
        full cosine schedule ends better (``benchmarks/finetune_recipe_frdeep.py``).
    label_smoothing : float
        Label smoothing of the cross-entropy (0: none; 0 <= x < 1).

    Examples
    --------
    >>> from astrofmtools.adapt import TrainSettings
    >>> settings = TrainSettings(epochs=10, lr=3e-4)
    >>> settings.replace(batch_size=16).batch_size
    16
    >>> TrainSettings(epochs=-1)
    Traceback (most recent call last):
    ...
    astrofmtools.exceptions.InputError: epochs must be in [1, inf]; got -1.
    """

    epochs: int = 30
    lr: float = 1e-4
    head_lr: float = None
    batch_size: int = 32
    patience: int = 8
    head_warmup_epochs: int = 0
    weight_decay: float = 0.01
    layer_decay: float = 0.75
    keep_best: bool = True
    label_smoothing: float = 0.0

    def __post_init__(self):
        checked = {
            "epochs": _number("epochs", self.epochs, int, 1),
            "lr": _number("lr", self.lr, float, 0, low_open=True),
            "head_lr": _number("head_lr", self.head_lr, float, 0, low_open=True,
                               allow_none=True),
            "batch_size": _number("batch_size", self.batch_size, int, 1),
            "patience": _number("patience", self.patience, int, 1, allow_none=True),
            "head_warmup_epochs": _number("head_warmup_epochs", self.head_warmup_epochs, int, 0),
            "weight_decay": _number("weight_decay", self.weight_decay, float, 0),
            "layer_decay": _number("layer_decay", self.layer_decay, float, 0, 1, low_open=True),
            "keep_best": _flag("keep_best", self.keep_best),
            "label_smoothing": _number("label_smoothing", self.label_smoothing, float, 0,
                                       0.999),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @classmethod
    def names(cls):
        """The names of the settings."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **changes):
        """A copy with some settings changed (None values are ignored)."""
        unknown = set(changes) - set(self.names())
        if unknown:
            raise InputError(f"Unknown training settings {sorted(unknown)}; the settings are "
                             f"{', '.join(self.names())}.")
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self):
        """The settings as a JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """Settings from `to_dict`'s output (unknown names are refused)."""
        return cls().replace(**dict(values))

    @property
    def effective_head_lr(self):
        """The head's learning rate when the backbone trains (``head_lr`` or 1e-3)."""
        return 1e-3 if self.head_lr is None else self.head_lr


def cosine_factor(step, total, warmup=0):
    """
    Learning-rate factor: linear warm-up over ``warmup`` steps, then a cosine decay to 0.

    Parameters
    ----------
    step : int
        The step (or epoch), from 0.
    total : int
        Steps in all.
    warmup : int, optional
        Steps of linear warm-up (from ``1 / warmup`` to 1).

    Returns
    -------
    factor : float

    Examples
    --------
    >>> from astrofmtools.adapt import cosine_factor
    >>> [round(cosine_factor(s, 4), 3) for s in range(4)]
    [1.0, 0.854, 0.5, 0.146]
    >>> cosine_factor(0, 10, warmup=2)
    0.5
    """
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))
