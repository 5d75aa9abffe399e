# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Tiled detection over mosaics of any size.

The mosaic is read tile by tile (memory-mapped when it is a file), each tile
is handed to a detector, the boxes come back to mosaic pixels, each object
is kept from the tile whose *core* holds its centre, and a global
non-maximum suppression (`torchvision.ops`) removes the duplicates left where
neighbouring tiles disagree about an object cut by a tile edge.
"""

import numbers
import os

import numpy as np
from astropy.table import QTable

from ..exceptions import InputError
from ..io import load_image, map_tiles, owned, plan_tiles
from ..schema import BOX_DESCRIPTIONS, add_sky_columns, as_labels, box_centres, boxes_to_columns
from ..utils import provenance

__all__ = ["predict_tiled", "DETECTION_COLUMNS"]

__doctest_requires__ = {"predict_tiled": ["torch", "torchvision"]}

#: The columns of a detection table and their descriptions.
DETECTION_COLUMNS = {
    "id": "Detection number, 1..N, by decreasing score",
    "x": "Box centre x (0-based pixel)",
    "y": "Box centre y (0-based pixel)",
    **BOX_DESCRIPTIONS,
    "score": "Detector confidence (0-1 for a trained detector)",
    "label": "Class of the detection (name, or class number when no names are given)",
    "label_id": "Class number (1..K; 0 is the background)",
    "sky_centroid": "Sky position of the box centre (ICRS)",
    "ra": "Right ascension of the box centre (ICRS)",
    "dec": "Declination of the box centre (ICRS)",
    "tile": "Index (0-based, row-major) of the tile the detection was kept from",
}


def predict_tiled(image, predict_tiles, tile=512, overlap=64, iou_threshold=0.5, batch_size=4,
                  class_agnostic=False, labels=None, desc="detect", scheduler=None,
                  workers=None):
    """
    Run a detector over a mosaic of any size, tile by tile.

    The mosaic is cut into ``tile`` x ``tile`` tiles that share ``overlap``
    pixels with their neighbours (`~astrofmtools.io.plan_tiles`, read and
    mapped by `~astrofmtools.io.map_tiles`); only the
    tiles of one batch are in memory at a time, and a FITS file is read
    memory-mapped, so memory is bounded by the tile size and not by the
    mosaic. The boxes of each tile are shifted to mosaic pixels and a box
    is kept only from the tile whose core (the part of the tile it owns;
    the cores cover the mosaic exactly once; grown by up to 8 pixels inside
    the tile, so that a source on a core boundary is not dropped by both
    neighbours) holds the box centre (`~astrofmtools.io.owned`). An object
    smaller than half the overlap is then seen whole by the tile that keeps
    it, so nothing is lost or cut at tile borders. A global non-maximum
    suppression (`torchvision.ops.batched_nms`, per class, or
    `torchvision.ops.nms` with ``class_agnostic``) finally removes
    duplicates that two tiles reported with slightly different boxes.

    Parameters
    ----------
    image : `~astrofmtools.io.SkyImage` or any input of `~astrofmtools.io.load_image`
        The mosaic (2-D). A file name is opened memory-mapped.
    predict_tiles : callable
        ``predict_tiles(tiles) -> results``: given a list of 2-D float32
        arrays (the raw tile pixels, NaN where there is no data; each at
        most ``tile`` x ``tile``), returns a list with, for each tile, a
        tuple ``(boxes, scores, labels)``: boxes (M, 4) ``(x1, y1, x2, y2)``
        pixel edges in the tile's own pixels (pixel ``i`` spans
        ``[i, i + 1)``), scores (M,) and integer labels (M,) >= 1. numpy
        arrays or torch tensors. Tiles without a single finite pixel are
        not passed: they have no detections.
    tile : int, optional
        Side of a tile in pixels, overlap included.
    overlap : int, optional
        Pixels shared by neighbouring tiles: make it at least twice the
        half-size of the largest object to detect whole (objects up to
        ``overlap`` pixels across are never cut).
    iou_threshold : float, optional
        Intersection over union above which the global NMS drops the
        lower-scoring of two boxes (of the same class unless
        ``class_agnostic``).
    batch_size : int, optional
        Tiles per call of ``predict_tiles``.
    class_agnostic : bool, optional
        Suppress overlapping boxes whatever their classes.
    labels : sequence of str, optional
        Class names, index 0 being the background: the ``label`` column
        then holds ``labels[label_id]``.
    desc : str, optional
        Text of the progress bar (shown on a terminal only).
    scheduler : str or executor, optional
        Where the batches of tiles run (see `~astrofmtools.io.map_tiles`):
        serially (default; right for one GPU), ``"threads"`` (for a
        thread-safe ``predict_tiles`` on CPUs), or an executor. The table
        is the same whichever runs them.
    workers : int, optional
        The number of threads of the ``"threads"`` scheduler.

    Returns
    -------
    table : `~astropy.table.QTable`
        One row per detection, by decreasing score (see
        ``DETECTION_COLUMNS`` for the descriptions): ``id`` (1..N), ``x``,
        ``y`` (box centre, 0-based pixel), ``bbox_xmin``, ``bbox_xmax``,
        ``bbox_ymin``, ``bbox_ymax`` (0-based inclusive pixel bounds,
        floats), ``score``, ``label`` (name, or the class number without
        ``labels``), ``label_id``, then, when the image has a celestial
        WCS, ``sky_centroid`` (ICRS), ``ra``, ``dec`` (deg), and ``tile``
        (the index of the tile the box came from). ``meta`` records
        ``tile``, ``overlap``, ``iou_threshold``, ``class_agnostic``,
        ``n_tiles``, ``image`` (where it came from), ``shape`` and the
        package versions. No detection gives an empty table with the same
        columns.

    Raises
    ------
    astrofmtools.InputError
        For an image `~astrofmtools.io.load_image` cannot read or that is
        not 2-D, bad settings, or a ``predict_tiles`` whose results do not
        follow the contract above (the message says what is wrong).

    Examples
    --------
    A detector that boxes every connected region above a threshold, run
    over a 300 x 200 image in 128-pixel tiles. The source at x = 125-131
    crosses the right edge of the first tile (x = 128); the second tile,
    whose core holds its centre, sees it whole and reports it, once:

    >>> import numpy as np
    >>> from scipy import ndimage
    >>> from astrofmtools.detect import predict_tiled
    >>> def blobs(tiles):
    ...     out = []
    ...     for t in tiles:
    ...         lab, n = ndimage.label(np.nan_to_num(t) > 0.5)
    ...         sl = ndimage.find_objects(lab)
    ...         boxes = [[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in sl]
    ...         peaks = ndimage.maximum(t, lab, range(1, n + 1))
    ...         out.append((np.reshape(boxes, (-1, 4)), np.asarray(peaks), np.ones(n, int)))
    ...     return out
    >>> data = np.zeros((200, 300), np.float32)
    >>> data[50:55, 125:132] = 1.0
    >>> data[150:153, 200:210] = 2.0
    >>> found = predict_tiled((data, None), blobs, tile=128, overlap=32)
    >>> found["id", "x", "y", "bbox_xmin", "bbox_xmax", "score", "tile"].pprint()
     id   x     y   bbox_xmin bbox_xmax score tile
    --- ----- ----- --------- --------- ----- ----
      1 204.5 151.0     200.0     209.0   2.0    5
      2 128.0  52.0     125.0     131.0   1.0    1
    >>> found.meta["n_tiles"]
    6
    """
    tile, overlap, iou_threshold, batch_size, labels = _check_settings(
        predict_tiles, tile, overlap, iou_threshold, batch_size, labels)
    image = _load(image)
    shape = tuple(int(n) for n in image.shape)
    planned = plan_tiles(shape, tile, overlap)

    def run(batch):
        # tiles without a single finite pixel have no detections: not passed on
        with_data = [t for t in batch if np.isfinite(t.data).any()]
        results = predict_tiles([t.data for t in with_data]) if with_data else []
        _check_results(results, len(with_data))
        kept = dict(zip((t.index for t in with_data),
                        (_owned(r, t) for t, r in zip(with_data, results))))
        return [kept.get(t.index) for t in batch]

    found = map_tiles(run, image, planned, scheduler, workers=workers, batch_size=batch_size,
                      dtype=np.float32, desc=desc)
    found_boxes, found_scores, found_labels, found_tiles = [], [], [], []
    for t, kept in zip(planned, found):
        if kept is not None:
            found_boxes.append(kept[0])
            found_scores.append(kept[1])
            found_labels.append(kept[2])
            found_tiles.append(np.full(len(kept[0]), t.index, np.int64))

    boxes = np.concatenate(found_boxes) if found_boxes else np.zeros((0, 4))
    scores = np.concatenate(found_scores) if found_scores else np.zeros(0)
    label_ids = np.concatenate(found_labels) if found_labels else np.zeros(0, np.int64)
    tiles = np.concatenate(found_tiles) if found_tiles else np.zeros(0, np.int64)
    keep = _global_nms(boxes, scores, label_ids, iou_threshold, class_agnostic)
    boxes, scores, label_ids, tiles = boxes[keep], scores[keep], label_ids[keep], tiles[keep]

    meta = provenance(packages=("torch", "torchvision"), stage="detect", tile=tile,
                      overlap=overlap, iou_threshold=iou_threshold,
                      class_agnostic=bool(class_agnostic), n_tiles=len(planned),
                      image=str(image.source), shape=list(shape))
    if labels is not None:
        meta["labels"] = list(labels)
    return _build_table(image, boxes, scores, label_ids, tiles, labels, meta)


# ----------------------------------------------------------------------------
# helpers


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_settings(predict_tiles, tile, overlap, iou_threshold, batch_size, labels):
    if not callable(predict_tiles):
        raise InputError("predict_tiles must be a callable taking a list of tiles and "
                         f"returning (boxes, scores, labels) per tile, not "
                         f"{type(predict_tiles).__name__}.")
    if not _is_int(tile) or tile <= 0:
        raise InputError(f"tile must be a positive integer (pixels), not {tile!r}.")
    if not _is_int(overlap) or not 0 <= overlap < tile:
        raise InputError(f"overlap must be an integer in [0, tile) = [0, {tile}), "
                         f"not {overlap!r}.")
    try:
        iou = float(iou_threshold)
    except (TypeError, ValueError):
        iou = np.nan
    if isinstance(iou_threshold, bool) or not 0 < iou <= 1:
        raise InputError(f"iou_threshold must be a number in (0, 1], not {iou_threshold!r}.")
    if not _is_int(batch_size) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, not {batch_size!r}.")
    if labels is not None:
        if isinstance(labels, str) or not all(isinstance(c, str) for c in labels):
            raise InputError("labels must be a list of class names (str), index 0 being "
                             f"the background; got {labels!r}.")
        labels = list(labels)
        if len(labels) < 2:
            raise InputError(f"labels needs the background (index 0) and at least one class; "
                             f"got {labels!r}.")
    return int(tile), int(overlap), iou, int(batch_size), labels


def _load(image):
    if isinstance(image, (str, os.PathLike)):
        image = load_image(image)
    else:
        image = load_image(image)
    if np.ndim(image.data) != 2:
        raise InputError(f"{image.source} has data of shape {np.shape(image.data)}; tiled "
                         "detection needs a 2-D image (pick one band with image.band(name)).")
    return image


def _as_numpy(values):
    if hasattr(values, "detach"):  # a torch tensor, possibly on a GPU
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def _check_results(results, n):
    try:
        length = len(results)
    except TypeError:
        length = None
    if length != n:
        raise InputError(f"predict_tiles was given {n} tile(s) and must return a list of "
                         f"{n} (boxes, scores, labels) tuples; it returned "
                         f"{type(results).__name__}"
                         + (f" of length {length}." if length is not None else "."))


def _owned(result, tile):
    """Boxes (mosaic pixels), scores, labels of one tile's result kept by its core."""
    index = tile.index
    try:
        boxes, scores, labels = (_as_numpy(v) for v in result)
    except (TypeError, ValueError):
        raise InputError(f"predict_tiles returned {result!r} for tile {index}; expected a "
                         "tuple (boxes, scores, labels).") from None
    if boxes.size == 0 and scores.size == 0 and labels.size == 0:
        return None
    boxes = boxes.astype(np.float64, copy=False)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise InputError(f"predict_tiles returned boxes of shape {boxes.shape} for tile "
                         f"{index}; expected (M, 4) (x1, y1, x2, y2).")
    m = len(boxes)
    scores = scores.astype(np.float64, copy=False).reshape(-1)
    labels = labels.reshape(-1)
    if len(scores) != m or len(labels) != m:
        raise InputError(f"predict_tiles returned {m} boxes, {len(scores)} scores and "
                         f"{len(labels)} labels for tile {index}; they must match.")
    if labels.dtype.kind in "fb":  # class numbers held as floats
        labels = as_labels(labels, f"labels predict_tiles returned for tile {index}")
    if labels.dtype.kind not in "iu" or np.any(labels < 1):
        raise InputError(f"predict_tiles returned labels {labels[:5].tolist()}... for tile "
                         f"{index}; labels must be integers >= 1 (0 is the background).")
    if not (np.all(np.isfinite(boxes)) and np.all(np.isfinite(scores))):
        raise InputError(f"predict_tiles returned non-finite boxes or scores for tile {index}.")
    # a detector cannot see beyond its tile: clip there, then to mosaic pixels
    ny, nx = tile.data.shape[-2:]
    boxes = np.clip(boxes, 0, [nx, ny, nx, ny])
    y0, x0 = tile.origin
    boxes = boxes + np.array([x0, y0, x0, y0], dtype=np.float64)
    # the box centre in 0-based pixels (box edges: pixel i spans [i, i + 1))
    cx = (boxes[:, 0] + boxes[:, 2]) / 2 - 0.5
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 - 0.5
    # the core is grown by a few pixels on its inner sides (never beyond the tile): two tiles'
    # estimates of the centre of a source on a core boundary differ by a fraction of a pixel
    # and could both fall on the other's side; the global NMS removes the twins
    margin = min(*((s.stop - s.start - (c.stop - c.start)) // 4
                   for s, c in zip(tile.slices, tile.core)), 8)
    own = owned(tile, cx, cy, margin=margin) & (boxes[:, 2] > boxes[:, 0]) \
        & (boxes[:, 3] > boxes[:, 1])
    return boxes[own], scores[own], labels[own].astype(np.int64)


def _global_nms(boxes, scores, label_ids, iou_threshold, class_agnostic):
    """Indices kept by the NMS, ordered by decreasing score (ties: by position)."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    import torch
    from torchvision.ops import batched_nms, nms

    b = torch.from_numpy(np.ascontiguousarray(boxes, dtype=np.float64))
    s = torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float64))
    if class_agnostic:
        keep = nms(b, s, float(iou_threshold))
    else:
        keep = batched_nms(b, s, torch.from_numpy(label_ids), float(iou_threshold))
    keep = keep.numpy()
    centres = box_centres(boxes[keep])
    # deterministic order, the same however the mosaic was tiled
    order = np.lexsort((centres[:, 0], centres[:, 1], -scores[keep]))
    return keep[order]


def _build_table(image, boxes, scores, label_ids, tiles, labels, meta):
    n = len(boxes)
    centres = box_centres(boxes)
    table = QTable(meta=meta)
    table["id"] = np.arange(1, n + 1, dtype=np.int64)
    table["x"] = centres[:, 0]
    table["y"] = centres[:, 1]
    for name, column in boxes_to_columns(boxes).items():
        table[name] = column
    table["score"] = np.asarray(scores, dtype=np.float64)
    if labels is not None:
        if n and label_ids.max() >= len(labels):
            raise InputError(f"predict_tiles returned class number {int(label_ids.max())} but "
                             f"labels names only {len(labels)} (with the background): "
                             f"{labels}.")
        table["label"] = np.array([labels[i] for i in label_ids], dtype=str) if n else \
            np.zeros(0, dtype="U1")
    else:
        table["label"] = label_ids.astype(np.int64)
    table["label_id"] = label_ids.astype(np.int64)
    if image.wcs is not None:
        add_sky_columns(table, image.wcs, centres[:, 0], centres[:, 1])
    table["tile"] = np.asarray(tiles, dtype=np.int64)
    for name in table.colnames:
        table[name].info.description = DETECTION_COLUMNS[name]
    return table
