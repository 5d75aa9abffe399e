# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""A `~astrofmtools.classify.Classifier` as a folder: ``config.json`` and safetensors."""

from pathlib import Path

import numpy as np

from ..exceptions import InputError
from ..utils import json_value

__all__ = []

FORMAT = "astrofmtools.Classifier"
#: 3: the temperature, conformal calibration and out-of-distribution detector (``ood.*``
#: tensors); 2 (read too): strategy options (LoRA targets included) and the training
#: settings in ``params``; 1 (read too): LoRA targets in ``lora_targets``.
FORMAT_VERSION = 3
CONFIG = "config.json"
WEIGHTS = "weights.safetensors"


def _check_keys(expected, got, what):
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    if missing or unexpected:
        raise InputError(f"The saved {what} do not match the model: missing "
                         f"{missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected "
                         f"{unexpected[:5]}{'...' if len(unexpected) > 5 else ''}.")


def _config(clf, include_backbone, ood=None):
    from ..utils import provenance
    from .classifier import ML_PACKAGES
    return json_value({
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "params": clf._params(),
        "backbone": clf.spec_.name, "backbone_spec": clf.spec_.to_dict(),
        "weights": clf._weights_reference(), "weights_source": clf.backbone_.weights,
        "in_chans": int(clf.backbone_.in_chans),
        "preprocess": clf.preprocess_.to_dict(),
        "classes": clf.classes_.tolist(),
        "head_config": clf.head_.config(),
        "includes_backbone": bool(include_backbone),
        "n_parameters": int(clf.n_parameters_), "n_trainable": int(clf.n_trainable_),
        "n_train": clf.n_train_, "n_val": clf.n_val_,
        "C": getattr(clf, "C_", None),
        "temperature": float(getattr(clf, "temperature_", 1.0)),
        "extra_medians": getattr(clf, "extra_medians_", None),
        "conformal": getattr(clf, "conformal_", None),
        "n_calibration": int(getattr(clf, "n_calibration_", 0)),
        "ood": ood,
        "history": clf.history_,
        "provenance": provenance(stage="classify-train", packages=ML_PACKAGES),
    })


def save_classifier(clf, path, overwrite=False, include_backbone=None):
    """Write a fitted classifier to a folder (`Classifier.save`)."""
    from ..utils import check_output_path, write_saved_model
    check_output_path(path, overwrite, kind="folder")  # before any work
    random = clf._weights_reference() == "random"
    strategy, backbone = clf.strategy_, clf.backbone_
    if include_backbone is None:
        include_backbone = random or strategy.stores_whole_backbone(backbone)
    if not include_backbone and random:
        raise InputError("The backbone was randomly initialised: its weights cannot be "
                         "rebuilt on loading, so they must be saved "
                         "(include_backbone=True or None).")
    tensors = {f"head.{k}": v for k, v in clf.head_.state_dict().items()}
    state = backbone.state_dict() if include_backbone else strategy.saved_state(backbone)
    tensors.update({f"backbone.{k}": v for k, v in state.items()})
    ood = None
    if getattr(clf, "ood_", None) is not None:
        from .trust import ood_state
        ood_tensors, ood = ood_state(clf)
        tensors.update(ood_tensors)
    write_saved_model(path, tensors, _config(clf, include_backbone, ood), overwrite=overwrite,
                      config_name=CONFIG, weights_name=WEIGHTS)


def _params_v1(config):
    """The constructor arguments of a version-1 config."""
    params = dict(config["params"])
    if params.get("strategy") == "lora":
        params["target_modules"] = config.get("lora_targets")
    return params


def load_classifier(cls, path, device=None):
    """Read a folder written by `save_classifier` (`Classifier.load`)."""
    from ..backbones import BackboneSpec, Preprocess, load_backbone
    from ..utils import read_saved_config, read_saved_tensors
    from .augment import SkyAugment
    from .fitting import history_table
    from .heads import head_from_config
    from .model import ClassifierModel

    path = Path(path)
    config = read_saved_config(path, FORMAT, FORMAT_VERSION, CONFIG, WEIGHTS)
    params = _params_v1(config) if config["format_version"] < 2 else dict(config["params"])
    augment = params.pop("augment")
    if isinstance(augment, dict):
        augment = SkyAugment(**augment)
    spec = BackboneSpec.from_saved(config.get("backbone_spec"), path / CONFIG)
    clf = cls(backbone=spec, weights=config["weights"], device=device, augment=augment,
              **params)
    tensors = read_saved_tensors(path / WEIGHTS)  # a damaged file: an InputError naming it
    head_tensors = {k[5:]: v for k, v in tensors.items() if k.startswith("head.")}
    bb_tensors = {k[9:]: v for k, v in tensors.items() if k.startswith("backbone.")}
    ood_tensors = {k: v for k, v in tensors.items() if k.startswith("ood.")}
    others = set(tensors) - {f"head.{k}" for k in head_tensors} - {
        f"backbone.{k}" for k in bb_tensors} - set(ood_tensors)
    if others:
        raise InputError(f"Unexpected tensors in {str(path / WEIGHTS)!r}: "
                         f"{sorted(others)[:5]}.")
    whole = bool(config["includes_backbone"])
    backbone = load_backbone(spec, weights="random" if whole else config["weights"],
                             device="cpu", in_chans=config["in_chans"])
    strategy = clf.strategy_
    strategy.prepare(backbone)
    if whole:
        expected, what = backbone.state_dict(), "backbone weights"
        backbone.weights = config["weights_source"]
    else:
        expected, what = strategy.saved_state(backbone), f"{strategy.name} backbone tensors"
    _check_keys(expected, bb_tensors, what)
    if bb_tensors:
        backbone.load_state_dict(bb_tensors, strict=whole)
    dev = clf._device()
    backbone = backbone.to(dev).eval()
    try:
        head = head_from_config(config["head_config"])
    except (KeyError, TypeError) as exc:  # a setting the head class does not take
        raise InputError(f"{str(path / CONFIG)!r} holds no valid head_config: {exc}") from None
    _check_keys(head.state_dict(), head_tensors, "head weights")
    head.load_state_dict(head_tensors, strict=True)
    clf.backbone_, clf.spec_ = backbone, spec
    clf.preprocess_ = Preprocess.from_dict(config["preprocess"])
    clf.classes_ = np.array(config["classes"])
    clf.head_ = head.to(dev).eval()
    clf.model_ = None
    if strategy.trains_backbone:
        pre = clf.preprocess_
        clf.model_ = ClassifierModel(backbone, clf.head_, clf.pooling, pre.mean, pre.std,
                                     strategy).to(dev).eval()
        clf.model_.configure(warmup=False)
    if config.get("C") is not None:
        clf.C_ = config["C"]
    clf.temperature_ = float(config.get("temperature", 1.0))
    clf.extra_medians_ = config.get("extra_medians")
    clf.conformal_ = config.get("conformal")
    clf.n_calibration_ = int(config.get("n_calibration", 0))
    clf.ood_ = clf.ood_threshold_ = None
    if config.get("ood"):
        from .trust import restore_ood
        restore_ood(clf, config["ood"], ood_tensors)
    elif ood_tensors:
        raise InputError(f"{str(path / WEIGHTS)!r} holds out-of-distribution tensors that "
                         f"{CONFIG} does not declare.")
    clf.n_parameters_ = config["n_parameters"]
    clf.n_trainable_ = config["n_trainable"]
    clf.n_train_, clf.n_val_ = config["n_train"], config["n_val"]
    clf.history_ = history_table(config["history"])
    clf._fitted = True
    return clf
