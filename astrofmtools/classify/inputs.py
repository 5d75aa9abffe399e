# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""What a classifier takes: cutouts (one parser for every stage) and their labels."""

import hashlib

import numpy as np

from ..cutouts import parse_cutouts
from ..exceptions import InputError
from ..schema import as_labels

__all__ = []


def _as_inputs(cutouts, what="cutouts"):
    """
    ``(inputs, table)``: a CutoutStack or an (N, H, W) / (N, C, H, W) float32 array (what
    `~astrofmtools.backbones.Preprocess` takes), and the table of the input rows (the
    stack's, or an ``index`` column).
    """
    return parse_cutouts(cutouts, what=what, keep_stack=True, single_image=False)


def _unlabelled(values):
    """
    Which labels are missing: masked (a blank cell of ECSV or CSV), None, NaN or a blank string.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.table import MaskedColumn
    >>> from astrofmtools.classify.inputs import _unlabelled
    >>> _unlabelled(MaskedColumn(["FRI", "FRII", "x"], mask=[False, False, True])).tolist()
    [False, False, True]
    >>> _unlabelled(["FRI", " ", None, float("nan"), np.ma.masked, b""]).tolist()
    [False, True, True, True, True, True]
    """
    if isinstance(values, np.ma.MaskedArray):
        missing = np.ma.getmaskarray(values).copy()
        values = np.ma.getdata(values)
    else:
        missing = None
    arr = np.asarray(getattr(values, "value", values)) if not isinstance(values, (list, tuple)) \
        else None
    if arr is not None and arr.ndim == 1 and arr.dtype.kind in "US":
        blank = np.char.strip(arr) == (b"" if arr.dtype.kind == "S" else "")
    elif arr is not None and arr.ndim == 1 and arr.dtype.kind == "f":
        blank = np.isnan(arr)
    elif arr is not None and arr.dtype.kind != "O":
        blank = np.zeros(len(arr), dtype=bool)
    else:
        blank = np.array([v is None or v is np.ma.masked
                          or (isinstance(v, (str, bytes)) and not v.strip())
                          or (isinstance(v, (float, np.floating)) and np.isnan(v))
                          for v in values], dtype=bool)
    return blank if missing is None else missing | blank


def _as_labels(labels, table, n):
    """The label of each input (strings or integers): one parser, `astrofmtools.schema`'s."""
    name = "labels"
    if isinstance(labels, str) and table is not None and labels in table.colnames:
        name, labels = f"label column {labels!r}", table[labels]
    if not isinstance(labels, str) and np.ndim(labels) == 1:
        missing = np.flatnonzero(_unlabelled(labels))
        if len(missing):
            shown = ", ".join(str(r) for r in missing[:10])
            shown += " ..." if len(missing) > 10 else ""
            raise InputError(f"The {name} are blank or missing in {len(missing)} row(s) "
                             f"(0-based rows {shown}); label them or leave those rows out.")
    if isinstance(labels, str):
        return as_labels(labels, f"label column {labels!r}", table=table, n=n)
    return as_labels(labels, name, table=table, n=n)


def _check_not_blank(inputs, what="cutouts"):
    """
    Refuse training cutouts without data: any cutout with no finite pixel (off the
    image, or all NaN), or cutouts that are all blank (each one a single value).
    """
    data = getattr(inputs, "data", inputs)
    n = len(data)
    empty, flat = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    for start in range(0, n, 1024):  # block by block: no full-size temporary
        block = np.asarray(data[start:start + 1024], dtype=np.float32).reshape(
            min(1024, n - start), -1)
        finite = np.isfinite(block)
        rows = slice(start, start + len(block))
        empty[rows] = ~finite.any(axis=1)
        flat[rows] = ~(np.where(finite, block, -np.inf).max(axis=1)
                       > np.where(finite, block, np.inf).min(axis=1))
    if empty.any():
        rows = np.flatnonzero(empty)
        listed = ", ".join(map(str, rows[:10])) + (", ..." if len(rows) > 10 else "")
        raise InputError(f"{len(rows)} of the {n} {what} have no finite pixel (every pixel "
                         f"NaN or Inf): rows {listed} (0-based). They lie off the image or "
                         "on missing data; drop them (stack[mask], array[mask]) before "
                         "training.")
    if flat.all():
        raise InputError(f"All {n} {what} are blank: each holds a single value, so there is "
                         "nothing to learn from. Check the image and the cutout positions.")


def _hash_array(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.shape).encode())
        h.update(str(a.dtype).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]
