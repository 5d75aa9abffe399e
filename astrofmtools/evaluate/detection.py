# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Detection scores from boxes: COCO mean average precision (mAP).

The radio-astronomy view, completeness and reliability against SNR from
positions, is in `~astrofmtools.evaluate.completeness_reliability`.
"""

import numpy as np
from astropy.table import QTable, Table

from ..exceptions import InputError
from ..schema import as_labels, boxes_from_table
from ..utils import provenance

__all__ = ["detection_map"]

# torchmetrics and pycocotools are optional dependencies (the ``ml`` extra)
__doctest_requires__ = {"detection_map": ["torch", "torchmetrics", "pycocotools"]}


def detection_map(predictions, truth=None, iou_thresholds=None, class_agnostic=True,
                  score="score", label="label", max_detections=None):
    """
    Mean average precision of detected boxes against true boxes (COCO).

    Computed by `torchmetrics.detection.MeanAveragePrecision` with the
    official `pycocotools` evaluation: predictions ranked by score over all
    images, matched greedily to the unmatched true box of highest IoU above
    each threshold, precision interpolated at 101 recall points (0, 0.01,
    ..., 1) and averaged. Recall levels never reached count as precision 0,
    so finding half of the sources perfectly gives an AP of 51/101 = 0.505.

    Unlike COCO's default of 100, every detection of an image counts (radio
    mosaics hold thousands of sources), and the mAP@50:95 is computed from
    COCO's precision array with that limit too (pycocotools' own summary
    uses 100 whatever is asked; torchmetrics issue #2560).

    Parameters
    ----------
    predictions : `~astropy.table.Table` or list
        Detections with ``bbox_xmin``, ``bbox_xmax``, ``bbox_ymin``,
        ``bbox_ymax`` (0-based inclusive pixels), a ``score`` column and,
        unless ``class_agnostic``, a ``label`` column. Several images: an
        ``image`` column in both tables (rows with the same value belong to
        one image), a list of tables (one per image, with ``truth`` a list
        of the same length), or a list of ``(predictions, truth)`` pairs
        with ``truth`` left out.
    truth : `~astropy.table.Table` or list, optional
        The true boxes (bbox columns, and ``label`` unless
        ``class_agnostic``).
    iou_thresholds : list of float, optional
        IoU thresholds of the average; COCO's 0.50, 0.55, ..., 0.95 by
        default.
    class_agnostic : bool, optional
        Score boxes whatever their class (one class). Otherwise AP is
        computed per class and averaged (macro mAP).
    score, label : str, optional
        The score and class columns (e.g. ``score="snr"`` to rank the
        sources of `~astrofmtools.sources.find_sources`).
    max_detections : int, optional
        Detections per image that count, highest scores first; by default
        all of them.

    Returns
    -------
    metrics : dict
        - ``map``: mAP averaged over ``iou_thresholds`` (mAP@50:95 by
          default).
        - ``map_50``, ``map_75``: mAP at IoU 0.5 and 0.75 (NaN when that
          threshold is not in ``iou_thresholds``).
        - ``mar``: mean recall, averaged over the thresholds.
        - ``per_class``: `~astropy.table.QTable` (``label``, ``map``,
          ``map_50``, ``n_truth``, ``n_predictions``), one row per class
          (one row ``"all"`` with ``class_agnostic``).
        - ``n_images``, ``n_truth``, ``n_predictions``, ``iou_thresholds``.

        A score is NaN when there is no true box to find.

    Raises
    ------
    astrofmtools.InputError
        For missing columns (the message names them), lists of different
        lengths, or an ``image`` column in one table only.

    Examples
    --------
    Two of four sources found, each with a perfect box:

    >>> from astropy.table import QTable
    >>> from astrofmtools.evaluate import detection_map
    >>> truth = QTable({"bbox_xmin": [0, 20, 40, 60], "bbox_xmax": [9, 29, 49, 69],
    ...                 "bbox_ymin": [0, 20, 40, 60], "bbox_ymax": [9, 29, 49, 69]})
    >>> found = truth[:2].copy()
    >>> found["score"] = [0.9, 0.8]
    >>> m = detection_map(found, truth)
    >>> round(m["map_50"], 4), round(m["map"], 4), m["mar"]
    (0.505, 0.505, 0.5)
    """
    import torch
    from torchmetrics.detection import MeanAveragePrecision

    pairs = _image_pairs(predictions, truth)
    if iou_thresholds is None:
        iou_thresholds = [round(0.5 + 0.05 * i, 2) for i in range(10)]
    try:
        iou_thresholds = [float(t) for t in np.atleast_1d(iou_thresholds)]
    except (TypeError, ValueError):
        raise InputError(f"iou_thresholds must be numbers in (0, 1], not "
                         f"{iou_thresholds!r}.") from None
    if not iou_thresholds or not all(0 < t <= 1 for t in iou_thresholds):
        raise InputError(f"iou_thresholds must be numbers in (0, 1], not {iou_thresholds!r}.")

    # class names -> 1..K, shared by all images
    if class_agnostic:
        classes = ["all"]
    else:
        names = set()
        for k, (pred, true) in enumerate(pairs):
            for table, what in ((pred, "predictions"), (true, "truth")):
                if label not in table.colnames:
                    raise InputError(f"The {what} of image {k} have no {label!r} column (needed "
                                     "unless class_agnostic=True); columns: "
                                     f"{table.colnames}.")
                names.update(as_labels(table[label], f"{label!r} column of the {what} of "
                                                     f"image {k}").tolist())
        classes = sorted(names, key=lambda c: (str(type(c)), c))
    class_id = {c: i + 1 for i, c in enumerate(classes)}

    preds, target = [], []
    n_truth = np.zeros(len(classes), int)
    n_pred = np.zeros(len(classes), int)
    most = 1
    for k, (pred, true) in enumerate(pairs):
        if score not in pred.colnames:
            raise InputError(f"The predictions of image {k} have no {score!r} column; "
                             f"columns: {pred.colnames}. Pass score= to name another.")
        pboxes = boxes_from_table(pred, f"the predictions of image {k}")
        tboxes = boxes_from_table(true, f"the truth of image {k}")
        scores = np.asarray(getattr(pred[score], "value", pred[score]), dtype=np.float64)
        if not np.all(np.isfinite(scores)):
            raise InputError(f"The {score!r} column of the predictions of image {k} has "
                             "non-finite values.")
        plab = _class_ids(pred, label, class_id, class_agnostic)
        tlab = _class_ids(true, label, class_id, class_agnostic)
        np.add.at(n_pred, plab - 1, 1)
        np.add.at(n_truth, tlab - 1, 1)
        most = max(most, len(pboxes))
        preds.append({"boxes": torch.from_numpy(pboxes), "labels": torch.from_numpy(plab),
                      "scores": torch.from_numpy(scores.astype(np.float32))})
        target.append({"boxes": torch.from_numpy(tboxes), "labels": torch.from_numpy(tlab)})

    if max_detections is None:
        max_detections = most
    elif isinstance(max_detections, bool) or not isinstance(max_detections, (int, np.integer)) \
            or max_detections < 1:
        raise InputError(f"max_detections must be a positive integer, not {max_detections!r}.")
    max_detections = int(max_detections)
    thresholds = sorted({1, min(10, max_detections), max_detections})
    while len(thresholds) < 3:  # torchmetrics wants three
        thresholds.insert(0, thresholds[0])
    metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox",
                                  iou_thresholds=list(iou_thresholds),
                                  max_detection_thresholds=thresholds, class_metrics=False,
                                  extended_summary=True, backend="pycocotools")
    metric.warn_on_many_detections = False
    metric.update(preds, target)
    result = metric.compute()

    precision = result["precision"].numpy() if "precision" in result else None
    recall = result["recall"].numpy() if "recall" in result else None
    # precision: (T, R, K, A, M); recall: (T, K, A, M); area "all", most detections
    k_all = np.arange(len(classes))
    per_map, per_map50 = [], []

    def ap(t_index, k_index):
        if precision is None:
            return np.nan
        p = precision[t_index][:, :, k_index, 0, -1]
        p = p[p > -1]
        return float(p.mean()) if p.size else np.nan

    t50 = _index_of(iou_thresholds, 0.5)
    t75 = _index_of(iou_thresholds, 0.75)
    t_all = np.arange(len(iou_thresholds))
    for k in k_all:
        per_map.append(ap(t_all, [k]))
        per_map50.append(ap([t50], [k]) if t50 is not None else np.nan)
    mar = np.nan
    if recall is not None:
        r = recall[:, :, 0, -1]
        r = r[r > -1]
        mar = float(r.mean()) if r.size else np.nan

    per_class = QTable(meta=provenance(packages=("torchmetrics", "pycocotools"),
                                       stage="evaluate", metric="detection mAP"))
    per_class["label"] = np.array(classes)
    per_class["label"].description = "Class"
    per_class["map"] = per_map
    per_class["map"].description = "Average precision over the IoU thresholds"
    per_class["map_50"] = per_map50
    per_class["map_50"].description = "Average precision at IoU 0.5"
    per_class["n_truth"] = n_truth
    per_class["n_truth"].description = "Number of true boxes of this class"
    per_class["n_predictions"] = n_pred
    per_class["n_predictions"].description = "Number of predicted boxes of this class"
    return {
        "map": ap(t_all, k_all),
        "map_50": ap([t50], k_all) if t50 is not None else np.nan,
        "map_75": ap([t75], k_all) if t75 is not None else np.nan,
        "mar": mar,
        "per_class": per_class,
        "n_images": len(pairs),
        "n_truth": int(n_truth.sum()),
        "n_predictions": int(n_pred.sum()),
        "iou_thresholds": list(iou_thresholds),
    }


def _index_of(values, target):
    for i, v in enumerate(values):
        if abs(v - target) < 1e-9:
            return i
    return None


def _class_ids(table, label, class_id, class_agnostic):
    if class_agnostic:
        return np.ones(len(table), dtype=np.int64)
    labels = as_labels(table[label], f"{label!r} column")
    return np.array([class_id[v] for v in labels.tolist()], dtype=np.int64)


def _image_pairs(predictions, truth):
    """A list of (predictions, truth) tables, one pair per image."""
    if truth is None:
        if not isinstance(predictions, (list, tuple)) or not all(
                isinstance(p, (list, tuple)) and len(p) == 2 for p in predictions):
            raise InputError("Without truth, predictions must be a list of (predictions, "
                             "truth) table pairs, one per image.")
        pairs = [tuple(p) for p in predictions]
    elif isinstance(predictions, Table) and isinstance(truth, Table):
        has = ("image" in predictions.colnames, "image" in truth.colnames)
        if has == (True, True):
            pimg = as_labels(predictions["image"], "'image' column of the predictions")
            timg = as_labels(truth["image"], "'image' column of the truth")
            images = list(dict.fromkeys(timg.tolist() + pimg.tolist()))
            pairs = [(predictions[pimg == i], truth[timg == i]) for i in images]
        elif any(has):
            which = "predictions" if has[0] else "truth"
            raise InputError(f"Only the {which} table has an 'image' column; give both tables "
                             "one (the image each row belongs to) or neither.")
        else:
            pairs = [(predictions, truth)]
    elif isinstance(predictions, (list, tuple)) and isinstance(truth, (list, tuple)):
        if len(predictions) != len(truth):
            raise InputError(f"predictions has {len(predictions)} tables but truth has "
                             f"{len(truth)}; give one of each per image.")
        pairs = list(zip(predictions, truth))
    else:
        raise InputError("predictions and truth must be two tables, two lists of tables (one "
                         f"per image), or a list of pairs; got {type(predictions).__name__} "
                         f"and {type(truth).__name__}.")
    if not pairs:
        raise InputError("No image to score: predictions and truth are empty lists.")
    for k, (pred, true) in enumerate(pairs):
        for table, what in ((pred, "predictions"), (true, "truth")):
            if not isinstance(table, Table):
                raise InputError(f"The {what} of image {k} must be an astropy Table, not "
                                 f"{type(table).__name__}.")
    return pairs
