# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Source finding: matched filter, segmentation, deblending, measurement."""

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi
import astropy.units as u
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning
from photutils.segmentation import SegmentationImage, SourceCatalog, detect_sources
from photutils.utils import NoDetectionsWarning
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

from ..background import BackgroundMaps, estimate_background
from ..background.core import _image_arrays
from ..exceptions import InputError
from ..io import Tile, load_image, map_tiles, owned, plan_tiles, read_tile
from ..schema import BBOX_COLUMNS, add_sky_columns
from ..utils import provenance
from .filtering import (_central, beam_area_pixels, cov_to_fwhm, estimate_psf_fwhm,
                        filtered_noise_ratio, gaussian_cov, gaussian_filter_fft, noise_covariance,
                        pixel_angle_to_sky_pa, sky_pa_to_pixel_angle)

__all__ = ["find_sources", "SOURCE_COLUMNS"]

#: The columns of a `find_sources` table and their descriptions.
SOURCE_COLUMNS = {
    "id": "Source number, 1..N, in raster order of the peak pixel",
    "island": "Number of the island (connected region above island_snr) the source was "
              "deblended from; sources split from one island share it",
    "x": "Centroid x (0-based pixel; first moment of the background-subtracted image "
         "over the source's segment)",
    "y": "Centroid y (0-based pixel)",
    "sky_centroid": "Sky position of the centroid (ICRS)",
    "ra": "Right ascension of the centroid (ICRS)",
    "dec": "Declination of the centroid (ICRS)",
    "bbox_xmin": "Bounding box of the segment: first column (0-based pixel, inclusive)",
    "bbox_xmax": "Bounding box of the segment: last column (0-based pixel, inclusive)",
    "bbox_ymin": "Bounding box of the segment: first row (0-based pixel, inclusive)",
    "bbox_ymax": "Bounding box of the segment: last row (0-based pixel, inclusive)",
    "area": "Number of pixels in the segment",
    "peak": "Highest background-subtracted pixel value in the segment (image unit)",
    "flux": "Sum of the background-subtracted pixels in the segment; for images in "
            "X/beam, divided by the beam area in pixels (so Jy for Jy/beam)",
    "snr": "Peak / local RMS of the unfiltered image (the usual radio 'peak SNR')",
    "detection_snr": "Highest significance in the segment of the matched-filtered image, "
                     "in units of its own noise (what snr= thresholds)",
    "n_peaks": "Number of significant local maxima (>= snr, prominence >= peak_prominence) "
               "in the source's island",
    "semimajor": "Semi-major axis: 1-sigma of the Gaussian with the segment's second "
                 "moments (pixels; FWHM = 2.355 x this)",
    "semiminor": "Semi-minor axis: 1-sigma, as semimajor (pixels)",
    "orientation": "Angle of the major axis from the +x pixel axis, counter-clockwise "
                   "(degrees, 0-180)",
    "pa": "Position angle of the major axis on the sky, east of north (degrees, 0-180)",
}

#: Images with more pixels than this are processed in tiles.
TILE_ABOVE = 8192 * 8192


@dataclass
class _Plan:
    """Settings shared by all tiles: the detection filter and its noise."""

    snr: float
    island_snr: float
    npixels: int
    prominence: float
    deblend: bool
    psf_cov: np.ndarray
    psf_source: str
    noise_cov: np.ndarray
    filter_cov: object  # 2x2 array or None
    filter_noise_ratio: float
    box_size: int


