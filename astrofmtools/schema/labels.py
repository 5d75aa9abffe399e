# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Class labels from tables, lists and arrays: one reading for every stage."""

import numpy as np

from ..exceptions import InputError

__all__ = ["as_labels"]


def as_labels(values, name="labels", *, table=None, n=None):
    """
    Class labels as a 1-D numpy array of strings or integers.

    Bytes (FITS) are decoded and the spaces FITS pads strings with are
    stripped; whole numbers stored as floats and booleans become integers.

    Parameters
    ----------
    values : array-like, `~astropy.table.Column` or str
        The labels, or (with ``table``) the name of the column holding them.
    name : str, optional
        How to call the labels in error messages.
    table : `~astropy.table.Table`, optional
        The table ``values`` names a column of.
    n : int, optional
        The number of labels expected (one per row, per cutout...).

    Returns
    -------
    labels : `~numpy.ndarray`
        1-D, of dtype ``str`` (``<U``) or int64.

    Raises
    ------
    astrofmtools.InputError
        For a column the table lacks, masked (missing) labels, labels that
        are neither strings nor whole numbers, more than one dimension, or
        not ``n`` of them (the message names the labels or the column).

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.table import Table
    >>> from astrofmtools.schema import as_labels
    >>> as_labels(np.array([b"FRI ", b"FRII"]))
    array(['FRI', 'FRII'], dtype='<U4')
    >>> as_labels([1.0, 0.0, True])
    array([1, 0, 1])
    >>> as_labels("kind", table=Table({"kind": ["star", "galaxy"]}), n=2)
    array(['star', 'galaxy'], dtype='<U6')
    """
    if isinstance(values, str) and table is not None:
        if values not in table.colnames:
            raise InputError(f"Label column {values!r} is not in the table (columns: "
                             f"{', '.join(table.colnames)}).")
        name = f"label column {values!r}" if name == "labels" else name
        values = table[values]
    if np.ma.is_masked(values):
        count = int(np.sum(np.ma.getmaskarray(values)))
        raise InputError(f"The {name} have {count} missing (masked) values; keep only "
                         "labelled rows.")
    arr = np.asarray(getattr(values, "value", values))
    if arr.ndim != 1:
        raise InputError(f"The {name} must be a 1-D sequence of labels, not of shape "
                         f"{arr.shape}.")
    if n is not None and len(arr) != n:
        raise InputError(f"The {name} need one value per row ({n}); got {len(arr)}.")
    if arr.dtype.kind == "S":
        arr = np.char.decode(arr, "utf-8")
    if arr.dtype.kind == "O" and len(arr) and all(isinstance(v, str) for v in arr):
        arr = arr.astype(str)
    if arr.dtype.kind == "U":
        return np.char.strip(arr)
    if not len(arr):
        return arr.astype(np.int64) if arr.dtype.kind in "fiub" else arr.astype(str)
    if arr.dtype.kind == "f":
        if not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
            raise InputError(f"The {name} must hold strings or integers (class names or "
                             "numbers); got numbers that are not whole.")
        return arr.astype(np.int64)
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64)
    raise InputError(f"The {name} must hold strings or integers (class names or numbers); got "
                     f"dtype {arr.dtype}.")
