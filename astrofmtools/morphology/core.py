# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""`measure_morphology`: statmorph's non-parametric morphology of every cutout."""

import inspect
import logging
import warnings

import numpy as np
import astropy.units as u
from astropy.table import QTable

from ..exceptions import InputError
from ..utils import progress, provenance
from .columns import FLAG_FAILED, FLAG_NO_SOURCE, MORPHOLOGY_COLUMNS
from .segment import _central_label, _given_labels, _noise, _segment_cutout

__all__ = ["measure_morphology"]

log = logging.getLogger("astrofmtools")

__doctest_requires__ = {("measure_morphology",): ["statmorph"]}

#: Settings of ``statmorph.SourceMorphology`` that `measure_morphology` sets itself.
_OWN = ("image", "segmap", "label", "mask", "weightmap", "gain", "psf", "self")

#: The columns added, in order: statmorph's, with the background and noise before the flags.
_COLUMN_ORDER = (list(MORPHOLOGY_COLUMNS)[:-2] + ["cutout_background", "cutout_rms"]
                 + list(MORPHOLOGY_COLUMNS)[-2:])


def measure_morphology(cutouts, segmentation=None, psf=None, gain=None, weightmap=None,
                       snr=5.0, island_snr=2.0, npixels=10, smooth_fwhm=3.0, deblend=True,
                       band=None, subtract_background=True, **statmorph_options):
    """
    Non-parametric morphology of every cutout (statmorph): CAS, Gini-M20, MID, Sersic.

    Each cutout is measured on its own with ``statmorph.source_morphology``
    (Rodriguez-Gomez et al. 2019), in three steps:

    1. **Background and noise**: the sigma-clipped (3 sigma) median and
       standard deviation of the cutout's valid pixels, measured again
       without the pixels of the sources found in step 2 (grown by about
       twice ``smooth_fwhm``, so that faint wings do not bias the
       background). The median is subtracted (``subtract_background``):
       statmorph needs a background-subtracted image.
    2. **Segmentation** (unless ``segmentation`` is given): the
       ``astrofmtools.sources.find_sources`` table gives no segmentation
       map, so the cutout gets its own, as photutils
       `~photutils.segmentation.detect_sources` does it: the cutout is
       smoothed with a Gaussian of FWHM ``smooth_fwhm`` pixels, and a
       segment is an 8-connected island of at least ``npixels`` pixels
       above ``island_snr`` sigma of the smoothed cutout's own noise,
       whose peak reaches ``snr`` sigma. The source measured is the
       segment that contains the source's position in the cutout
       (``cutout_x``, ``cutout_y`` of the stack's table; the cutout's
       centre without them) or, if none does, the segment nearest to it.
       With ``deblend``, that segment is first split between its peaks
       (photutils `~photutils.segmentation.deblend_sources`, 32 levels,
       contrast 0.001), so that a touching neighbour becomes a segment of
       its own. The other segments are masked: neighbours do not count.
    3. **statmorph**, with the weight map (the standard deviation of each
       pixel) taken as the sigma-clipped background RMS of step 1 in every
       pixel, unless ``gain`` (statmorph then adds the sources' Poisson
       noise) or ``weightmap`` is given. Pixels without data (NaN, Inf)
       are masked.

    A cutout without a source gets NaN values and ``flag`` =
    ``flag_sersic`` = 5 (`FLAG_NO_SOURCE`); one whose measurement fails
    (statmorph's "catastrophic" flag, or an error inside statmorph) gets
    NaN values and ``flag`` = 4 (`FLAG_FAILED`). Neither raises.

    Parameters
    ----------
    cutouts : `~astrofmtools.cutouts.CutoutStack` or array-like
        The cutouts: a stack, or an ``(N, H, W)`` array (one ``(H, W)``
        image is one cutout). Multi-band stacks need ``band``.
    segmentation : array-like of int, optional
        Segmentation maps to use instead of step 2: ``(N, H, W)``, or one
        ``(H, W)`` map for all cutouts; 0 is the sky. The source measured
        is the segment at (or nearest to) the source's position; the other
        segments are masked.
    psf : 2-D array or float, optional
        The PSF, for the Sersic fit: an image (normalised here to unit
        sum) or the FWHM in pixels of a circular Gaussian. Without it the
        Sersic model is not convolved.
    gain : float, optional
        Electrons per data unit; statmorph then makes the weight map from
        the background noise and the sources' Poisson noise.
    weightmap : array-like, optional
        The standard deviation of each pixel: ``(N, H, W)`` or one
        ``(H, W)`` map for all cutouts.
    snr : float, optional
        The significance (in sigma of the smoothed cutout) that a
        segment's peak must reach to count as a source.
    island_snr : float, optional
        The significance down to which segments extend.
    npixels : int, optional
        The least number of pixels in a segment.
    smooth_fwhm : float, optional
        FWHM (pixels) of the Gaussian the cutout is smoothed with for the
        segmentation; 0 does not smooth.
    deblend : bool, optional
        Split the central segment between its peaks. Set False to measure
        interacting pairs as one source (merger statistics).
    band : int or str, optional
        The band to measure, for multi-band ``(N, C, H, W)`` cutouts.
    subtract_background : bool, optional
        Subtract the sigma-clipped median of step 1. Set False for cutouts
        whose background is subtracted already.
    **statmorph_options
        More settings of ``statmorph.SourceMorphology`` (``cutout_extent``,
        ``eta``, ``sersic_fitting_args``, ...).

    Returns
    -------
    table : `~astropy.table.QTable`
        One row per cutout: the stack's table (``id``, sky positions...;
        an input column with the name of one of the columns below is kept
        as ``<name>_input``), then the columns of `MORPHOLOGY_COLUMNS`, with
        statmorph's names (lengths in ``u.pix`` of the cutout, angles in
        degrees from +x counter-clockwise, the rest without unit):

        - ``xc_centroid``, ``yc_centroid``: centroid (0-based cutout pixel);
        - ``concentration``, ``asymmetry``, ``smoothness``: CAS;
        - ``gini``, ``m20``, ``gini_m20_bulge``, ``gini_m20_merger``:
          Gini, M20 and the bulge and merger statistics;
        - ``multimode``, ``intensity``, ``deviation``: MID;
          ``shape_asymmetry``;
        - ``sersic_n``, ``sersic_rhalf``, ``sersic_ellip``,
          ``sersic_theta``: the 2-D Sersic fit;
        - ``ellipticity_asymmetry``, ``ellipticity_centroid``,
          ``orientation_asymmetry``: shapes from second moments;
        - ``r20``, ``r50``, ``r80``, ``rpetro_circ``, ``rhalf_circ``: radii;
        - ``sn_per_pixel``; ``segment_area`` (pix2);
        - ``cutout_background``, ``cutout_rms``: the background subtracted
          and the noise (the stack's unit);
        - ``flag`` (0 good, 1 suspect, 2 bad, 4 failed, 5 no source) and
          ``flag_sersic`` (the same for the Sersic fit).

        ``meta`` holds the stack's metadata, then ``stage``
        (``'morphology'``), the settings, the number of cutouts flagged 4
        and 5, the date and the versions of statmorph and photutils.

    Raises
    ------
    astrofmtools.InputError
        For cutouts that are not ``(N, H, W)`` (or multi-band without
        ``band``), a ``segmentation``, ``weightmap`` or ``psf`` of the
        wrong shape, invalid thresholds, or an unknown statmorph option;
        ImportError without statmorph (``pip install
        astrofmtools[morphology]``).

    Examples
    --------
    An exponential disc (Sersic n = 1) and pure noise:

    >>> import numpy as np
    >>> from astropy.modeling.models import Sersic2D
    >>> from astrofmtools.morphology import measure_morphology
    >>> yy, xx = np.mgrid[:64, :64]
    >>> disc = Sersic2D(amplitude=20, r_eff=6, n=1, x_0=31.5, y_0=32, ellip=0.3)(xx, yy)
    >>> rng = np.random.default_rng(0)
    >>> cutouts = np.stack([disc, np.zeros((64, 64))]) + rng.normal(0, 1, (2, 64, 64))
    >>> table = measure_morphology(cutouts)
    >>> for row in table:
    ...     print(f"n = {row['sersic_n']:.1f}, Gini = {row['gini']:.2f}, "
    ...           f"C = {row['concentration']:.2f}, flag = {row['flag']}")
    n = 1.0, Gini = 0.48, C = 2.76, flag = 0
    n = nan, Gini = nan, C = nan, flag = 5
    >>> table["sersic_rhalf"][0].round(1)
    <Quantity 5.9 pix>
    """
    statmorph = _import_statmorph()
    options = _check_options(statmorph, statmorph_options)
    data, table, unit = _parse_cutouts(cutouts, band)
    n, shape = data.shape[0], data.shape[1:]
    for name, value in (("snr", snr), ("island_snr", island_snr)):
        if not np.isfinite(value) or value <= 0:
            raise InputError(f"{name} must be a positive number, not {value!r}.")
    if int(npixels) != npixels or npixels < 1:
        raise InputError(f"npixels must be a positive integer, not {npixels!r}.")
    if not np.isfinite(smooth_fwhm) or smooth_fwhm < 0:
        raise InputError(f"smooth_fwhm must be a number of pixels >= 0, not {smooth_fwhm!r}.")
    if gain is not None and (not np.isfinite(gain) or gain <= 0):
        raise InputError(f"gain must be a positive number of electrons per data unit, not "
                         f"{gain!r}.")
    labels = None if segmentation is None else _given_labels(segmentation, n, shape)
    weights = None if weightmap is None else _per_cutout(weightmap, n, shape, "weightmap")
    psf_image = _psf_image(psf)
    xs, ys = _positions(table, n, shape)

    values = {name: np.full(n, np.nan) for name in MORPHOLOGY_COLUMNS}
    for name in ("flag", "flag_sersic"):
        values[name] = np.zeros(n, np.int16)
    background, rms = np.full(n, np.nan), np.full(n, np.nan)
    for k in progress(range(n), desc="morphology", unit="cutout", total=n):
        row = _measure_one(statmorph, data[k], xs[k], ys[k],
                           None if labels is None else labels[k],
                           None if weights is None else weights[k], gain, psf_image, options,
                           dict(snr=snr, island_snr=island_snr, npixels=int(npixels),
                                smooth_fwhm=float(smooth_fwhm), deblend=bool(deblend)),
                           subtract_background)
        background[k], rms[k] = row.pop("cutout_background"), row.pop("cutout_rms")
        for name, value in row.items():
            values[name][k] = value
    return _morphology_table(table, values, background, rms, unit, dict(
        segmentation="given" if labels is not None else
        "detect_sources on the smoothed cutout (the central segment)",
        weightmap="given" if weights is not None else
        ("statmorph from gain" if gain is not None else "background rms"),
        gain=None if gain is None else float(gain),
        psf=None if psf is None else ("image" if np.ndim(psf) else float(psf)),
        snr=float(snr), island_snr=float(island_snr), npixels=int(npixels),
        smooth_fwhm=float(smooth_fwhm), deblend=bool(deblend), band=band,
        subtract_background=bool(subtract_background),
        statmorph_options={k: repr(v) for k, v in options.items()}))