def _psf_covariance(image, psf_fwhm):
    """The PSF covariance (pixels^2) from the user, the beam, or None."""
    if psf_fwhm is not None:
        if isinstance(psf_fwhm, u.Quantity) and psf_fwhm.unit.physical_type == "angle":
            if image.pixel_scale is None:
                raise InputError(f"psf_fwhm={psf_fwhm} is an angle, but {image.source} has no "
                                 "WCS to convert it to pixels; give it in pixels.")
            psf_fwhm = (psf_fwhm / image.pixel_scale).to_value(u.dimensionless_unscaled)
        elif isinstance(psf_fwhm, u.Quantity):
            psf_fwhm = psf_fwhm.to_value(u.pix)
        fwhm = np.atleast_1d(np.asarray(psf_fwhm, dtype=float))
        if fwhm.size == 1:
            fwhm = np.array([fwhm[0], fwhm[0], 0.0])
        if fwhm.size != 3 or not np.all(np.isfinite(fwhm)) or fwhm[0] <= 0 or fwhm[1] <= 0:
            raise InputError(f"psf_fwhm must be a positive FWHM in pixels (or an angle), or "
                             f"(major, minor, theta_deg) in pixels; got {psf_fwhm!r}.")
        return gaussian_cov(*fwhm), f"psf_fwhm={fwhm[0]:.3g}x{fwhm[1]:.3g} pix"
    beam = image.beam_pixels
    if beam is not None:
        major, minor, pa = beam
        ny, nx = image.shape
        theta = sky_pa_to_pixel_angle(image.wcs, pa, (nx - 1) / 2, (ny - 1) / 2)
        # the beam's major axis lies along the position angle
        return gaussian_cov(major, minor, theta), "beam (BMAJ/BMIN/BPA)"
    return None, None


def _make_plan(image, data, nodata, ignore, maps, snr, island_snr, npixels, prominence,
               deblend, psf_fwhm, matched_filter, box_size):
    """Measure the noise correlation and PSF, and choose the detection filter."""
    # the estimates use the central region (at most 2048 x 2048)
    sl = _central(data.shape, 2048)
    excluded = nodata[sl] if ignore is None else nodata[sl] | ignore[sl]
    rms = np.asarray(maps.rms[sl])
    with np.errstate(invalid="ignore", divide="ignore"):
        sub = data[sl] - maps.background[sl]
        z = sub / rms
    valid = ~excluded & np.isfinite(z) & (rms > 0)
    noise_cov = noise_covariance(z, valid)
    psf_cov, psf_source = _psf_covariance(image, psf_fwhm)
    if psf_cov is None:
        fwhm, n_used = estimate_psf_fwhm(sub, z, valid)
        if fwhm is not None:
            psf_cov, psf_source = gaussian_cov(fwhm, fwhm, 0.0), \
                f"estimated from {n_used} bright sources"
        elif np.linalg.eigvalsh(noise_cov)[-1] > 0.25:
            psf_cov, psf_source = noise_cov.copy(), "noise autocorrelation"
        else:
            psf_cov, psf_source = gaussian_cov(3.0, 3.0, 0.0), "default (3 pixels)"
    if matched_filter == "auto":
        vals, vecs = np.linalg.eigh(psf_cov - noise_cov)
        vals = np.clip(vals, 0.0, None)
        filter_cov = vecs @ np.diag(vals) @ vecs.T if vals[-1] > 0.25 else None
    elif matched_filter == "psf":
        filter_cov = psf_cov
    elif matched_filter in ("none", None, False):
        filter_cov = None
    else:
        raise InputError(f"matched_filter must be 'auto', 'psf' or 'none', not "
                         f"{matched_filter!r}.")
    # filtered noise / unfiltered noise, from the measured noise model (exact for
    # stationary noise; an empirical std of the filtered image is biased by sources)
    ratio = 1.0 if filter_cov is None else filtered_noise_ratio(filter_cov, noise_cov)
    if npixels is None:
        det_cov = psf_cov if filter_cov is None else psf_cov + filter_cov
        npixels = max(2, int(round(0.25 * beam_area_pixels(det_cov))))
    return _Plan(snr=float(snr), island_snr=float(min(island_snr, snr)), npixels=int(npixels),
                 prominence=float(prominence), deblend=bool(deblend), psf_cov=psf_cov,
                 psf_source=psf_source, noise_cov=noise_cov, filter_cov=filter_cov,
                 filter_noise_ratio=float(ratio),
                 box_size=box_size)


def _labelled_max(values, labels, n):
    """Per label 0..n: the largest value and the flat index where it is (fast for sparse labels)."""
    flat = labels.ravel()
    idx = np.flatnonzero(flat)
    lab = flat[idx]
    val = values.ravel()[idx]
    order = np.lexsort((val, lab))
    last = np.r_[np.nonzero(np.diff(lab[order]))[0], order.size - 1]
    top = np.full(n + 1, -np.inf)
    where = np.zeros(n + 1, np.int64)
    top[lab[order][last]] = val[order][last]
    where[lab[order][last]] = idx[order][last]
    return top, where


