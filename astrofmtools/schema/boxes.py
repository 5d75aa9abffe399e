# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Boxes between tables and detectors.

Tables (find_sources, truth catalogues, detections) hold boxes as
``bbox_xmin``, ``bbox_xmax``, ``bbox_ymin``, ``bbox_ymax`` (`BBOX_COLUMNS`):
0-based pixel indices of the first and last column and row, inclusive
(floats are allowed: sub-pixel boxes). Detectors (torchvision) use
``(x1, y1, x2, y2)`` pixel *edges*: pixel ``i`` spans ``[i, i + 1)``. So
``x1 = bbox_xmin`` and ``x2 = bbox_xmax + 1``; the centre of the box is
pixel position ``(x1 + x2) / 2 - 0.5`` in the usual 0-based pixel-centre
convention. Nothing here needs torch.
"""

import numpy as np
import astropy.units as u

from ..exceptions import InputError
from .columns import BBOX_COLUMNS, COLUMNS
from .position_values import _filled

__all__ = ["BOX_DESCRIPTIONS", "bbox_values", "boxes_from_table", "boxes_to_columns",
           "box_centres"]

#: Descriptions of the `BBOX_COLUMNS` of boxes from a detector: the registry's, with
#: the detector edge each column comes from.
BOX_DESCRIPTIONS = {
    name: f"{COLUMNS[name].description[:-1]}; {edge})"
    for name, edge in zip(BBOX_COLUMNS, ("x1 edge of the detector box", "x2 edge - 1",
                                         "y1 edge of the detector box", "y2 edge - 1"))
}


def bbox_values(table, name="the table", required=True):
    """
    The bounding-box columns of a table as float arrays.

    Parameters
    ----------
    table : `~astropy.table.Table`
        With ``bbox_xmin``, ``bbox_xmax``, ``bbox_ymin``, ``bbox_ymax``
        (unitless or in pixels).
    name : str, optional
        How to call the table in error messages (e.g. its file name).
    required : bool, optional
        Raise when a column is missing; else return None.

    Returns
    -------
    values : dict or None
        ``{column: float64 array}`` in the order of `BBOX_COLUMNS`, NaN
        where masked.

    Raises
    ------
    astrofmtools.InputError
        For missing columns (the message names them and the table), or
        columns that are not pixel numbers.

    Examples
    --------
    >>> from astropy.table import QTable
    >>> from astrofmtools.schema import bbox_values
    >>> t = QTable({"bbox_xmin": [10], "bbox_xmax": [19], "bbox_ymin": [5], "bbox_ymax": [7]})
    >>> bbox_values(t)["bbox_xmax"]
    array([19.])
    """
    missing = [c for c in BBOX_COLUMNS if c not in table.colnames]
    if missing:
        if not required:
            return None
        raise InputError(f"{name} has no box columns {', '.join(missing)}; it has "
                         f"{', '.join(table.colnames) or 'no columns'}.")
    out = {}
    for col_name in BBOX_COLUMNS:
        col = table[col_name]
        unit = getattr(col, "unit", None)
        if unit is not None and unit not in (u.pix, u.dimensionless_unscaled):
            raise InputError(f"Column {col_name!r} of {name} is in {unit}; box columns must "
                             "be unitless or in pix.")
        try:
            out[col_name] = _floats(col)
        except (TypeError, ValueError):
            raise InputError(f"Column {col_name!r} of {name} does not hold numbers.") from None
    return out


def _floats(col):
    """A column as plain float64, NaN where masked."""
    return _filled(col.value if isinstance(col, u.Quantity) else col)


def boxes_from_table(table, name="the table"):
    """
    Detector boxes ``(x1, y1, x2, y2)`` (pixel edges) from a table's bbox columns.

    Parameters
    ----------
    table : `~astropy.table.Table`
        With ``bbox_xmin``, ``bbox_xmax``, ``bbox_ymin``, ``bbox_ymax``.
    name : str, optional
        How to call the table in error messages (e.g. its file name).

    Returns
    -------
    boxes : `~numpy.ndarray`
        (N, 4) float32.

    Raises
    ------
    astrofmtools.InputError
        For missing columns, or boxes whose last column or row comes
        before their first (the message names the rows).

    Examples
    --------
    >>> from astropy.table import QTable
    >>> from astrofmtools.schema import boxes_from_table
    >>> t = QTable({"bbox_xmin": [10], "bbox_xmax": [19], "bbox_ymin": [5], "bbox_ymax": [7]})
    >>> boxes_from_table(t).tolist()
    [[10.0, 5.0, 20.0, 8.0]]
    """
    cols = bbox_values(table, name)
    xmin, xmax, ymin, ymax = (cols[c] for c in BBOX_COLUMNS)
    boxes = np.stack([xmin, ymin, xmax + 1, ymax + 1], axis=1).astype(np.float32)
    bad = np.flatnonzero(~((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])))
    if bad.size:
        rows = ", ".join(str(r) for r in bad[:10]) + (" ..." if bad.size > 10 else "")
        raise InputError(f"{name} has boxes with bbox_xmax < bbox_xmin or "
                         f"bbox_ymax < bbox_ymin (or not finite): rows {rows} (0-based).")
    return boxes.reshape(-1, 4)


def boxes_to_columns(boxes):
    """
    Table columns (bbox_xmin, ... as floats, with descriptions) from detector boxes.

    Parameters
    ----------
    boxes : array-like
        (N, 4) ``(x1, y1, x2, y2)`` pixel edges.

    Returns
    -------
    columns : dict
        ``{name: astropy Column}`` for the four `BBOX_COLUMNS`, described
        as the column registry describes them.

    Examples
    --------
    >>> from astrofmtools.schema import BBOX_COLUMNS, boxes_to_columns
    >>> cols = boxes_to_columns([[10.0, 5.0, 20.0, 8.0]])
    >>> [float(cols[c][0]) for c in BBOX_COLUMNS]
    [10.0, 19.0, 5.0, 7.0]
    """
    from astropy.table import Column

    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    values = dict(zip(BBOX_COLUMNS, (boxes[:, 0], boxes[:, 2] - 1, boxes[:, 1],
                                     boxes[:, 3] - 1)))
    return {name: Column(values[name], name=name, description=BOX_DESCRIPTIONS[name])
            for name in BBOX_COLUMNS}


def box_centres(boxes):
    """
    Pixel-centre positions (0-based) of the centres of detector boxes.

    Examples
    --------
    >>> from astrofmtools.schema import box_centres
    >>> box_centres([[10.0, 5.0, 20.0, 8.0]]).tolist()
    [[14.5, 6.0]]
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2 - 0.5,
                     (boxes[:, 1] + boxes[:, 3]) / 2 - 0.5], axis=1)