def _import_statmorph():
    try:
        import statmorph
    except ImportError:
        raise ImportError("measure_morphology needs statmorph: pip install "
                          "'astrofmtools[morphology]' (or statmorph).") from None
    return statmorph


def _check_options(statmorph, options):
    """The statmorph settings, checked against ``SourceMorphology``'s own."""
    known = [p for p in inspect.signature(statmorph.SourceMorphology.__init__).parameters
             if p not in _OWN]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise InputError(f"Unknown statmorph option(s) {', '.join(map(repr, unknown))}; "
                         f"statmorph.SourceMorphology takes {', '.join(known)}.")
    return dict(options)


def _parse_cutouts(cutouts, band):
    """(N, H, W) float64 pixels, the table (or None) and the unit of any cutout input."""
    from ..cutouts import CutoutStack
    table = unit = None
    if isinstance(cutouts, CutoutStack):
        if cutouts.data.ndim == 4 and band is not None and cutouts.bands is not None:
            cutouts = cutouts.band(band)
            band = None
        table, unit, data = cutouts.table, cutouts.unit, cutouts.data
    else:
        data = np.asarray(getattr(cutouts, "value", cutouts))
        unit = getattr(cutouts, "unit", None)
        if data.ndim == 2:
            data = data[np.newaxis]
    if data.ndim == 4:
        if band is None:
            raise InputError(f"The cutouts have {data.shape[1]} bands (shape {data.shape}); "
                             "say which to measure with band=.")
        if isinstance(band, str) or not -data.shape[1] <= int(band) < data.shape[1]:
            raise InputError(f"band={band!r} is not one of the {data.shape[1]} bands of the "
                             f"cutouts (give an index 0..{data.shape[1] - 1}).")
        data = data[:, int(band)]
    if data.ndim != 3 or 0 in data.shape[1:]:
        raise InputError(f"cutouts must be a CutoutStack or an (N, H, W) array; got shape "
                         f"{data.shape}.")
    if data.dtype.kind not in "fiu":
        raise InputError(f"cutouts must hold numbers, not {data.dtype}.")
    return data.astype(np.float64), table, unit


