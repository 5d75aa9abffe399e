# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""A `~astrofmtools.detect.Detector` as a folder: ``config.json`` and ``model.safetensors``."""

from pathlib import Path

from ..exceptions import InputError
from ..utils import json_value
from .preprocess import DetectionPreprocess

__all__ = []

_FORMAT = "astrofmtools.Detector"
#: 2: ``strategy_options`` in ``params`` (any registered strategy); 1 (read too): frozen or
#: finetune only.
_FORMAT_VERSION = 2
_CONFIG = "config.json"
_WEIGHTS = "model.safetensors"


def detector_config(det):
    """The ``config.json`` of a fitted detector: settings, backbone entry, history."""
    from ..utils import provenance
    from .detector import _ML_PACKAGES
    options = det.strategy_.config()
    options.pop("name")
    params = {"strategy": det.strategy, "strategy_options": options,
              "weights": det.weights, "classes": det.classes,
              "zoom": det.zoom, "anchor_sizes": det.anchor_sizes,
              "aspect_ratios": det.aspect_ratios, "crop_size": det.crop_size,
              "epochs": det.epochs, "batch_size": det.batch_size, "lr": det.lr,
              "backbone_lr_factor": det.backbone_lr_factor,
              "head_warmup_epochs": det.head_warmup_epochs,
              "weight_decay": det.weight_decay, "fpn_channels": det.fpn_channels,
              "representation_size": det.representation_size,
              "preprocess": det.preprocess, "augment": det.augment, "seed": det.seed}
    return json_value({
        "format": _FORMAT, "format_version": _FORMAT_VERSION,
        "params": params, "backbone": det.spec_.name,
        "backbone_spec": det.spec_.to_dict(), "weights_source": det.weights_source_,
        "classes": list(det.classes_), "preprocess": det.preprocess_.to_dict(),
        "anchor_sizes": det.anchor_sizes_, "aspect_ratios": det.aspect_ratios_,
        "n_train_images": det.n_train_images_, "n_train_boxes": det.n_train_boxes_,
        "history": det.history_,
        "provenance": provenance(stage="detect-train", packages=_ML_PACKAGES),
    })


def save_detector(det, path, overwrite=False):
    """Write a fitted detector to a folder (`Detector.save`)."""
    from ..utils import write_saved_model
    det._check_fitted()
    write_saved_model(path, det.model_.state_dict(), det._config(), overwrite=overwrite,
                      config_name=_CONFIG, weights_name=_WEIGHTS)


def load_detector(cls, path, device=None):
    """Read a detector of class ``cls`` saved by `save_detector` (`Detector.load`)."""
    import torch
    from ..backbones import BackboneSpec
    from ..utils import read_saved_config, read_saved_tensors
    path = Path(path)
    config = read_saved_config(path, _FORMAT, _FORMAT_VERSION, _CONFIG, _WEIGHTS)
    spec = BackboneSpec.from_saved(config.get("backbone_spec"), path / _CONFIG)
    params = dict(config["params"])
    det = cls(model=spec, device=device, **params)
    anchor_sizes = tuple(tuple(a) for a in config["anchor_sizes"])
    aspect_ratios = tuple(config["aspect_ratios"])
    classes = list(config["classes"])
    state = read_saved_tensors(path / _WEIGHTS)  # a damaged file: an InputError naming it
    model = cls._build(spec, "random", classes, anchor_sizes, aspect_ratios,
                       det.fpn_channels, det.representation_size)
    det.strategy_.prepare(model.backbone.body)  # adapters, so that the names match
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise InputError(f"{str(path / _WEIGHTS)!r} does not match the detector in "
                         f"{_CONFIG}: missing {missing[:5]}, unexpected {unexpected[:5]}.")
    with torch.no_grad():
        model.load_state_dict(state, strict=True)
    det.model_ = model.to(det._device()).eval()
    det.spec_ = spec
    det.weights_source_ = config["weights_source"]
    det.classes_ = classes
    det.preprocess_ = DetectionPreprocess.from_dict(config["preprocess"])
    det.anchor_sizes_, det.aspect_ratios_ = anchor_sizes, aspect_ratios
    det.n_train_images_ = config["n_train_images"]
    det.n_train_boxes_ = config["n_train_boxes"]
    from astropy.table import Table
    det.history_ = Table(rows=config["history"]) if config["history"] else Table()
    return det
