# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
How a `~astrofmtools.classify.Classifier`'s arguments become its parts: a
strategy, a training schedule and head options (each read from its
registry), the backbone and the preprocessing.
"""

from pathlib import Path

import numpy as np

from ..exceptions import InputError

__all__ = []


def resolve_options(strategy, head, settings, options):
    """
    ``(strategy, settings, head_options)`` from the Classifier's arguments.

    ``options`` are routed by name: `~astrofmtools.adapt.TrainSettings`
    fields to the schedule, options of any registered strategy to the
    chosen one (when it has them), options of any registered head to the
    chosen head (when it has them); anything else is refused.
    """
    from ..adapt import Strategy, TrainSettings, get_strategy, strategy_options
    from .heads import get_head, head_options

    all_strategy_options = strategy_options()
    given = {"settings": {}, "strategy": {}, "head": {}}
    for key, value in options.items():
        if key in TrainSettings.names():
            given["settings"][key] = value
        elif key in all_strategy_options:
            given["strategy"][key] = value
        elif key in head_options():
            given["head"][key] = value
        else:
            raise InputError(
                f"Unknown Classifier setting {key!r}. Training settings: "
                f"{', '.join(TrainSettings.names())}; strategy options: "
                f"{', '.join(all_strategy_options)}; head options: {', '.join(head_options())}.")
    if not isinstance(strategy, Strategy):
        own = strategy_options(strategy) if isinstance(strategy, str) else strategy.options
        strategy = get_strategy(strategy, **{k: v for k, v in given["strategy"].items()
                                             if k in own})
    entry = get_head(head)
    if entry.frozen_only and strategy.trains_backbone:
        raise InputError(f"The {head!r} head works on frozen features only; use "
                         f"strategy='frozen' or a head trained by gradient descent.")
    if isinstance(settings, dict):  # changes to the strategy's schedule
        base = strategy.settings().replace(**settings)
    elif settings is None or isinstance(settings, TrainSettings):  # the whole schedule
        base = strategy.settings() if settings is None else settings
    else:
        raise InputError(f"settings must be a TrainSettings or a dict; got "
                         f"{type(settings).__name__}.")
    hidden = given["head"].get("hidden")
    if hidden is not None:
        given["head"]["hidden"] = ((int(hidden),) if np.isscalar(hidden)
                                   else tuple(int(h) for h in hidden))
    head_opts = {**entry.options,
                 **{k: v for k, v in given["head"].items() if k in entry.options}}
    return strategy, base.replace(**given["settings"]), head_opts


def check_tta(tta):
    """``tta`` as given to the Classifier: True, False or 'auto'."""
    if isinstance(tta, str) and tta == "auto":
        return tta
    if tta in (True, False):  # numpy bools and 0/1 too
        return bool(tta)
    raise InputError(f"tta must be True, False or 'auto'; got {tta!r}.")


def resolve_tta(tta, device):
    """
    Whether test-time augmentation is on: ``tta`` itself, or for ``'auto'``, on CUDA only.

    On a CPU the eight views make feature extraction and prediction eight
    times slower (FR-DEEP, 550 cutouts at 224 px: minutes instead of about
    one); on a GPU they cost little.

    Examples
    --------
    >>> from astrofmtools.classify.config import resolve_tta
    >>> resolve_tta("auto", "cpu"), resolve_tta("auto", "cuda:0"), resolve_tta(True, "cpu")
    (False, True, True)
    """
    import torch
    if tta != "auto":
        return bool(tta)
    return torch.device(device).type == "cuda"


def weights_reference(clf):
    """How `load` finds the backbone's weights again: None (registry default), a file or
    'random'."""
    if clf.weights is not None:
        return clf.weights
    from ..backbones import Backbone
    if isinstance(clf.backbone, Backbone):
        source = clf.backbone.weights
        if source == "random" or Path(source).is_file():
            return source
    return None


def load_backbone_for(clf, in_chans):
    """The classifier's backbone: the one given, or loaded from the registry."""
    from ..backbones import Backbone, BackboneSpec, get_backbone_spec, load_backbone
    if isinstance(clf.backbone, Backbone):
        backbone = clf.backbone.to(clf._device())
    else:
        spec = (clf.backbone if isinstance(clf.backbone, BackboneSpec)
                else get_backbone_spec(clf.backbone))
        backbone = load_backbone(spec, weights=clf.weights, device=clf._device(),
                                 in_chans=in_chans)
    clf.spec_ = backbone.spec
    return backbone


def make_preprocess(clf, backbone):
    """The classifier's `~astrofmtools.backbones.Preprocess` (given, default or changed)."""
    from ..backbones import Preprocess
    if isinstance(clf.preprocess, Preprocess):
        return clf.preprocess
    if clf.preprocess is None:
        return backbone.default_preprocess()
    if isinstance(clf.preprocess, dict):
        try:
            return backbone.default_preprocess(**clf.preprocess)
        except TypeError as exc:
            raise InputError(f"Unknown preprocess setting: {exc}") from None
    raise InputError(f"preprocess must be a Preprocess, a dict of settings or None; got "
                     f"{type(clf.preprocess).__name__}.")


def in_chans(clf, inputs):
    """
    Input channels of the backbone for these inputs: 3, unless the
    preprocessing feeds the bands as they are ('bands'). Multi-band
    cutouts with other than 1 or 3 bands (radio + infrared, say) get
    'bands' and a stem adapted to their number of bands by default.
    """
    from ..backbones import Preprocess
    pre = clf.preprocess
    channels = (pre.get("channels") if isinstance(pre, dict)
                else getattr(pre, "channels", None))
    data = inputs.data if hasattr(inputs, "data") else inputs
    n_bands = 1 if data.ndim == 3 else data.shape[1]
    if channels in (None, "auto") and n_bands not in (1, 3) and \
            not isinstance(pre, Preprocess):
        clf.preprocess = {**(pre or {}), "channels": "bands"}
        channels = "bands"
    if channels == "bands":
        return n_bands
    return 3
