# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Truth catalogues of the synthetic fields: quantities measured on each
source's noiseless stamp, and the table that holds them.
"""

import numpy as np
import astropy.units as u
from astropy.table import QTable
from scipy import ndimage
from skimage.measure import regionprops
from skimage.morphology import h_maxima

from ..schema import BBOX_COLUMNS

__all__ = []

#: Contour level (in units of the noise rms) at which components, peaks and
#: sizes of resolved sources are measured on the noiseless model (the lowest
#: contour of the Radio Galaxy Zoo / FIRST component definitions).
COMPONENT_LEVEL = 3.0
#: Level (in units of the noise rms) of the footprint that defines the
#: truth bounding boxes.
FOOTPRINT_LEVEL = 1.0


def _measure(stamp, slices, noise, beam_area_pix, pixel_scale, morphology=True):
    """Truth quantities of one noiseless source stamp."""
    total = stamp.sum()
    yy, xx = np.mgrid[slices[0], slices[1]]
    x = (stamp * xx).sum() / total
    y = (stamp * yy).sum() / total
    peak = stamp.max()
    footprint = stamp >= FOOTPRINT_LEVEL * noise
    if not footprint.any():
        footprint = stamp == peak
    rows = np.flatnonzero(footprint.any(axis=1))
    cols = np.flatnonzero(footprint.any(axis=0))
    row = dict(x=x, y=y, peak=peak, flux=total / beam_area_pix,
               bbox_xmin=slices[1].start + cols[0], bbox_xmax=slices[1].start + cols[-1],
               bbox_ymin=slices[0].start + rows[0], bbox_ymax=slices[0].start + rows[-1])
    if morphology:
        level = COMPONENT_LEVEL * noise
        islands = stamp >= level
        _, n_components = ndimage.label(islands, structure=np.ones((3, 3)))
        if n_components:
            # maxima that stand at least ``level`` above the saddle to any
            # higher maximum, and at least one per island
            labels, _ = ndimage.label(islands, structure=np.ones((3, 3)))
            maxima, _ = ndimage.label(h_maxima(stamp, level) & islands,
                                      structure=np.ones((3, 3)))
            n_peaks = 0
            for k in range(1, n_components + 1):
                n_peaks += max(1, len(np.unique(maxima[(labels == k) & (maxima > 0)])))
            size = regionprops(islands.astype(np.uint8))[0].feret_diameter_max
        else:
            n_peaks, size = 0, 0.0
        row.update(n_components=n_components, n_peaks=n_peaks,
                   size=float(size) * pixel_scale)
    return row


def _truth_table(rows, wcs, flux_unit, peak_unit, meta, optical=False):
    n = len(rows)

    def col(name, dtype=float):
        return np.array([r[name] for r in rows], dtype=dtype) if n else np.zeros(0, dtype)

    x, y = col("x"), col("y")
    sky = wcs.pixel_to_world(x, y)
    table = QTable(meta=meta)
    table["id"] = np.arange(1, n + 1)
    table["x"] = x
    table["y"] = y
    table["ra"] = sky.ra.to(u.deg)
    table["dec"] = sky.dec.to(u.deg)
    table["sky_centroid"] = sky
    table["kind"] = col("kind", str) if n else np.zeros(0, "U8")
    if not optical:
        table["n_components"] = col("n_components", int)
        table["n_peaks"] = col("n_peaks", int)
    table["peak"] = col("peak") * peak_unit
    table["flux"] = col("flux") * flux_unit
    noise = meta.get("noise", meta.get("sky_noise"))
    table["snr"] = col("peak") / noise
    if optical:
        table["sersic_n"] = col("sersic_n")
        table["r_eff"] = col("r_eff") * u.pix
        table["ellipticity"] = col("ellipticity")
        table["theta"] = col("theta") * u.deg
    else:
        table["size"] = col("size") * u.arcsec
    for name in BBOX_COLUMNS:
        table[name] = col(name, int)

    descriptions = {
        "id": "Running number of the truth source (1-based)",
        "x": "Flux-weighted centre of the noiseless source, x (0-based pixel)",
        "y": "Flux-weighted centre of the noiseless source, y (0-based pixel)",
        "ra": "Right ascension of (x, y), ICRS",
        "dec": "Declination of (x, y), ICRS",
        "sky_centroid": "Sky position of (x, y), ICRS",
        "kind": ("'galaxy' or 'star'" if optical else
                 "'compact', 'FRI', 'FRII' or 'artefact'"),
        "n_components": "Islands of the noiseless model above 3 x noise rms",
        "n_peaks": "Maxima of the noiseless model standing 3 x noise rms above their saddle",
        "peak": "Brightest pixel of the noiseless source",
        "flux": ("Sum of the noiseless source's pixels" if optical else
                 "Sum of the noiseless source's pixels / beam area in pixels"),
        "snr": "peak / noise rms per pixel (true peak signal-to-noise ratio)",
        "size": "Largest extent above 3 x noise rms (beam FWHM for compact sources)",
        "sersic_n": "Sersic index (NaN for stars)",
        "r_eff": "Sersic effective (half-light) semi-major axis (NaN for stars)",
        "ellipticity": "1 - b/a of the intrinsic profile",
        "theta": "Position angle of the major axis, counter-clockwise from +x",
        "bbox_xmin": "Footprint (model > noise rms) lower x bound (0-based pixel, inclusive)",
        "bbox_xmax": "Footprint (model > noise rms) upper x bound (0-based pixel, inclusive)",
        "bbox_ymin": "Footprint (model > noise rms) lower y bound (0-based pixel, inclusive)",
        "bbox_ymax": "Footprint (model > noise rms) upper y bound (0-based pixel, inclusive)",
    }
    for name in table.colnames:
        table[name].info.description = descriptions[name]
    return table
