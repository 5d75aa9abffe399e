# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""How a fitted `~astrofmtools.classify.Classifier` turns cutouts into class probabilities."""

import numpy as np

__all__ = []


def features_of(clf, inputs):
    """Pooled features of parsed inputs through the classifier's backbone (cached), with
    the extra table columns of late fusion appended."""
    from ..backbones import extract_features
    from .fusion import fuse
    features = extract_features(clf.backbone_, inputs, pooling=clf.pooling, batch_size=64,
                                device=clf._device(), preprocess=clf.preprocess_,
                                cache=clf.cache, tta=clf.tta)
    return fuse(clf, features, inputs)


def images_of(clf, inputs):
    """Parsed inputs as the model's [0, 1] input tensor (preprocessed on the CPU)."""
    import torch
    return torch.from_numpy(np.ascontiguousarray(clf.preprocess_.to_array(inputs),
                                                 dtype=np.float32))


def map_batches(clf, fn, inputs=None, features=None, batch_size=64):
    """
    ``fn`` over the classifier's inputs, batch by batch on its device, concatenated on the
    CPU: the rows of ``features`` (computed when not given) when the backbone did not
    change, else the preprocessed images (1024 preprocessed at a time: bounded memory).
    The one loop behind probabilities, logits, dropout passes and features.
    """
    import torch
    from ..adapt.loop import autocast
    device, out = clf._device(), []
    with torch.inference_mode():
        if clf.model_ is None:
            if features is None:
                features = features_of(clf, inputs)
            feats = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
            for i in range(0, len(feats), 4096):
                out.append(fn(feats[i:i + 4096].to(device)).float().cpu())
        else:
            batch_size = int(batch_size)
            with autocast(device)[0]:
                for start in range(0, len(inputs), max(batch_size, 1024)):
                    images = images_of(clf, inputs[start:start + max(batch_size, 1024)])
                    for i in range(0, len(images), batch_size):
                        out.append(fn(images[i:i + batch_size].to(device)).float().cpu())
    return torch.cat(out)


def predict_probabilities(clf, inputs, batch_size=64, features=None):
    """``(N, K)`` class probabilities of parsed inputs (with test-time augmentation and the
    classifier's temperature); ``features``: the inputs' features, when already at hand."""
    from .augment import tta_mean
    temperature = float(getattr(clf, "temperature_", 1.0))
    if clf.model_ is None:  # the backbone never changed: features, then the head
        return map_batches(clf, lambda f: (clf.head_(f).float() / temperature).softmax(1),
                           inputs, features).double().numpy()
    model = clf.model_.eval()

    def probs(x):
        return (model(x).float() / temperature).softmax(1)

    return map_batches(clf, lambda x: tta_mean(probs, x, clf.tta), inputs,
                       batch_size=batch_size).double().numpy()


def prediction_table(clf, table, proba):
    """The input table with ``label``, ``probability`` and ``p_<class>`` added (inputs of
    the same names kept as ``<name>_input``) and the provenance in ``meta``."""
    from astropy.table import QTable
    from ..utils import json_value, provenance
    from .classifier import ML_PACKAGES
    table = QTable(table, copy=True)
    new = ["label", "probability"] + [f"p_{c}" for c in clf.classes_]
    renamed = {}
    for name in new:
        if name in table.colnames:
            table.rename_column(name, f"{name}_input")
            renamed[name] = f"{name}_input"
    best = proba.argmax(axis=1)
    table["label"] = clf.classes_[best]
    table["label"].description = "predicted class (the most probable)"
    table["probability"] = proba[np.arange(len(best)), best]
    table["probability"].description = "probability of the predicted class"
    for j, c in enumerate(clf.classes_):
        table[f"p_{c}"] = proba[:, j]
        table[f"p_{c}"].description = f"probability of class {c}"
    meta = provenance(stage="classify", backbone=clf.spec_.name,
                      weights=clf.backbone_.weights, preprocess=clf.preprocess_.to_dict(),
                      strategy=clf.strategy, head=clf.head,
                      classes=json_value(clf.classes_.tolist()), tta=clf.tta,
                      pooling=clf.pooling or clf.backbone_.pooling, packages=ML_PACKAGES)
    meta["temperature"] = float(getattr(clf, "temperature_", 1.0))
    if renamed:
        meta["renamed_columns"] = renamed
    table.meta.update(meta)
    return table
