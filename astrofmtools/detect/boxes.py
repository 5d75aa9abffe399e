# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Boxes between tables and detectors.

Tables (find_sources, truth catalogues, detections) hold boxes as
``bbox_xmin``, ``bbox_xmax``, ``bbox_ymin``, ``bbox_ymax``: 0-based pixel
indices of the first and last column and row, inclusive (floats are allowed:
sub-pixel boxes). Detectors (torchvision) use ``(x1, y1, x2, y2)`` pixel
*edges*: pixel ``i`` spans ``[i, i + 1)``. So ``x1 = bbox_xmin`` and
``x2 = bbox_xmax + 1``; the centre of the box is pixel position
``(x1 + x2) / 2 - 0.5`` in the usual 0-based pixel-centre convention.
"""

import numpy as np

from ..exceptions import InputError

__all__ = ["BBOX_COLUMNS", "boxes_from_table", "boxes_to_columns", "box_centres"]

BBOX_COLUMNS = ("bbox_xmin", "bbox_xmax", "bbox_ymin", "bbox_ymax")

_DESCRIPTIONS = {
    "bbox_xmin": "Box: first column (0-based pixel, inclusive; x1 edge of the detector box)",
    "bbox_xmax": "Box: last column (0-based pixel, inclusive; x2 edge - 1)",
    "bbox_ymin": "Box: first row (0-based pixel, inclusive; y1 edge of the detector box)",
    "bbox_ymax": "Box: last row (0-based pixel, inclusive; y2 edge - 1)",
}


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

    Examples
    --------
    >>> from astropy.table import QTable
    >>> from astrofmtools.detect import boxes_from_table
    >>> t = QTable({"bbox_xmin": [10], "bbox_xmax": [19], "bbox_ymin": [5], "bbox_ymax": [7]})
    >>> boxes_from_table(t).tolist()
    [[10.0, 5.0, 20.0, 8.0]]
    """
    missing = [c for c in BBOX_COLUMNS if c not in table.colnames]
    if missing:
        raise InputError(f"{name} has no box columns {', '.join(missing)}; it has "
                         f"{', '.join(table.colnames)}.")
    cols = [np.asarray(getattr(table[c], "value", table[c]), dtype=np.float64)
            for c in BBOX_COLUMNS]
    xmin, xmax, ymin, ymax = cols
    boxes = np.stack([xmin, ymin, xmax + 1, ymax + 1], axis=1).astype(np.float32)
    if len(boxes) and not (np.all(boxes[:, 2] > boxes[:, 0]) and
                           np.all(boxes[:, 3] > boxes[:, 1])):
        raise InputError(f"{name} has boxes with bbox_xmax < bbox_xmin or "
                         f"bbox_ymax < bbox_ymin.")
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
        ``{name: astropy Column}`` for the four `BBOX_COLUMNS`.

    Examples
    --------
    >>> from astrofmtools.detect import boxes_to_columns
    >>> cols = boxes_to_columns([[10.0, 5.0, 20.0, 8.0]])
    >>> [float(cols[c][0]) for c in ("bbox_xmin", "bbox_xmax", "bbox_ymin", "bbox_ymax")]
    [10.0, 19.0, 5.0, 7.0]
    """
    from astropy.table import Column
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    values = {"bbox_xmin": boxes[:, 0], "bbox_xmax": boxes[:, 2] - 1,
              "bbox_ymin": boxes[:, 1], "bbox_ymax": boxes[:, 3] - 1}
    return {name: Column(values[name], name=name, description=_DESCRIPTIONS[name])
            for name in BBOX_COLUMNS}


def box_centres(boxes):
    """
    Pixel-centre positions (0-based) of the centres of detector boxes.

    Examples
    --------
    >>> from astrofmtools.detect import box_centres
    >>> box_centres([[10.0, 5.0, 20.0, 8.0]]).tolist()
    [[14.5, 6.0]]
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2 - 0.5,
                     (boxes[:, 1] + boxes[:, 3]) / 2 - 0.5], axis=1)
