# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Detection scores: COCO mean average precision from boxes, and the
radio-astronomy view, completeness and reliability against SNR from
positions.
"""

import warnings

import numpy as np
import astropy.units as u
from astropy.table import QTable, Table

from ..exceptions import InputError
from ..schema import BBOX_COLUMNS, as_labels, bbox_values, boxes_from_table, parse_positions
from ..utils import provenance, save_figure

__all__ = ["detection_map", "match_positions", "completeness_reliability",
           "plot_completeness_reliability", "DEFAULT_SNR_BINS"]

# torchmetrics and pycocotools are optional dependencies (the ``ml`` extra)
__doctest_requires__ = {"detection_map": ["torch", "torchmetrics", "pycocotools"],
                        "plot_completeness_reliability": ["matplotlib"]}

#: Default edges of the SNR bins (the last bin is open-ended).
DEFAULT_SNR_BINS = (3.0, 5.0, 7.0, 10.0, 20.0, 50.0, 100.0, np.inf)

#: One-sigma (68.27 per cent) confidence level of the binomial intervals.
ONE_SIGMA = 0.682689492137


# ----------------------------------------------------------------------------
# mAP


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


# ----------------------------------------------------------------------------
# positional matching


def match_positions(predictions, truth, max_sep):
    """
    Match detections to true sources one to one by position, nearest first.

    Every pair closer than ``max_sep`` is a candidate; pairs are taken in
    order of increasing separation and a pair is kept when neither its
    detection nor its true source is already matched (ties: by truth row,
    then detection row). Candidate pairs come from a k-d tree
    (`scipy.spatial.cKDTree` for pixels,
    `~astropy.coordinates.search_around_sky` on the sky).

    Parameters
    ----------
    predictions, truth : `~astropy.table.Table`
        With ``x``, ``y`` (0-based pixel) for a separation in pixels, or
        ``sky_centroid`` (or ``ra``, ``dec`` in degrees) for an angle.
    max_sep : float or `~astropy.units.Quantity`
        Largest separation of a match (inclusive): pixels (a number or
        ``u.pix``) or an angle.

    Returns
    -------
    pred_index, truth_index : `~numpy.ndarray` of int
        Rows of the matched pairs, sorted by truth row.
    sep : `~numpy.ndarray` or `~astropy.units.Quantity`
        Their separations (pixels, or arcsec for an angle).

    Examples
    --------
    >>> from astropy.table import QTable
    >>> from astrofmtools.evaluate import match_positions
    >>> truth = QTable({"x": [10.0, 50.0], "y": [10.0, 50.0]})
    >>> found = QTable({"x": [10.5, 11.0, 80.0], "y": [10.0, 10.0, 80.0]})
    >>> match_positions(found, truth, max_sep=2)
    (array([0]), array([0]), array([0.5]))
    """
    sep_pix, angle = _parse_sep(max_sep)
    if angle is None:
        p = _pixel_xy(predictions, "predictions")
        t = _pixel_xy(truth, "truth")
        if len(p) == 0 or len(t) == 0:
            return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
        from scipy.spatial import cKDTree
        pairs = cKDTree(t).sparse_distance_matrix(cKDTree(p), sep_pix, output_type="ndarray")
        ti, pi, d = pairs["i"].astype(int), pairs["j"].astype(int), pairs["v"]
        ok = np.isfinite(d)
    else:
        from astropy.coordinates import search_around_sky
        p, p_valid = _sky(predictions, "predictions")
        t, t_valid = _sky(truth, "truth")
        if not p_valid.any() or not t_valid.any():
            return np.zeros(0, int), np.zeros(0, int), np.zeros(0) * u.arcsec
        p_rows, t_rows = np.flatnonzero(p_valid), np.flatnonzero(t_valid)
        ti, pi, d2d, _ = search_around_sky(t[t_valid], p[p_valid], angle)
        ti, pi = t_rows[ti], p_rows[pi]
        d = d2d.to_value(u.arcsec)
        ok = np.isfinite(d)
    ti, pi, d = ti[ok], pi[ok], d[ok]
    from ..catalog.matching import _one_to_one  # the greedy of crossmatch(mode="best")
    keep = _one_to_one(ti.astype(np.int64), pi.astype(np.int64), d)
    keep = keep[np.lexsort((pi[keep], ti[keep]))] if keep.size else keep
    sep = d[keep]
    return pi[keep], ti[keep], (sep * u.arcsec if angle is not None else sep)


def _parse_sep(max_sep):
    """(pixels, None) or (None, angle)."""
    if isinstance(max_sep, u.Quantity):
        if max_sep.unit == u.pix:
            value, angle = float(max_sep.value), None
        elif max_sep.unit.physical_type == "angle":
            value, angle = float(max_sep.to_value(u.arcsec)), max_sep.to(u.arcsec)
        else:
            raise InputError(f"max_sep must be in pixels or an angle, not {max_sep.unit}.")
    else:
        try:
            value, angle = float(max_sep), None
        except (TypeError, ValueError):
            raise InputError(f"max_sep must be a number of pixels or an angle, not "
                             f"{max_sep!r}.") from None
    if not np.isfinite(value) or value <= 0:
        raise InputError(f"max_sep must be positive and finite, not {max_sep!r}.")
    return (value if angle is None else None), angle


def _pixel_xy(table, what):
    pos = parse_positions(table, kind="pixel", name=f"The {what} table",
                          hint="(a separation in pixels needs them; give max_sep as an angle "
                               "to match on the sky)")
    xy = np.column_stack([pos.x, pos.y])
    xy[~pos.valid] = np.inf  # never matched
    return xy.reshape(-1, 2)


def _sky(table, what):
    pos = parse_positions(table, kind="sky", name=f"The {what} table",
                          hint="(max_sep is an angle: matching is on the sky)")
    return pos.sky, pos.valid


# ----------------------------------------------------------------------------
# completeness and reliability


def completeness_reliability(predictions, truth, snr_bins=DEFAULT_SNR_BINS, max_sep=None,
                             snr_column="snr", image=None, noise=None,
                             confidence_level=ONE_SIGMA):
    """
    Completeness and reliability of a source catalogue in bins of SNR.

    As source-finding data challenges report them: the detections are
    matched one to one to the true sources by position
    (`match_positions`). The **completeness** in a bin of *true* SNR is the
    fraction of the true sources in that bin that are matched; the
    **reliability** in a bin of *detected* SNR is the fraction of the
    detections in that bin that are matched to a true source. Each comes
    with its count and a binomial (Wilson score) interval.

    Parameters
    ----------
    predictions : `~astropy.table.Table`
        Detections with positions (``x``, ``y`` or sky columns, see
        `match_positions`) and, ideally, their own SNR (``snr_column``).
    truth : `~astropy.table.Table`
        True sources with positions and ``snr_column``. Pass the subset to
        score (e.g. ``truth[truth["kind"] == "compact"]``).
    snr_bins : sequence of float, optional
        Increasing bin edges; bins are ``[low, high)`` and the last edge
        may be ``numpy.inf``. Objects below the first edge are in no bin
        but count in the totals.
    max_sep : float or `~astropy.units.Quantity`, optional
        Largest separation of a match: pixels, or an angle. By default
        half the beam FWHM of ``image`` (the usual choice in beam units,
        e.g. ``0.5 * image.beam_pixels[0]`` pixels).
    snr_column : str, optional
        The SNR column of ``truth``, and of ``predictions`` if they have one.
    image : `~astrofmtools.io.SkyImage` or any input of `~astrofmtools.io.load_image`, optional
        The image the detections were made on. Without an SNR column in
        ``predictions``, each detection's SNR is measured on it: the
        brightest pixel inside its box (``bbox_*`` columns), or the pixel
        at ``x``, ``y``, divided by ``noise``.
    noise : float or `~numpy.ndarray`, optional
        Noise rms (the image unit) used to measure SNRs: a number or a map
        of the image's shape. By default the ``NOISE`` header card, else
        `~astropy.stats.mad_std` of the image's finite pixels.
    confidence_level : float, optional
        Of the Wilson intervals; one sigma by default.

    Returns
    -------
    table : `~astropy.table.QTable`
        One row per bin: ``snr_min``, ``snr_max``, ``n_true``, ``n_found``
        (true sources matched), ``completeness`` (= n_found / n_true),
        ``completeness_lo``, ``completeness_hi``, ``n_detected``,
        ``n_real`` (detections matched), ``reliability``
        (= n_real / n_detected), ``reliability_lo``, ``reliability_hi``.
        Fractions are NaN in a bin with no object. ``meta`` holds the
        totals (``completeness``, ``reliability``, ``n_truth``,
        ``n_predictions``, ``n_matched``), ``max_sep``, ``max_sep_unit``,
        ``detection_snr`` (where the detections' SNRs came from) and
        ``confidence_level``. Without any detection SNR (no column and no
        image) the false detections cannot be placed in bins: the
        reliability per bin is NaN and only the total is given.

    Raises
    ------
    astrofmtools.InputError
        For missing columns (named in the message), bad bins or a bad
        ``max_sep``.

    Examples
    --------
    >>> from astropy.table import QTable
    >>> from astrofmtools.evaluate import completeness_reliability
    >>> truth = QTable({"x": [10.0, 30, 50, 70], "y": [10.0, 10, 10, 10],
    ...                 "snr": [4.0, 6, 30, 60]})
    >>> found = QTable({"x": [30.4, 50.0, 70.2, 90.0], "y": [10.0, 10, 10, 10],
    ...                 "snr": [6.5, 29.0, 55.0, 5.5]})
    >>> t = completeness_reliability(found, truth, snr_bins=[3, 10, 100], max_sep=1.5)
    >>> t["snr_min", "snr_max", "n_true", "n_found", "completeness",
    ...   "n_detected", "n_real", "reliability"].pprint()
    snr_min snr_max n_true n_found completeness n_detected n_real reliability
    ------- ------- ------ ------- ------------ ---------- ------ -----------
        3.0    10.0      2       1        0.500          2      1       0.500
       10.0   100.0      2       2        1.000          2      2       1.000
    >>> t.meta["completeness"], t.meta["reliability"]
    (0.75, 0.75)
    """
    for table, what in ((predictions, "predictions"), (truth, "truth")):
        if not isinstance(table, Table):
            raise InputError(f"{what} must be an astropy Table, not {type(table).__name__}.")
    edges = _check_bins(snr_bins)
    if snr_column not in truth.colnames:
        raise InputError(f"The truth table has no {snr_column!r} column; columns: "
                         f"{truth.colnames}. Pass snr_column= to name another.")
    loaded = None
    if image is not None:
        from ..io import load_image
        loaded = load_image(image)
    if max_sep is None:
        if loaded is None or loaded.beam_pixels is None:
            raise InputError("Give max_sep (pixels or an angle), or an image with a beam and a "
                             "WCS, whose half FWHM is then the default.")
        max_sep = 0.5 * loaded.beam_pixels[0]
    pred_index, truth_index, sep = match_positions(predictions, truth, max_sep)
    _, angle = _parse_sep(max_sep)

    true_snr = _snr_values(truth[snr_column], f"truth column {snr_column!r}")
    if snr_column in predictions.colnames:
        det_snr = _snr_values(predictions[snr_column], f"predictions column {snr_column!r}")
        source = f"predictions column {snr_column!r}"
    elif loaded is not None:
        det_snr = _measure_snr(predictions, loaded, noise)
        source = "measured on the image: peak in the box / noise"
    else:
        det_snr = np.full(len(predictions), np.nan)
        source = "none (no SNR column, no image)"

    found = np.zeros(len(truth), bool)
    found[truth_index] = True
    real = np.zeros(len(predictions), bool)
    real[pred_index] = True

    lo, hi = edges[:-1], edges[1:]
    n_true = np.array([np.sum((true_snr >= a) & (true_snr < b)) for a, b in zip(lo, hi)])
    n_found = np.array([np.sum(found & (true_snr >= a) & (true_snr < b))
                        for a, b in zip(lo, hi)])
    if np.all(np.isnan(det_snr)) and len(predictions):
        n_det = np.zeros(len(lo), int)
        n_real = np.zeros(len(lo), int)
    else:
        n_det = np.array([np.sum((det_snr >= a) & (det_snr < b)) for a, b in zip(lo, hi)])
        n_real = np.array([np.sum(real & (det_snr >= a) & (det_snr < b))
                           for a, b in zip(lo, hi)])

    unit = "arcsec" if angle is not None else "pix"
    sep_value = float(angle.to_value(u.arcsec)) if angle is not None else _parse_sep(max_sep)[0]
    meta = provenance(stage="evaluate", metric="completeness and reliability vs SNR",
                      max_sep=sep_value, max_sep_unit=unit, snr_column=snr_column,
                      detection_snr=source, matching="one to one, nearest first",
                      confidence_level=float(confidence_level), n_truth=len(truth),
                      n_predictions=len(predictions), n_matched=int(len(pred_index)),
                      completeness=_fraction(found.sum(), len(truth)),
                      reliability=_fraction(real.sum(), len(predictions)))
    table = QTable(meta=meta)
    table["snr_min"] = lo
    table["snr_min"].description = "Lower edge of the SNR bin (inclusive)"
    table["snr_max"] = hi
    table["snr_max"].description = "Upper edge of the SNR bin (exclusive)"
    _add_fraction(table, "completeness", n_found, n_true, confidence_level,
                  ("n_true", "Number of true sources with their SNR in the bin"),
                  ("n_found", "Number of those matched to a detection"),
                  "Fraction of the true sources in the bin that were detected")
    _add_fraction(table, "reliability", n_real, n_det, confidence_level,
                  ("n_detected", "Number of detections with their SNR in the bin"),
                  ("n_real", "Number of those matched to a true source"),
                  "Fraction of the detections in the bin that are real")
    if np.all(np.isnan(det_snr)) and len(predictions):
        for name in ("reliability", "reliability_lo", "reliability_hi"):
            table[name] = np.nan
    return table


def _check_bins(snr_bins):
    try:
        edges = np.asarray(snr_bins, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(f"snr_bins must be a sequence of numbers, not {snr_bins!r}.") from None
    if len(edges) < 2 or np.any(np.isnan(edges)) or np.any(np.diff(edges) <= 0) \
            or np.isinf(edges[0]):
        raise InputError(f"snr_bins must be at least two increasing edges (the last may be "
                         f"inf), not {snr_bins!r}.")
    return edges


def _snr_values(column, what):
    try:
        values = np.asarray(getattr(column, "value", column), dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"The {what} must hold numbers.") from None
    if values.ndim != 1:
        raise InputError(f"The {what} must be one number per row.")
    return values


def _fraction(k, n):
    return float(k / n) if n else np.nan


def _add_fraction(table, name, k, n, confidence_level, n_col, k_col, description):
    from astropy.stats import binom_conf_interval

    table[n_col[0]] = n.astype(np.int64)
    table[n_col[0]].description = n_col[1]
    table[k_col[0]] = k.astype(np.int64)
    table[k_col[0]].description = k_col[1]
    frac = np.full(len(n), np.nan)
    low = np.full(len(n), np.nan)
    high = np.full(len(n), np.nan)
    has = n > 0
    if has.any():
        frac[has] = k[has] / n[has]
        interval = binom_conf_interval(k[has], n[has], confidence_level=confidence_level,
                                       interval="wilson")
        low[has], high[has] = interval
    table[name] = frac
    table[name].description = description
    table[f"{name}_lo"] = low
    table[f"{name}_lo"].description = f"Lower end of the Wilson interval of {name}"
    table[f"{name}_hi"] = high
    table[f"{name}_hi"].description = f"Upper end of the Wilson interval of {name}"
    for col in (name, f"{name}_lo", f"{name}_hi"):
        table[col].info.format = ".3f"


def _measure_snr(predictions, image, noise):
    """Peak pixel inside each detection's box (or at x, y) over the noise."""
    data = image.data
    ny, nx = data.shape[-2:]
    if noise is None:
        header = image.header
        if header is not None and "NOISE" in header:
            noise = float(header["NOISE"])
        else:
            from astropy.stats import mad_std
            step = max(1, int(np.sqrt(data.size / 4e6)))  # at most ~4 million pixels
            sample = np.asarray(data[::step, ::step], dtype=np.float64)
            noise = float(mad_std(sample, ignore_nan=True))
    noise_map = np.asarray(noise, dtype=np.float64)
    if noise_map.ndim not in (0, 2) or (noise_map.ndim == 2 and noise_map.shape != (ny, nx)):
        raise InputError(f"noise must be a number or a map of the image's shape {(ny, nx)}, "
                         f"not of shape {noise_map.shape}.")
    box = bbox_values(predictions, "the predictions", required=False)
    if box is not None:
        x0, x1, y0, y1 = (box[c] for c in BBOX_COLUMNS)
        x0, x1, y0, y1 = np.floor(x0), np.ceil(x1), np.floor(y0), np.ceil(y1)
    else:
        pos = parse_positions(predictions, kind="pixel", name="the predictions", required=False)
        if pos is None:
            raise InputError("To measure SNRs on the image the predictions need bbox_* "
                             f"columns or 'x' and 'y'; columns: {predictions.colnames}.")
        x0 = x1 = np.round(pos.x)
        y0 = y1 = np.round(pos.y)
    snr = np.full(len(predictions), np.nan)
    for i in range(len(predictions)):
        if not np.all(np.isfinite([x0[i], x1[i], y0[i], y1[i]])):
            continue
        xs = slice(int(max(x0[i], 0)), int(min(x1[i], nx - 1)) + 1)
        ys = slice(int(max(y0[i], 0)), int(min(y1[i], ny - 1)) + 1)
        block = np.asarray(data[ys, xs], dtype=np.float64)
        rms = noise_map[ys, xs] if noise_map.ndim == 2 else noise_map
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN boxes give NaN
            ratio = block / rms
            if ratio.size and np.isfinite(ratio).any():
                snr[i] = np.nanmax(ratio)
    return snr


# ----------------------------------------------------------------------------
# figure


def plot_completeness_reliability(results, path=None, overwrite=False, title=None, axes=None):
    """
    Draw completeness against true SNR and reliability against detected SNR.

    Parameters
    ----------
    results : `~astropy.table.Table` or dict
        A table from `completeness_reliability`, or a dict ``{name: table}``
        to compare several finders (one line each).
    path : str or `~pathlib.Path`, optional
        Save the figure to this PNG file (atomically).
    overwrite : bool, optional
        Replace an existing ``path``.
    title : str, optional
        Figure title.
    axes : pair of `~matplotlib.axes.Axes`, optional
        Draw the completeness and the reliability into these axes instead
        of a new figure (e.g. ``plt.subplots(1, 2)[1]``).

    Returns
    -------
    fig : `~matplotlib.figure.Figure`
        The figure (not registered with pyplot): two panels sharing a
        logarithmic SNR axis, ticked at the bin edges; each point is drawn
        at the geometric centre of its bin, with its Wilson interval (an
        open last bin is drawn as wide as the one before).

    Examples
    --------
    >>> from astropy.table import QTable
    >>> from astrofmtools.evaluate import (completeness_reliability,
    ...                                    plot_completeness_reliability)
    >>> truth = QTable({"x": [10.0, 30, 50, 70], "y": [10.0, 10, 10, 10],
    ...                 "snr": [4.0, 6, 30, 60]})
    >>> found = QTable({"x": [30.4, 50.0, 70.2, 90.0], "y": [10.0, 10, 10, 10],
    ...                 "snr": [6.5, 29.0, 55.0, 5.5]})
    >>> t = completeness_reliability(found, truth, snr_bins=[3, 10, 100], max_sep=1.5)
    >>> fig = plot_completeness_reliability({"my finder": t}, path="cr.png")
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['Completeness', 'Reliability']
    """
    from matplotlib.figure import Figure

    if isinstance(results, Table):
        results = {None: results}
    if not isinstance(results, dict) or not results:
        raise InputError("results must be a completeness_reliability table or a dict "
                         "{name: table}.")
    needed = ("snr_min", "snr_max", "completeness", "reliability")
    for name, table in results.items():
        if not isinstance(table, Table) or any(c not in table.colnames for c in needed):
            raise InputError(f"results[{name!r}] is not a completeness_reliability table "
                             f"(needs columns {needed}).")
    from matplotlib.ticker import NullLocator

    if axes is None:
        fig = Figure(figsize=(9.0, 3.8), layout="constrained")
        axes = fig.subplots(1, 2, sharex=True)
    else:
        axes = list(np.ravel(axes))
        if len(axes) != 2:
            raise InputError(f"axes must be two matplotlib Axes, got {len(axes)}.")
        fig = axes[0].figure
    ticks = set()
    for name, table in results.items():
        lo = np.asarray(table["snr_min"], dtype=float)
        hi = np.asarray(table["snr_max"], dtype=float)
        ticks.update(lo.tolist() + hi[np.isfinite(hi)].tolist())
        # an open last bin is drawn one previous-bin ratio wide
        width = np.where(np.isfinite(hi), hi / lo, np.nan)
        fallback = width[np.isfinite(width)][-1] if np.isfinite(width).any() else 2.0
        hi = np.where(np.isfinite(hi), hi, lo * fallback)
        x = np.sqrt(lo * hi)
        for ax, what, ylabel in ((axes[0], "completeness", "Completeness"),
                                 (axes[1], "reliability", "Reliability")):
            y = np.asarray(table[what], dtype=float)
            ok = np.isfinite(y)
            yerr = None
            if f"{what}_lo" in table.colnames:
                ylo = np.asarray(table[f"{what}_lo"], dtype=float)
                yhi = np.asarray(table[f"{what}_hi"], dtype=float)
                yerr = np.clip(np.vstack([y - ylo, yhi - y])[:, ok], 0, None)
            ax.errorbar(x[ok], y[ok], xerr=np.vstack([x - lo, hi - x])[:, ok], yerr=yerr,
                        marker="o", ms=4, capsize=2, lw=1.2, label=name)
            ax.set_ylabel(ylabel)
    axes[0].set_xlabel("True SNR")
    axes[1].set_xlabel("Detected SNR")
    ticks = sorted(ticks)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_ylim(-0.02, 1.05)
        ax.axhline(1.0, color="0.7", lw=0.8, zorder=0)
        ax.grid(alpha=0.3)
    if any(name is not None for name in results):
        axes[0].legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path, overwrite=overwrite)
    return fig
