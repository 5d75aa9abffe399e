# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Measurement of the segments (the quantities of photutils' SourceCatalog,
from the segments' pixels) and the `find_sources` table built from it.
"""

import numpy as np
import astropy.units as u
from astropy.table import QTable

from ..schema import BBOX_COLUMNS, add_sky_columns
from .filtering import beam_area_pixels, pixel_angle_to_sky_pa
from .segment import _group_max
from .units import _integration, integrated_flux

__all__ = ["SOURCE_COLUMNS", "integrated_flux"]

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
    "flux": "Integrated flux: the sum of the background-subtracted pixels in the segment, "
            "divided by the beam area in pixels for X/beam images and times the pixel "
            "solid angle for X/sr images (Jy for Jy/beam, MJy/sr, Jy/pixel and Jy); "
            "otherwise the pixel sum in the image unit (meta['flux'] says which)",
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


def _shapes(cxx, cxy, cyy):
    """
    Semi-major and semi-minor axes and orientation (degrees, 0-180) of covariances.

    As photutils `~photutils.segmentation.SourceCatalog`: a negative
    determinant gives NaN, and the diagonal grows by 1/12 until the
    determinant is at least 1/144 (SourceExtractor's thin sources).
    """
    with np.errstate(invalid="ignore"):
        cxx, cyy = np.where(cxx * cyy - cxy * cxy < 0, np.nan, cxx), cyy.copy()
        thin = np.flatnonzero(cxx * cyy - cxy * cxy < 1.0 / 144)
        while thin.size:
            cxx[thin] += 1.0 / 12
            cyy[thin] += 1.0 / 12
            thin = thin[cxx[thin] * cyy[thin] - cxy[thin] ** 2 < 1.0 / 144]
        half_sum = 0.5 * (cxx + cyy)
        root = np.sqrt(0.25 * (cxx - cyy) ** 2 + cxy * cxy)
        major, minor = half_sum + root, half_sum - root
        bad = ~((major >= 0) & (minor >= 0))
        major[bad] = minor[bad] = np.nan
        orientation = np.rad2deg(0.5 * np.arctan2(2.0 * cxy, cxx - cyy)) % 360.0 % 180.0
    return np.sqrt(major), np.sqrt(minor), orientation


def _moments(segments, weights, n):
    """Centroids (x, y) and central second moments (xx, xy, yy) of the segments."""
    groups, ys, xs = segments.label, segments.ys, segments.xs
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.bincount(groups, weights, n)
        x = np.bincount(groups, weights * xs, n) / total
        y = np.bincount(groups, weights * ys, n) / total
        dx, dy = xs - x[groups], ys - y[groups]
        central = [np.bincount(groups, weights * a * b, n) / total
                   for a, b in ((dx, dx), (dx, dy), (dy, dy))]
    return x, y, central


def _extent(values, groups, n):
    """The smallest and largest of the (integer) values of each group 0..n-1."""
    low, high = np.full(n, values.max(), np.int64), np.zeros(n, np.int64)
    np.minimum.at(low, groups, values)
    np.maximum.at(high, groups, values)
    return low, high


def _measure(segments, sub, rms):
    """
    Photometry and shapes of each segment, from its pixels.

    The quantities of photutils `~photutils.segmentation.SourceCatalog`
    on the background-subtracted image ``sub`` (the values at the
    segments' pixels): centroids and second moments from the positive
    pixels, the pixel sum, the bounding box and the peak; and the peak
    over the ``rms`` map there.
    """
    groups, ys, xs = segments.label, segments.ys, segments.xs
    n = int(groups.max()) + 1
    labels = np.arange(1, n)
    x, y, (cxx, cxy, cyy) = _moments(segments, np.where(sub > 0, sub, 0.0), n)
    semimajor, semiminor, orientation = _shapes(cxx, cxy, cyy)
    (xmin, xmax), (ymin, ymax) = _extent(xs, groups, n), _extent(ys, groups, n)
    peak, where = _group_max(sub, groups, n)
    out = {"label": labels, "island": segments.island_of[labels], "x": x[1:], "y": y[1:],
           "bbox_xmin": xmin[1:], "bbox_xmax": xmax[1:], "bbox_ymin": ymin[1:],
           "bbox_ymax": ymax[1:],
           "area": np.bincount(groups, minlength=n)[1:].astype(float),
           "peak": peak[1:].astype(float),
           "sum": np.bincount(groups, sub, n)[1:],
           "semimajor": semimajor[1:], "semiminor": semiminor[1:],
           "orientation": orientation[1:],
           "peak_y": ys[where[1:]], "peak_x": xs[where[1:]]}
    out["snr"] = out["peak"] / rms[out["peak_y"], out["peak_x"]]
    out["detection_snr"] = _group_max(segments.snr, groups, n)[0][1:].astype(float)
    out["n_peaks"] = segments.n_peaks[out["island"]]
    return out


def _empty_columns():
    return {"label": np.zeros(0, int), "island": np.zeros(0, int), "x": np.zeros(0),
            "y": np.zeros(0), "bbox_xmin": np.zeros(0, np.int64),
            "bbox_xmax": np.zeros(0, np.int64), "bbox_ymin": np.zeros(0, np.int64),
            "bbox_ymax": np.zeros(0, np.int64), "area": np.zeros(0), "peak": np.zeros(0),
            "sum": np.zeros(0), "semimajor": np.zeros(0), "semiminor": np.zeros(0),
            "orientation": np.zeros(0), "peak_y": np.zeros(0, np.int64),
            "peak_x": np.zeros(0, np.int64), "snr": np.zeros(0),
            "detection_snr": np.zeros(0), "n_peaks": np.zeros(0, np.int64)}


def _flux_integration(image, plan):
    """
    ``(factor, unit, note)``: fluxes are pixel sums times ``factor``, in ``unit``.

    The beam area is the image's beam (BMAJ/BMIN) in pixels, else the PSF
    the search used; the pixel solid angle comes from the WCS.
    """
    from astropy.wcs.utils import proj_plane_pixel_area

    beam = image.beam_pixels
    if beam is not None:
        area, origin = float(np.pi / (4 * np.log(2)) * beam[0] * beam[1]), "BMAJ/BMIN"
    else:
        area, origin = beam_area_pixels(plan.psf_cov), f"the PSF: {plan.psf_source}"
    omega = None
    if image.wcs is not None:
        omega = proj_plane_pixel_area(image.wcs) * u.deg ** 2
    factor, unit, note = _integration(image.unit, area, omega)
    if "beam area" in note:
        note = note.replace(" pixels)", f" pixels, from {origin})")
    return factor, unit, note


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
    factor, flux_unit, flux_note = _flux_integration(image, plan)

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
    table["flux"] = q(cols["sum"] * factor, flux_unit)
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
    meta["flux"] = f"{flux_note}, over the background-subtracted pixels of the segment"
    table.meta.update(meta)
    return table