def _per_cutout(value, n, shape, what):
    """A per-pixel map as (N, H, W): given so, or one (H, W) map for all."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 2:
        array = np.broadcast_to(array, (n,) + array.shape)
    if array.shape != (n,) + tuple(shape):
        raise InputError(f"{what} has shape {np.shape(value)}; give ({n}, {shape[0]}, "
                         f"{shape[1]}) or ({shape[0]}, {shape[1]}) for all cutouts.")
    return array


def _psf_image(psf):
    """The PSF as a unit-sum image: given, or a circular Gaussian of FWHM ``psf`` pixels."""
    if psf is None:
        return None
    if np.ndim(psf) == 0:
        fwhm = float(psf)
        if not np.isfinite(fwhm) or fwhm <= 0:
            raise InputError(f"psf must be an image or a FWHM in pixels > 0, not {psf!r}.")
        sigma = fwhm / np.sqrt(8.0 * np.log(2.0))
        half = max(2, int(np.ceil(4 * sigma)))
        yy, xx = np.mgrid[-half:half + 1, -half:half + 1]
        image = np.exp(-(xx ** 2 + yy ** 2) / (2 * sigma ** 2))
    else:
        image = np.asarray(psf, dtype=np.float64)
        if image.ndim != 2 or not np.isfinite(image).all() or image.sum() <= 0:
            raise InputError(f"psf must be a 2-D image of finite values with a positive sum "
                             f"(or a FWHM in pixels); got shape {image.shape}.")
    return image / image.sum()


def _positions(table, n, shape):
    """Each source's (x, y) in its cutout: ``cutout_x``/``cutout_y``, else the centre."""
    h, w = shape
    xs, ys = np.full(n, (w - 1) / 2.0), np.full(n, (h - 1) / 2.0)
    if table is not None and {"cutout_x", "cutout_y"} <= set(table.colnames):
        x = np.asarray(u.Quantity(table["cutout_x"]).value, dtype=float)
        y = np.asarray(u.Quantity(table["cutout_y"]).value, dtype=float)
        good = np.isfinite(x) & np.isfinite(y)
        xs[good], ys[good] = x[good], y[good]
    return xs, ys


