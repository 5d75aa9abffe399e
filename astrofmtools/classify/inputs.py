# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""What a classifier takes: cutouts (one parser for every stage) and their labels."""

import hashlib

import numpy as np

from ..cutouts import parse_cutouts
from ..exceptions import InputError

__all__ = []


def _as_inputs(cutouts, what="cutouts"):
    """
    ``(inputs, table)``: a CutoutStack or an (N, H, W) / (N, C, H, W) float32 array (what
    `~astrofmtools.backbones.Preprocess` takes), and the table of the input rows (the
    stack's, or an ``index`` column).
    """
    return parse_cutouts(cutouts, what=what, keep_stack=True, single_image=False)


def _as_labels(labels, table, n):
    """The label of each input, as a 1-D numpy array (strings or integers)."""
    if isinstance(labels, str):
        if labels not in table.colnames:
            raise InputError(f"Label column {labels!r} is not in the cutout table (columns: "
                             f"{', '.join(table.colnames)}).")
        values = table[labels]
        name = f"label column {labels!r}"
    else:
        values = labels
        name = "labels"
    if getattr(values, "mask", None) is not None and np.any(values.mask):
        raise InputError(f"The {name} has {int(np.sum(values.mask))} missing (masked) "
                         "values; keep only labelled cutouts for training.")
    values = np.asarray(values)
    if values.dtype.kind == "S":
        values = np.char.decode(values, "utf-8")
    if values.ndim != 1 or len(values) != n:
        raise InputError(f"The {name} needs one value per cutout ({n}); got shape "
                         f"{values.shape}.")
    if values.dtype.kind == "U":
        values = np.char.strip(values)
    elif values.dtype.kind == "f":
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise InputError(f"The {name} must be class names or integers; got non-integer "
                             "numbers.")
        values = values.astype(np.int64)
    elif values.dtype.kind not in "iub":
        raise InputError(f"The {name} must be class names or integers; got dtype "
                         f"{values.dtype}.")
    if values.dtype.kind == "b":
        values = values.astype(np.int64)
    return values


def _hash_array(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.shape).encode())
        h.update(str(a.dtype).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]
