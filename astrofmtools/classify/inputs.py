# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""What a classifier takes: cutouts (one parser for every stage) and their labels."""

import hashlib

import numpy as np

from ..cutouts import parse_cutouts
from ..schema import as_labels

__all__ = []


def _as_inputs(cutouts, what="cutouts"):
    """
    ``(inputs, table)``: a CutoutStack or an (N, H, W) / (N, C, H, W) float32 array (what
    `~astrofmtools.backbones.Preprocess` takes), and the table of the input rows (the
    stack's, or an ``index`` column).
    """
    return parse_cutouts(cutouts, what=what, keep_stack=True, single_image=False)


def _as_labels(labels, table, n):
    """The label of each input (strings or integers): one parser, `astrofmtools.schema`'s."""
    if isinstance(labels, str):
        return as_labels(labels, f"label column {labels!r}", table=table, n=n)
    return as_labels(labels, table=table, n=n)


def _hash_array(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.shape).encode())
        h.update(str(a.dtype).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]