def _measure_one(statmorph, data, x, y, labels, weights, gain, psf, options, seg,
                 subtract_background):
    """The morphology columns of one cutout (a dict), never raising for bad data."""
    out = {"flag": FLAG_NO_SOURCE, "flag_sersic": FLAG_NO_SOURCE}
    valid = np.isfinite(data)
    if labels is None:
        found = _segment_cutout(data, x, y, seg["snr"], seg["island_snr"], seg["npixels"],
                                seg["smooth_fwhm"], seg["deblend"])
        background, rms, labels, central = (found.background, found.rms, found.labels,
                                            found.central)
    else:
        background, rms = (_noise(data, labels > 0) if np.count_nonzero(valid) >= 16
                           else (np.nan, np.nan))
        central = _central_label(labels, np.where(labels > 0, np.inf, 0.0), x, y, 1.0)
    out["cutout_background"], out["cutout_rms"] = background, rms
    if central == 0 or not (np.isfinite(rms) and rms > 0):
        return out
    segment = labels == central
    out["segment_area"] = np.count_nonzero(segment)
    image = data - background if subtract_background else data.copy()
    image[~valid] = 0.0
    mask = ~valid | ((labels > 0) & ~segment)
    if weights is None and gain is None:
        weights = np.full(data.shape, rms)
    elif weights is not None:
        weights = np.where(np.isfinite(weights) & (weights > 0), weights, rms)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with np.errstate(all="ignore"):
                morph = statmorph.source_morphology(
                    image, segment.astype(np.int32), mask=mask, weightmap=weights,
                    gain=gain, psf=psf, **options)[0]
    except Exception as exc:  # noqa: BLE001 - one bad cutout must not stop the others
        log.debug("statmorph failed on a cutout: %s: %s", type(exc).__name__, exc)
        out["flag"] = out["flag_sersic"] = FLAG_FAILED
        return out
    for w in caught:
        log.debug("statmorph: %s", w.message)
    for name, (attr, unit, _) in MORPHOLOGY_COLUMNS.items():
        if attr is None or name.startswith("flag"):
            continue
        value = float(morph[attr])
        if value == -99.0 or not np.isfinite(value):
            value = np.nan
        elif unit is u.deg:  # an axis: the same modulo 180 deg; given in (-90, 90]
            value = float(np.degrees(value))
            value -= 180.0 * np.ceil((value - 90.0) / 180.0)
        out[name] = value
    out["flag"], out["flag_sersic"] = int(morph.flag), int(morph.flag_sersic)
    if out["flag"] >= FLAG_FAILED:
        out["flag"] = out["flag_sersic"] = FLAG_FAILED
    return out