def _local_maxima(snrmap, candidates):
    """(ys, xs) of the 8-connected local maxima among the candidate pixels (ties: first)."""
    ys, xs = np.nonzero(candidates)
    if ys.size == 0:
        return ys, xs
    ny, nx = snrmap.shape
    v = snrmap[ys, xs]
    keep = np.ones(ys.size, bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == 0 and dx == 0:
                continue
            yy, xx = ys + dy, xs + dx
            inside = (yy >= 0) & (yy < ny) & (xx >= 0) & (xx < nx)
            nv = np.where(inside, snrmap[np.clip(yy, 0, ny - 1), np.clip(xx, 0, nx - 1)], -np.inf)
            keep &= (v > nv) if (dy, dx) < (0, 0) else (v >= nv)
    return ys[keep], xs[keep]


def _significant_peaks(cut, inside, ys, xs, prominence):
    """The peaks (indices into ys, xs) whose prominence within the island is >= prominence."""
    floor = cut[inside].min()
    work = np.where(inside, cut, floor).astype(np.float64)
    hmax = h_maxima(work - floor, prominence) > 0
    regions, _ = ndi.label(hmax, structure=np.ones((3, 3), bool))
    reg = regions[ys, xs]
    chosen = []
    for r in np.unique(reg[reg > 0]):
        members = np.nonzero(reg == r)[0]
        chosen.append(members[np.argmax(cut[ys[members], xs[members]])])
    if not chosen:  # the island's highest peak always counts
        chosen = [int(np.argmax(cut[ys, xs]))]
    return np.sort(np.array(chosen))


def _segment(snrmap, excluded, plan):
    """Islands, significant peaks and deblended segments of a significance map."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoDetectionsWarning)
        seg = detect_sources(snrmap, plan.island_snr, n_pixels=plan.npixels, connectivity=8,
                             mask=excluded)
    if seg is None:
        return None
    labels = seg.data
    n = int(labels.max())
    top, _ = _labelled_max(snrmap, labels, n)
    keep = top[1:] >= plan.snr
    if not keep.any():
        return None
    lut = np.zeros(n + 1, np.int32)
    lut[1:][keep] = np.arange(1, np.count_nonzero(keep) + 1, dtype=np.int32)
    islands = lut[labels]
    n_islands = int(np.count_nonzero(keep))
    # local maxima above snr, then their prominence within multi-peak islands
    py, px = _local_maxima(snrmap, (snrmap >= plan.snr) & (islands > 0))
    plab = islands[py, px]
    counts = np.bincount(plab, minlength=n_islands + 1)
    n_peaks = np.ones(n_islands + 1, np.int64)
    final = islands  # deblended in place: islands are recorded in island_of
    island_of = list(range(n_islands + 1))
    multi = np.nonzero(counts > 1)[0]
    if multi.size:
        slices = ndi.find_objects(islands)
        order = np.argsort(plab, kind="stable")
        starts = np.searchsorted(plab[order], multi)
        for lab, start in zip(multi, starts):
            idx = order[start:start + counts[lab]]
            sl = slices[lab - 1]
            cut = snrmap[sl]
            inside = final[sl] == lab
            ys, xs = py[idx] - sl[0].start, px[idx] - sl[1].start
            sig = _significant_peaks(cut, inside, ys, xs, plan.prominence)
            n_peaks[lab] = sig.size
            if plan.deblend and sig.size > 1:
                markers = np.zeros(cut.shape, np.int32)
                markers[ys[sig], xs[sig]] = np.arange(1, sig.size + 1)
                parts = watershed(-cut, markers, mask=inside, connectivity=2)
                region = final[sl]
                for k in range(2, sig.size + 1):
                    region[parts == k] = len(island_of)
                    island_of.append(lab)
    return final, np.array(island_of), n_peaks


def _measure(sub, snrmap, rms, final, island_of, n_peaks):
    """Photometry and shapes (photutils SourceCatalog) of each segment."""
    segm = SegmentationImage(final)
    cat = SourceCatalog(sub, segm, progress_bar=False)
    labels = segm.labels
    out = {
        "label": labels,
        "island": island_of[labels],
        "x": np.asarray(cat.x_centroid, float),
        "y": np.asarray(cat.y_centroid, float),
        "bbox_xmin": np.asarray(cat.bbox_xmin, np.int64),
        "bbox_xmax": np.asarray(cat.bbox_xmax, np.int64),
        "bbox_ymin": np.asarray(cat.bbox_ymin, np.int64),
        "bbox_ymax": np.asarray(cat.bbox_ymax, np.int64),
        "area": np.asarray(getattr(cat.area, "value", cat.area), float),
        "peak": np.asarray(cat.max_value, float),
        "sum": np.asarray(cat.segment_flux, float),
        "semimajor": np.asarray(getattr(cat.semimajor_axis, "value", cat.semimajor_axis), float),
        "semiminor": np.asarray(getattr(cat.semiminor_axis, "value", cat.semiminor_axis), float),
        "orientation": np.asarray(getattr(cat.orientation, "value", cat.orientation),
                                  float) % 180.0,
    }
    n = int(final.max())
    _, where = _labelled_max(sub, final, n)
    out["peak_y"], out["peak_x"] = np.unravel_index(where[labels], final.shape)
    out["snr"] = out["peak"] / rms[out["peak_y"], out["peak_x"]]
    top, _ = _labelled_max(snrmap, final, n)
    out["detection_snr"] = top[labels].astype(float)
    out["n_peaks"] = n_peaks[out["island"]]
    return out


def _find_in_array(data, nodata, ignore, maps, plan):
    """Detect and measure in one array; a dict of columns, or None."""
    excluded = nodata if ignore is None else nodata | ignore
    rms = np.asarray(maps.rms)
    bad_rms = ~(rms > 0)
    if bad_rms.any():
        excluded = excluded | bad_rms
    if excluded.all():  # e.g. a constant image: no noise, nothing to detect
        return None
    sub = np.asarray(data - maps.background, dtype=np.float32)
    sub[excluded] = 0.0
    det = sub if plan.filter_cov is None else gaussian_filter_fft(sub, plan.filter_cov)
    with np.errstate(invalid="ignore", divide="ignore"):
        snrmap = det / (plan.filter_noise_ratio * rms)
    snrmap = snrmap.astype(np.float32, copy=False)
    snrmap[excluded] = 0.0
    found = _segment(snrmap, excluded, plan)
    if found is None:
        return None
    final, island_of, n_peaks = found
    return _measure(sub, snrmap, rms, final, island_of, n_peaks)


def _empty_columns():
    return {"label": np.zeros(0, int), "island": np.zeros(0, int), "x": np.zeros(0),
            "y": np.zeros(0), "bbox_xmin": np.zeros(0, np.int64),
            "bbox_xmax": np.zeros(0, np.int64), "bbox_ymin": np.zeros(0, np.int64),
            "bbox_ymax": np.zeros(0, np.int64), "area": np.zeros(0), "peak": np.zeros(0),
            "sum": np.zeros(0), "semimajor": np.zeros(0), "semiminor": np.zeros(0),
            "orientation": np.zeros(0), "peak_y": np.zeros(0, np.int64),
            "peak_x": np.zeros(0, np.int64), "snr": np.zeros(0),
            "detection_snr": np.zeros(0), "n_peaks": np.zeros(0, np.int64)}


def _flux_scale(image, plan):
    """Divide pixel sums by this to get fluxes, and the flux unit."""
    unit = image.unit
    if unit is not None:
        bases = getattr(unit, "bases", [unit])
        powers = getattr(unit, "powers", [1])
        if any(b == u.beam and p == -1 for b, p in zip(bases, powers)):
            return beam_area_pixels(plan.psf_cov), unit * u.beam
    return 1.0, unit


def _build_table(image, cols, plan, meta):
    """The output QTable (sorted in raster order of the peak pixel)."""
    order = np.lexsort((cols["peak_x"], cols["peak_y"]))
    cols = {k: np.asarray(v)[order] for k, v in cols.items()}
    # islands renumbered in order of first appearance
    _, first, inverse = np.unique(cols["island"], return_index=True, return_inverse=True)
    rank = np.empty(first.size, np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(1, first.size + 1)
    island = rank[inverse.ravel()]
    n = len(cols["x"])
    unit = image.unit
    scale, flux_unit = _flux_scale(image, plan)

    def q(values, unit):
        return values * unit if unit is not None else values

    table = QTable()
    table["id"] = np.arange(1, n + 1, dtype=np.int64)
    table["island"] = island
    table["x"] = cols["x"]
    table["y"] = cols["y"]
    if image.wcs is not None:
        add_sky_columns(table, image.wcs, cols["x"], cols["y"])
    for key in BBOX_COLUMNS:
        table[key] = cols[key].astype(np.int64)
    table["area"] = cols["area"] * u.pix ** 2
    table["peak"] = q(cols["peak"], unit)
    table["flux"] = q(cols["sum"] / scale, flux_unit)
    table["snr"] = cols["snr"]
    table["detection_snr"] = cols["detection_snr"]
    table["n_peaks"] = cols["n_peaks"].astype(np.int64)
    table["semimajor"] = cols["semimajor"] * u.pix
    table["semiminor"] = cols["semiminor"] * u.pix
    table["orientation"] = cols["orientation"] * u.deg
    if image.wcs is not None:
        pa = pixel_angle_to_sky_pa(image.wcs, cols["x"], cols["y"], cols["orientation"]) \
            if n else np.zeros(0)
        table["pa"] = pa * u.deg
    for name in table.colnames:
        table[name].info.description = SOURCE_COLUMNS[name]
    meta["flux"] = ("sum of background-subtracted pixels in the segment divided by the beam "
                    f"area ({scale:.4g} pixels)" if scale != 1.0 else
                    "sum of background-subtracted pixels in the segment")
    table.meta.update(meta)
    return table


def find_sources(image, snr=5.0, psf_fwhm=None, npixels=None, deblend=True, background=None,
                 mask=None, island_snr=3.0, peak_prominence=2.0, matched_filter="auto",
                 box_size=64, tile_size=None, overlap=256, scheduler=None, workers=None):
    """
    Find the sources in an image: a table of positions, fluxes, SNRs and shapes.

    The background-subtracted image is filtered with the matched filter
    for the beam or PSF, and a source is a connected region whose
    significance in the *filtered* image, in units of the filtered
    image's own noise, reaches ``snr``. So ``snr=5`` finds true 5-sigma
    sources.

    The matched filter is the PSF whitened by the noise correlation,
    measured from the image (see the ``astrofmtools.sources.filtering`` module): for
    white noise (optical images) it is the PSF; for noise correlated on the
    beam's scale, as in radio maps, the map is already matched-filtered and
    is used as it is. Detection runs in five steps:

    1. background and RMS maps (`~astrofmtools.background.estimate_background`);
    2. the matched filter and the noise of the filtered image (its RMS map
       times the ratio of filtered to unfiltered noise that the measured noise
       correlation implies);
    3. islands: 8-connected regions of at least ``npixels`` pixels above
       ``island_snr`` (photutils `~photutils.segmentation.detect_sources`),
       kept if they reach ``snr``;
    4. peaks: local maxima above ``snr`` that rise at least
       ``peak_prominence`` sigma above the saddle joining them to a higher
       peak; islands with several are split between their peaks by a
       watershed (``deblend=True``);
    5. measurement of each segment on the unfiltered background-subtracted
       image (photutils `~photutils.segmentation.SourceCatalog`).

    Large images (more than 8192 x 8192 pixels, whether in memory or
    memory-mapped) are processed in overlapping tiles
    (`~astrofmtools.io.plan_tiles`). The matched filter and its noise are
    measured once, before any tile runs, on a window of at most 2048 x 2048
    pixels chosen from the image alone (the central one when at least half
    of it holds data), so tiles are independent of one another and of the
    order they run in (`~astrofmtools.io.map_tiles`, serially or on
    threads). A source belongs to the tile whose core holds its peak
    (`~astrofmtools.io.owned`); a source well inside a core is found and
    measured as in the whole image.

    Parameters
    ----------
    image : `~astrofmtools.io.SkyImage` or any input of `~astrofmtools.io.load_image`
        The image.
    snr : float, optional
        The detection threshold: the peak significance in the matched-filtered
        image, in units of its noise.
    psf_fwhm : float, `~astropy.units.Quantity` or tuple, optional
        The FWHM of the PSF or beam: pixels (a number), an angle, or
        ``(major, minor, theta)`` in pixels and degrees from +x. By default
        the image's beam (``BMAJ``/``BMIN``/``BPA``); without one, estimated
        from the image's bright compact sources, else from the noise
        correlation, else 3 pixels. ``table.meta['psf_source']`` says which.
    npixels : int, optional
        The least number of connected pixels above ``island_snr`` in an
        island. By default a quarter of the detection kernel's area (at
        least 2).
    deblend : bool, optional
        Split islands with several significant peaks.
    background : `~astrofmtools.background.BackgroundMaps`, optional
        Background and RMS maps to use instead of estimating them.
    mask : array of bool, optional
        Pixels to ignore (True = ignore). No-data pixels (``image.mask``,
        NaN) are always ignored.
    island_snr : float, optional
        The significance down to which islands extend (the "flood" level):
        segments, fluxes and shapes include all connected pixels above it.
    peak_prominence : float, optional
        How far (in sigma of the filtered image) a peak must rise above the
        saddle to a higher peak to count in ``n_peaks`` and for deblending.
    matched_filter : {'auto', 'psf', 'none'}, optional
        ``'auto'``: the PSF whitened by the measured noise correlation;
        ``'psf'``: the PSF whatever the noise; ``'none'``: no filtering.
    box_size : int, optional
        The box size for the background maps.
    tile_size : int, optional
        Process in tiles of this side (pixels); 0 never tiles. By default
        tiles of 4096 for images above 8192 x 8192 pixels.
    overlap : int, optional
        The overlap of the tiles; make it larger than the largest source.
    scheduler : str or executor, optional
        Where the tiles run (see `~astrofmtools.io.map_tiles`): serially
        (default), ``"threads"``, or an executor such as a
        ``dask.distributed.Client``. The table is the same whichever runs
        them. Unused for an image processed whole.
    workers : int, optional
        The number of threads of the ``"threads"`` scheduler.

    Returns
    -------
    table : `~astropy.table.QTable`
        One row per source, in raster order of the peak pixel, with columns
        (see ``SOURCE_COLUMNS`` for their descriptions): ``id``, ``island``,
        ``x``, ``y`` (0-based pixel), ``sky_centroid`` (ICRS
        `~astropy.coordinates.SkyCoord`), ``ra``, ``dec``, ``bbox_xmin``,
        ``bbox_xmax``, ``bbox_ymin``, ``bbox_ymax`` (0-based, inclusive),
        ``area`` (pix2), ``peak`` (image unit), ``flux`` (Jy for Jy/beam
        images; otherwise the pixel sum in the image unit), ``snr`` (peak
        / local RMS), ``detection_snr``, ``n_peaks``, ``semimajor``,
        ``semiminor`` (1-sigma, pixels), ``orientation`` (deg from +x,
        counter-clockwise) and ``pa`` (deg east of north). Images without
        a WCS have no sky columns (``sky_centroid``, ``ra``, ``dec``,
        ``pa``), and ``meta['sky_columns']`` is False. No source: an empty
        table with the same columns. ``meta`` records the settings, the
        PSF and filter used and the package versions.

    Raises
    ------
    astrofmtools.InputError
        For an empty or all-NaN image, a ``mask`` or ``background`` of the
        wrong shape, or invalid options.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.sources import find_sources
    >>> rng = np.random.default_rng(0)
    >>> yy, xx = np.mgrid[:128, :128]
    >>> data = rng.normal(0.0, 1.0, (128, 128))
    >>> data += 30 * np.exp(-((xx - 40.3) ** 2 + (yy - 70.6) ** 2) / (2 * 1.5 ** 2))
    >>> table = find_sources((data, None), snr=5, psf_fwhm=3.5)
    >>> len(table)
    1
    >>> print(round(table["x"][0], 1), round(table["y"][0], 1), table["n_peaks"][0])
    40.3 70.6 1
    >>> table.meta["matched_filter"]
    'psf whitened by the noise: FWHM 3.5 x 3.5 pix'
    """
    image = load_image(image).require_2d("find_sources")
    if not np.isfinite(snr) or snr <= 0:
        raise InputError(f"snr must be a positive number, not {snr!r}.")
    if island_snr <= 0 or peak_prominence < 0:
        raise InputError(f"island_snr must be positive and peak_prominence non-negative; got "
                         f"{island_snr!r} and {peak_prominence!r}.")
    if npixels is not None and (int(npixels) != npixels or npixels < 1):
        raise InputError(f"npixels must be a positive integer, not {npixels!r}.")
    if background is not None and not isinstance(background, BackgroundMaps):
        raise InputError(f"background must be BackgroundMaps (from estimate_background), not "
                         f"a {type(background).__name__}.")
    shape = tuple(np.shape(image.data))
    if len(shape) != 2 or 0 in shape:
        raise InputError(f"find_sources needs a non-empty 2-D image; {image.source} has "
                         f"shape {shape}.")
    if background is not None and background.shape != shape:
        raise InputError(f"The background maps have shape {background.shape}, but "
                         f"{image.source} has shape {shape}.")
    if mask is not None:
        mask = np.asarray(mask)
    if mask is not None and mask.shape != shape:
        raise InputError(f"mask has shape {np.shape(mask)}, but {image.source} has shape "
                         f"{shape}; give one boolean per pixel (True = ignore).")
    if tile_size is None:  # decided by size, whatever the kind of array
        tile_size = 4096 if shape[0] * shape[1] > TILE_ABOVE else 0
    elif isinstance(tile_size, bool) or int(tile_size) != tile_size or tile_size < 0:
        raise InputError(f"tile_size must be a whole number of pixels (0: never tile), not "
                         f"{tile_size!r}.")
    tiled = bool(tile_size) and (shape[0] > tile_size or shape[1] > tile_size)
    settings = dict(snr=snr, island_snr=island_snr, npixels=npixels,
                    prominence=peak_prominence, deblend=deblend, psf_fwhm=psf_fwhm,
                    matched_filter=matched_filter, box_size=box_size)
    if not tiled:
        cols, plan = _find_whole(image, mask, background, settings)
    else:
        cols, plan = _find_tiled(image, mask, background, settings, int(tile_size), overlap,
                                 scheduler, workers)
    meta = provenance(
        stage="sources", image=image.source, snr=float(snr), island_snr=plan.island_snr,
        npixels=plan.npixels, peak_prominence=plan.prominence, deblend=bool(deblend),
        psf_fwhm_pix=[round(v, 4) for v in cov_to_fwhm(plan.psf_cov)],
        psf_source=plan.psf_source,
        noise_correlation_fwhm_pix=[round(v, 4) for v in cov_to_fwhm(plan.noise_cov)],
        matched_filter=_describe_filter(plan, matched_filter),
        filter_noise_ratio=plan.filter_noise_ratio,
        box_size=box_size, tile_size=int(tile_size) if tiled else 0,
        sky_columns=image.wcs is not None, unit=str(image.unit) if image.unit else None)
    return _build_table(image, cols if cols is not None else _empty_columns(), plan, meta)


def _describe_filter(plan, requested):
    if plan.filter_cov is None:
        if requested == "auto":
            return "none: the noise is correlated like the PSF, the image is already matched"
        return "none (matched_filter='none')"
    if requested == "psf":
        major, minor, _ = cov_to_fwhm(plan.filter_cov)
        return f"psf (matched_filter='psf'): FWHM {major:.3g} x {minor:.3g} pix"
    major, minor, _ = cov_to_fwhm(plan.filter_cov)
    return f"psf whitened by the noise: FWHM {major:.3g} x {minor:.3g} pix"


def _maps_for(array_image, mask, background, box_size):
    if background is not None:
        return background
    return estimate_background(array_image, box_size=box_size, mask=mask)


def _find_whole(image, mask, background, s):
    image, data, nodata, ignore = _image_arrays(image, mask, "find_sources")
    maps = _maps_for(image, mask, background, s["box_size"])
    plan = _make_plan(image, data, nodata, ignore, maps, s["snr"], s["island_snr"],
                      s["npixels"], s["prominence"], s["deblend"], s["psf_fwhm"],
                      s["matched_filter"], s["box_size"])
    return _find_in_array(data, nodata, ignore, maps, plan), plan


#: Side of the window of a tiled image that the detection plan is measured on.
PLAN_WINDOW = 2048


def _plan_window(image, mask):
    """
    The window of a large image the plan is measured on (a read `Tile`).

    The central ``PLAN_WINDOW`` square when at least half its pixels hold
    data; otherwise the first such square of a grid ordered by distance
    from the image centre, or the one with the most data. The choice
    depends on the image only, never on tiles or the order they run in.
    """
    ny, nx = image.shape
    centre = _central((ny, nx), PLAN_WINDOW)
    candidates = [centre] + sorted(
        (t.slices for t in plan_tiles((ny, nx), min(PLAN_WINDOW, max(ny, nx)), 0)),
        key=lambda sl: ((sl[0].start + sl[0].stop - ny) ** 2
                        + (sl[1].start + sl[1].stop - nx) ** 2))
    best, best_count = None, 0
    for slices in candidates:
        tile = read_tile(image, Tile(-1, slices, slices))
        bad = ~np.isfinite(tile.data)
        if tile.mask is not None:
            bad |= tile.mask
        if mask is not None:
            bad |= np.asarray(mask[slices], dtype=bool)
        count = int(bad.size - np.count_nonzero(bad))
        if 2 * count >= bad.size:
            return tile
        if count > best_count:
            best, best_count = tile, count
    if best is None:
        raise InputError(f"{image.source} has no valid pixel: all are NaN, Inf or masked.")
    return best


def _tile_image(image, tile):
    """A `SkyImage` of a read tile (its pixels, WCS and no-data mask)."""
    from ..io import SkyImage
    return SkyImage(tile.data, wcs=tile.wcs, unit=image.unit, mask=tile.mask, beam=image.beam,
                    header=image.header, source=f"{image.source} tile {tile.index}")


def _tile_maps(background, slices):
    """The given background maps over a tile (without slicing the shared WCS)."""
    return BackgroundMaps(background.background[slices], background.rms[slices],
                          method=background.method, box_size=background.box_size,
                          unit=background.unit)


def _make_tiled_plan(image, mask, background, s):
    """The plan of a tiled image: measured once, on one window chosen from the image alone."""
    tile = _plan_window(image, mask)
    window = tile.slices
    sub_mask = None if mask is None else mask[window]
    timage, data, nodata, ignore = _image_arrays(_tile_image(image, tile), sub_mask,
                                                 "find_sources")
    maps = _maps_for(timage, sub_mask, None if background is None else
                     _tile_maps(background, window), s["box_size"])
    # the PSF and beam come from the whole image (the beam's angle at its centre)
    return _make_plan(image, data, nodata, ignore, maps, s["snr"], s["island_snr"],
                      s["npixels"], s["prominence"], s["deblend"], s["psf_fwhm"],
                      s["matched_filter"], s["box_size"])


class _TileFinder:
    """Find the sources of one tile with a fixed plan; keep those whose peak it owns."""

    def __init__(self, image, mask, background, plan, box_size):
        self.image, self.mask, self.background = image, mask, background
        self.plan, self.box_size = plan, box_size

    def __call__(self, tile):
        slices = tile.slices
        sub_mask = None if self.mask is None else self.mask[slices]
        try:
            timage, data, nodata, ignore = _image_arrays(_tile_image(self.image, tile),
                                                         sub_mask, "find_sources")
        except InputError:
            return None  # a tile without data
        maps = _maps_for(timage, sub_mask, None if self.background is None else
                         _tile_maps(self.background, slices), self.box_size)
        cols = _find_in_array(data, nodata, ignore, maps, self.plan)
        if cols is None:
            return None
        y0, x0 = tile.origin
        cols["peak_y"] = cols["peak_y"] + y0
        cols["peak_x"] = cols["peak_x"] + x0
        inside = owned(tile, cols["peak_x"], cols["peak_y"])
        cols = {k: np.asarray(v)[inside] for k, v in cols.items()}
        for key in ("x", "bbox_xmin", "bbox_xmax"):
            cols[key] = cols[key] + x0
        for key in ("y", "bbox_ymin", "bbox_ymax"):
            cols[key] = cols[key] + y0
        cols["island"] = cols["island"] + ((tile.index + 1) << 32)  # unique across tiles
        return cols


#: Warnings the per-tile work (photutils, numpy) silences with warnings.catch_warnings,
#: which is not thread-safe: map_tiles ignores them around the whole map.
_TILE_WARNINGS = (RuntimeWarning, AstropyUserWarning, NoDetectionsWarning)


def _find_tiled(image, mask, background, s, tile_size, overlap, scheduler, workers):
    # plan once, from the image, then map the finder over independent tiles
    plan = _make_tiled_plan(image, mask, background, s)
    tiles = plan_tiles(image.shape, tile_size, overlap)
    finder = _TileFinder(image, mask, background, plan, s["box_size"])
    parts = [p for p in map_tiles(finder, image, tiles, scheduler, workers=workers,
                                  ignore_warnings=_TILE_WARNINGS, desc="sources")
             if p is not None]
    if not parts:
        return None, plan
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, plan
