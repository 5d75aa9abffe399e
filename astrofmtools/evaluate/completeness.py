# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Completeness and reliability of a source catalogue in bins of SNR, with
binomial (Wilson) intervals, as source-finding data challenges report them.
"""

import warnings

import numpy as np
import astropy.units as u
from astropy.table import QTable, Table

from ..exceptions import InputError
from ..schema import BBOX_COLUMNS, bbox_values, parse_positions
from ..utils import provenance
from .position_matching import _parse_sep, match_positions

__all__ = ["completeness_reliability", "DEFAULT_SNR_BINS"]

#: Default edges of the SNR bins (the last bin is open-ended).
DEFAULT_SNR_BINS = (3.0, 5.0, 7.0, 10.0, 20.0, 50.0, 100.0, np.inf)

#: One-sigma (68.27 per cent) confidence level of the binomial intervals.
ONE_SIGMA = 0.682689492137


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