def _morphology_table(table, values, background, rms, unit, settings):
    """The input table (renamed where needed) with the morphology columns and metadata."""
    n = len(values["flag"])
    table = QTable() if table is None else QTable(table, copy=True)
    renamed = {}
    for name in _COLUMN_ORDER:
        if name in table.colnames:
            table.rename_column(name, f"{name}_input")
            renamed[name] = f"{name}_input"
    if not table.colnames:
        table = QTable(meta=table.meta)
    extra = {"cutout_background": (unit, "Background subtracted before measuring "
                                          "(sigma-clipped median)"),
             "cutout_rms": (unit, "Noise of the cutout (sigma-clipped standard deviation, "
                                  "corrected for the clipping)")}
    values = dict(values, cutout_background=background, cutout_rms=rms)
    for name in _COLUMN_ORDER:
        col_unit, description = (extra[name] if name in extra
                                 else MORPHOLOGY_COLUMNS[name][1:])
        column = values[name]
        if name == "segment_area":
            column = np.nan_to_num(column, nan=0).astype(np.int64)
        table[name] = column * col_unit if col_unit is not None else column
        table[name].info.description = description
    flags = np.asarray(table["flag"])
    meta = provenance(stage="morphology", packages=("statmorph", "photutils"), **settings,
                      n_cutouts=n, n_failed=int(np.count_nonzero(flags == FLAG_FAILED)),
                      n_no_source=int(np.count_nonzero(flags == FLAG_NO_SOURCE)))
    if renamed:
        meta["renamed_columns"] = renamed
    table.meta.update(meta)
    return table
