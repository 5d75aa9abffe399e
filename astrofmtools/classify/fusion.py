# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Late fusion: columns of the cutouts' table (morphometrics, photometry, colours,
redshift) beside the foundation-model features, as one input of the head.
"""

import numpy as np

from ..exceptions import InputError

__all__ = []


def extra_values(clf, inputs, columns=None):
    """``(N, E)`` float values of the extra columns of parsed inputs (NaN where missing)."""
    columns = list(clf.extra_columns if columns is None else columns)
    table = getattr(inputs, "table", None)
    if table is None:
        raise InputError(f"extra_columns {columns} are read from the cutouts' table: give a "
                         "CutoutStack whose table has them (an array has no table).")
    missing = [c for c in columns if c not in table.colnames]
    if missing:
        raise InputError(f"The cutouts' table has no column(s) {missing} of extra_columns; its "
                         f"columns: {', '.join(table.colnames)}.")
    out = np.empty((len(table), len(columns)))
    for j, name in enumerate(columns):
        col = table[name]
        mask = np.asarray(getattr(col, "mask", np.zeros(len(col), bool)), bool)
        values = getattr(col, "value", col)
        if hasattr(values, "filled"):
            values = values.filled(np.nan) if np.asarray(values).dtype.kind == "f" else \
                values.filled(0)
        try:
            values = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            raise InputError(f"Extra column {name!r} must hold numbers; it holds "
                             f"{np.asarray(col).dtype}.") from None
        if values.ndim != 1:
            raise InputError(f"Extra column {name!r} must hold one number per cutout; it has "
                             f"shape {values.shape}.")
        values[mask | ~np.isfinite(values)] = np.nan
        out[:, j] = values
    return out


def fit_extra(clf, inputs, train_sel):
    """The training medians that stand in for missing extra values (``extra_medians_``)."""
    values = extra_values(clf, inputs)[np.asarray(train_sel)]
    with np.errstate(all="ignore"):
        medians = np.nanmedian(values, axis=0) if len(values) else np.zeros(values.shape[1])
    clf.extra_medians_ = np.where(np.isfinite(medians), medians, 0.0).tolist()


def fuse(clf, features, inputs):
    """The features with the extra columns appended (missing values: training medians)."""
    if not clf.extra_columns:
        return features
    values = extra_values(clf, inputs)
    medians = np.asarray(clf.extra_medians_, dtype=float)
    values = np.where(np.isnan(values), medians, values)
    return np.concatenate([features, values.astype(features.dtype)], axis=1)
