# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Synthetic skies with truth catalogues: a radio field and an optical field.

Both are seeded (the same ``seed`` gives the same pixels and the same
table), fast (every source is rendered in a small stamp, never over the
whole image) and come with a real TAN WCS and a FITS header, so they can be
written to a file and read back with `~astrofmtools.io.load_image`.
"""

import numpy as np
import astropy.units as u
from astropy.coordinates import SkyCoord
from astropy.modeling.models import Gaussian2D, Sersic2D
from astropy.table import QTable
from astropy.wcs import WCS
from scipy import ndimage
from skimage.measure import block_reduce, regionprops
from skimage.morphology import h_maxima

from ..exceptions import InputError
from ..io import Beam, SkyImage
from ..schema import BBOX_COLUMNS
from ..utils import provenance

__all__ = ["make_radio_field", "make_optical_field", "make_wcs"]

_FWHM_TO_SIGMA = 1.0 / np.sqrt(8.0 * np.log(2.0))
_MAX_REDRAWS = 20

#: Contour level (in units of the noise rms) at which components, peaks and
#: sizes of resolved sources are measured on the noiseless model (the lowest
#: contour of the Radio Galaxy Zoo / FIRST component definitions).
COMPONENT_LEVEL = 3.0
#: Level (in units of the noise rms) of the footprint that defines the
#: truth bounding boxes.
FOOTPRINT_LEVEL = 1.0


# ---------------------------------------------------------------------------
# input checks and WCS


def _angle(value, name, default_unit=u.arcsec):
    try:
        q = u.Quantity(value, default_unit)
        q = q.to(u.arcsec)
    except (TypeError, ValueError, u.UnitsError):
        raise InputError(f"{name} must be an angle (a Quantity or a number in "
                         f"{default_unit}), not {value!r}.") from None
    if not q.isscalar or not np.isfinite(q.value) or q.value <= 0:
        raise InputError(f"{name} must be a positive finite angle, not {value!r}.")
    return q


def _positive(value, name):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a positive number, not {value!r}.") from None
    if not np.isfinite(value) or value <= 0:
        raise InputError(f"{name} must be a positive finite number, not {value!r}.")
    return value


def _count(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise InputError(f"{name} must be a non-negative integer, not {value!r}.")
    return int(value)


def _min_separation(value):
    if value is None:
        return None
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise InputError(f"min_separation must be >= 0 or None, not {value!r}.")
    return value


def _shape(shape):
    try:
        ny, nx = (int(n) for n in shape)
    except (TypeError, ValueError):
        raise InputError(f"shape must be (ny, nx), not {shape!r}.") from None
    if ny < 16 or nx < 16:
        raise InputError(f"shape must be at least (16, 16), not {shape!r}.")
    return ny, nx


def _snr_range(snr_range):
    try:
        lo, hi = (float(s) for s in snr_range)
    except (TypeError, ValueError):
        raise InputError(f"snr_range must be (low, high), not {snr_range!r}.") from None
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo <= 0 or hi < lo:
        raise InputError(f"snr_range must satisfy 0 < low <= high, not {snr_range!r}.")
    return lo, hi


def _center(center):
    if not isinstance(center, SkyCoord) or not center.isscalar:
        raise InputError(f"center must be a scalar SkyCoord, not {center!r}.")
    return center.icrs


def make_wcs(shape, center=SkyCoord(150, 2, unit="deg"), pixel_scale=1.8 * u.arcsec):
    """
    A TAN WCS with the image centre at ``center``, north up and east left.

    The WCS of the synthetic fields; handy for tests and examples.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the image.
    center : `~astropy.coordinates.SkyCoord`, optional
        The sky position of the image centre.
    pixel_scale : `~astropy.units.Quantity`, optional
        The pixel side.

    Returns
    -------
    wcs : `~astropy.wcs.WCS`

    Examples
    --------
    >>> from astrofmtools.datasets import make_wcs
    >>> wcs = make_wcs((100, 200))
    >>> wcs.pixel_to_world(99.5, 49.5)  # the array centre (0-based pixels)
    <SkyCoord (ICRS): (ra, dec) in deg
        (150., 2.)>
    """
    scale = _angle(pixel_scale, "pixel_scale")
    center = _center(center)
    ny, nx = (int(n) for n in shape)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.crval = [center.ra.deg, center.dec.deg]
    wcs.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0]  # FITS 1-based: the array centre
    deg = scale.to_value(u.deg)
    wcs.wcs.cdelt = [-deg, deg]
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.set()
    return wcs


def _make_header(wcs, unit, beam_fwhm, **cards):
    header = wcs.to_header()
    header["BUNIT"] = (unit.to_string("fits"), "pixel unit")
    header["BMAJ"] = (beam_fwhm.to_value(u.deg), "[deg] beam / PSF major axis FWHM")
    header["BMIN"] = (beam_fwhm.to_value(u.deg), "[deg] beam / PSF minor axis FWHM")
    header["BPA"] = (0.0, "[deg] beam / PSF position angle")
    for key, value in cards.items():
        header[key] = value
    header["ORIGIN"] = "astrofmtools.datasets (synthetic)"
    return header


# ---------------------------------------------------------------------------
# placement and stamps


def _place(rng, shape, radii, min_distance, margin, what):
    """
    Positions (x, y) such that no two sources are closer than
    ``radius_i + radius_j + min_distance`` and each centre is at least
    ``radius + margin`` from the image edge. Larger sources are placed first.
    """
    ny, nx = shape
    n = len(radii)
    xy = np.full((n, 2), np.nan)
    if n == 0:
        return xy
    order = np.argsort(-radii, kind="stable")
    px = np.empty(n)
    py = np.empty(n)
    pr = np.empty(n)
    k = 0
    batch = 8
    for index in order:
        r = radii[index]
        edge = min(r + margin, (min(nx, ny) - 1) / 2.0)
        for _ in range(1000):
            cx = rng.uniform(edge, nx - 1 - edge, batch)
            cy = rng.uniform(edge, ny - 1 - edge, batch)
            if k == 0 or min_distance is None:
                choice = 0
            else:
                d2 = (cx[:, None] - px[None, :k]) ** 2 + (cy[:, None] - py[None, :k]) ** 2
                need = (r + pr[None, :k] + min_distance) ** 2
                ok = np.flatnonzero(np.all(d2 >= need, axis=1))
                if ok.size == 0:
                    continue
                choice = ok[0]
            break
        else:
            raise InputError(
                f"Cannot place {n} {what} sources {min_distance:.3g} pixels apart in a "
                f"{nx}x{ny} image: the field is too crowded. Ask for fewer sources, a "
                "larger shape, or min_separation=None to allow overlaps.")
        px[k], py[k], pr[k] = cx[choice], cy[choice], r
        xy[index] = cx[choice], cy[choice]
        k += 1
    return xy


def _grid(shape, x, y, half):
    """Clipped pixel grid of half-size ``half`` around (x, y), or None if outside."""
    ny, nx = shape
    x0, x1 = max(int(np.floor(x - half)), 0), min(int(np.ceil(x + half)), nx - 1)
    y0, y1 = max(int(np.floor(y - half)), 0), min(int(np.ceil(y + half)), ny - 1)
    if x1 < x0 or y1 < y0:
        return None
    yy, xx = np.mgrid[y0:y1 + 1, x0:x1 + 1]
    return (slice(y0, y1 + 1), slice(x0, x1 + 1)), xx.astype(float), yy.astype(float)


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


# ---------------------------------------------------------------------------
# radio field


def _log_uniform(rng, lo, hi, n):
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n))


def _radio_galaxy(rng, kind, fwhm_pix):
    """
    Components of one FRI or FRII source, as rows of (amplitude, dx, dy,
    sigma_along, sigma_across, angle) with intrinsic (unconvolved) widths in
    pixels and offsets from the core.
    """
    axis = rng.uniform(0.0, np.pi)
    # core-to-end length of the longer side: 1 to 12 beams, log-uniform
    length = fwhm_pix * _log_uniform(rng, 1.0, 12.0, 1)[0]
    comps = []
    if kind == "FRII":
        # faint or undetected core; lobes brighten to hotspots at the outer ends
        core = rng.uniform(0.05, 0.4) if rng.random() < 0.6 else 0.0
        if core:
            comps.append((core, 0.0, 0.0, 0.0, 0.0, 0.0))
        sides = ((1.0, 1.0), (-1.0, rng.uniform(0.4, 1.0)))
        fractions, amps, along = (0.45, 0.75, 1.0), (0.2, 0.45, 1.0), (0.22, 0.18, 0.05)
        across = rng.uniform(0.12, 0.3)
    else:
        # bright core; jets fade and widen outwards, sometimes one-sided
        comps.append((1.0, 0.0, 0.0, 0.0, 0.0, 0.0))
        one_sided = rng.random() < 0.25
        sides = ((1.0, rng.uniform(0.4, 0.8)),
                 (-1.0, 0.0 if one_sided else rng.uniform(0.25, 0.8)))
        # knotty jets: brightness falls outwards on average, knot to knot it varies
        fractions, along = (0.3, 0.65, 1.0), (0.12, 0.15, 0.2)
        amps = np.array([1.0, 0.6, 0.3]) * rng.uniform(0.6, 1.4, 3)
        across = rng.uniform(0.08, 0.2)
    widen = (0.6, 1.0, 1.5) if kind == "FRI" else (1.0, 1.0, 0.5)
    for sign, brightness in sides:
        if brightness == 0.0:
            continue
        side_length = length * (1.0 if sign > 0 else rng.uniform(0.6, 1.0))
        angle = axis + rng.normal(0.0, 0.15) + (0.0 if sign > 0 else np.pi)
        for f, a, s, w in zip(fractions, amps, along, widen):
            r = f * side_length
            comps.append((brightness * a, r * np.cos(angle), r * np.sin(angle),
                          s * side_length, across * w * side_length, angle))
    return np.array(comps, dtype=float)


def _render_components(comps, grid, x, y, beam_sigma):
    _, xx, yy = grid
    model = np.zeros_like(xx)
    for amp, dx, dy, s_along, s_across, angle in comps:
        sa = np.hypot(s_along, beam_sigma)
        sb = np.hypot(s_across, beam_sigma)
        # convolution with the beam conserves flux: the peak drops accordingly
        peak = amp * beam_sigma ** 2 / (sa * sb) if (s_along or s_across) else amp
        model += Gaussian2D.evaluate(xx, yy, peak, x + dx, y + dy, sa, sb, angle)
    return model


def _artefact(rng, kind, x0, y0, amplitude, fwhm_pix, beam_sigma, shape):
    """A sidelobe arc or a radial stripe around (x0, y0), on a clipped stamp."""
    if kind == "ring":
        radius = fwhm_pix * rng.uniform(3.0, 8.0)
        start = rng.uniform(0.0, 2 * np.pi)
        span = np.deg2rad(rng.uniform(60.0, 180.0))
        grid = _grid(shape, x0, y0, radius + 5 * beam_sigma)
        if grid is None:
            return None
        slices, xx, yy = grid
        r = np.hypot(xx - x0, yy - y0)
        phi = np.mod(np.arctan2(yy - y0, xx - x0) - start, 2 * np.pi)
        taper = beam_sigma / radius
        window = np.where(phi <= span, 1.0, np.exp(-0.5 * (np.minimum(
            phi - span, 2 * np.pi - phi) / taper) ** 2))
        model = amplitude * np.exp(-0.5 * ((r - radius) / beam_sigma) ** 2) * window
    else:
        direction = rng.uniform(0.0, 2 * np.pi)
        inner = 3.0 * fwhm_pix
        outer = inner + fwhm_pix * rng.uniform(8.0, 20.0)
        cx = x0 + 0.5 * (inner + outer) * np.cos(direction)
        cy = y0 + 0.5 * (inner + outer) * np.sin(direction)
        grid = _grid(shape, cx, cy, 0.5 * (outer - inner) + 5 * beam_sigma)
        if grid is None:
            return None
        slices, xx, yy = grid
        along = (xx - x0) * np.cos(direction) + (yy - y0) * np.sin(direction)
        across = -(xx - x0) * np.sin(direction) + (yy - y0) * np.cos(direction)
        t = np.clip((along - inner) / (outer - inner), 0.0, 1.0)
        ends = np.where((along >= inner) & (along <= outer), 1.0, np.exp(
            -0.5 * (np.minimum(np.abs(along - inner), np.abs(along - outer)) / beam_sigma) ** 2))
        model = (amplitude * (1.0 - 0.7 * t) * ends
                 * np.exp(-0.5 * (across / beam_sigma) ** 2))
    return slices, model


def make_radio_field(shape=(512, 512), n_compact=60, n_extended=8, n_artefacts=2,
                     pixel_scale=1.8 * u.arcsec, beam_fwhm=5.4 * u.arcsec, noise=1.5e-4,
                     snr_range=(3, 300), center=SkyCoord(150, 2, unit="deg"),
                     min_separation=2.0, add_noise=True, seed=0):
    """
    A synthetic radio continuum image with its truth catalogue.

    The image holds compact (beam-shaped) sources, resolved FRI/FRII-like
    radio galaxies, a few artefacts around the brightest source, and
    Gaussian noise correlated by the beam. All sources are rendered in
    small stamps, so a 4096x4096 field with 3000 sources takes a few
    seconds.

    - **Noise**: white Gaussian noise convolved with the beam (periodic
      edges, so every pixel is alike), then scaled so that its rms per pixel
      is exactly ``noise``.
    - **Compact sources**: circular Gaussians with the beam's FWHM at
      sub-pixel positions; peak SNRs log-uniform in ``snr_range``.
    - **FRI / FRII** (half each): a core and one or two jets or lobes,
      each side three elongated Gaussians along a slightly bent axis,
      convolved with the beam (analytically), 1 to 12 beams from core to
      end. FRI: bright core, jets fading and widening outwards, a quarter
      one-sided. FRII: faint or no core, lobes brightening to hotspots at
      their outer ends. Peak SNRs log-uniform in
      ``(max(snr_range[0], 10), max(snr_range[1], 10))``. Depending on
      their length and core, they come out with 1 to 3 components and 1 to
      3 (rarely more) peaks, as measured on the noiseless model.
    - **Artefacts**: sidelobe arcs (partial rings 3 to 8 beams from the
      brightest source) and radial stripes (from 3 beams out to 11 to 23
      beams), at 1 to 3 per cent of the brightest peak but at least 3 to 6
      times the noise.

    Truth quantities are measured on each source's own noiseless model,
    as rendered in the image (so ``peak`` is the brightest pixel and
    ``flux`` is its pixel sum divided by the beam area). Where an artefact
    or, with ``min_separation=None``, another source overlaps a source, the
    image pixels are the sum of both.

    Parameters
    ----------
    shape : tuple of int, optional
        Image shape (ny, nx).
    n_compact, n_extended, n_artefacts : int, optional
        Numbers of compact sources, FRI/FRII sources and artefacts.
    pixel_scale : `~astropy.units.Quantity` or float, optional
        Pixel side (arcsec if a number).
    beam_fwhm : `~astropy.units.Quantity` or float, optional
        FWHM of the circular restoring beam (arcsec if a number).
    noise : float or `~astropy.units.Quantity`, optional
        Noise rms per pixel in Jy/beam.
    snr_range : tuple of float, optional
        Range of the peak signal-to-noise ratios (peak / ``noise``) of the
        compact sources.
    center : `~astropy.coordinates.SkyCoord`, optional
        Sky position of the image centre (the WCS reference point).
    min_separation : float or None, optional
        Smallest gap, in beam FWHMs, between two sources (between the
        centres of compact sources, between the outer ends of resolved
        ones), so that each truth source stands apart. Sources also stay
        at least one beam (plus their extent) from the edges. None allows
        overlaps.
    add_noise : bool, optional
        If False, return the noiseless model (same sources for the same
        seed), useful to check a measurement against the truth.
    seed : int or None, optional
        Seed of `numpy.random.default_rng`; the same seed gives the same
        image and table.

    Returns
    -------
    image : `~astrofmtools.io.SkyImage`
        ``data`` (float32, Jy/beam), a TAN ``wcs``, ``unit`` Jy/beam,
        ``beam``, ``header`` (WCS, ``BUNIT``, ``BMAJ``/``BMIN``/``BPA``,
        ``NOISE``) and ``meta['noise']``.
    truth : `~astropy.table.QTable`
        One row per source and artefact:

        - ``id``: 1-based running number.
        - ``x``, ``y``: flux-weighted centre (0-based pixel).
        - ``ra``, ``dec`` (deg), ``sky_centroid`` (ICRS): its sky position.
        - ``kind``: ``'compact'``, ``'FRI'``, ``'FRII'`` or ``'artefact'``.
        - ``n_components``: islands of the noiseless model above 3 times
          the noise (1 for compact sources).
        - ``n_peaks``: local maxima of the noiseless model that stand at
          least 3 times the noise above the saddle towards any brighter
          maximum (1 for compact sources).
        - ``peak`` (Jy/beam): brightest pixel of the noiseless source.
        - ``flux`` (Jy): sum of its pixels divided by the beam area in
          pixels, 2 pi sigma^2.
        - ``snr``: ``peak / noise``.
        - ``size`` (arcsec): the beam FWHM for compact sources; for others
          the largest extent (maximum Feret diameter) of the region above
          3 times the noise.
        - ``bbox_xmin``, ``bbox_xmax``, ``bbox_ymin``, ``bbox_ymax``:
          0-based inclusive pixel bounds of the footprint where the
          noiseless model is above the noise rms (1 sigma).

    Raises
    ------
    astrofmtools.InputError
        For bad parameters, or when the sources cannot be placed
        ``min_separation`` apart.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.datasets import make_radio_field
    >>> image, truth = make_radio_field(shape=(256, 256), n_compact=20,
    ...                                 n_extended=3, n_artefacts=1, seed=1)
    >>> image
    <SkyImage 256x256 [Jy / beam] with WCS, beam 5.4"x5.4" from make_radio_field(seed=1)>
    >>> len(truth), sorted(str(k) for k in set(truth['kind']))
    (24, ['FRI', 'FRII', 'artefact', 'compact'])
    >>> float(np.std(image.data - make_radio_field(
    ...     shape=(256, 256), n_compact=20, n_extended=3, n_artefacts=1,
    ...     seed=1, add_noise=False)[0].data))  # doctest: +FLOAT_CMP
    0.00015
    """
    ny, nx = shape = _shape(shape)
    n_compact = _count(n_compact, "n_compact")
    n_extended = _count(n_extended, "n_extended")
    n_artefacts = _count(n_artefacts, "n_artefacts")
    scale = _angle(pixel_scale, "pixel_scale")
    fwhm = _angle(beam_fwhm, "beam_fwhm")
    if isinstance(noise, u.Quantity):
        try:
            noise = noise.to_value(u.Jy / u.beam)
        except u.UnitsError:
            raise InputError(f"noise must be in Jy/beam, not {noise.unit}.") from None
    noise = _positive(noise, "noise")
    lo, hi = _snr_range(snr_range)
    center = _center(center)
    min_separation = _min_separation(min_separation)

    seeds = np.random.SeedSequence(seed).spawn(2)
    rng, noise_rng = np.random.default_rng(seeds[0]), np.random.default_rng(seeds[1])
    fwhm_pix = float(fwhm / scale)
    sigma = fwhm_pix * _FWHM_TO_SIGMA
    beam_area_pix = 2.0 * np.pi * sigma ** 2
    arcsec_per_pix = scale.to_value(u.arcsec)

    # --- draw everything that sets the positions, then place
    kinds = ["compact"] * n_compact + list(np.where(rng.random(n_extended) < 0.5, "FRI", "FRII"))
    galaxies = [_radio_galaxy(rng, kind, fwhm_pix) for kind in kinds[n_compact:]]
    radii = np.zeros(len(kinds))
    for k, comps in enumerate(galaxies):
        radii[n_compact + k] = np.hypot(comps[:, 1], comps[:, 2]).max()
    min_distance = None if min_separation is None else min_separation * fwhm_pix
    xy = _place(rng, shape, radii, min_distance, margin=fwhm_pix, what="radio")
    ext_lo, ext_hi = max(lo, 10.0), max(hi, 10.0)
    peaks = np.concatenate([_log_uniform(rng, lo, hi, n_compact),
                            _log_uniform(rng, ext_lo, ext_hi, n_extended)]) * noise

    data = np.zeros(shape, dtype=np.float32)
    rows = []
    compact_half = int(np.ceil(5 * sigma))
    for k, kind in enumerate(kinds):
        x, y = xy[k]
        if kind == "compact":
            grid = _grid(shape, x, y, compact_half)
            model = Gaussian2D.evaluate(grid[1], grid[2], 1.0, x, y, sigma, sigma, 0.0)
            model *= peaks[k] / model.max()
            row = _measure(model, grid[0], noise, beam_area_pix, arcsec_per_pix,
                           morphology=False)
            row.update(n_components=1, n_peaks=1, size=fwhm_pix * arcsec_per_pix)
        else:
            comps = galaxies[k - n_compact]
            for _ in range(_MAX_REDRAWS):
                extent = (np.hypot(comps[:, 1], comps[:, 2])
                          + 5 * np.hypot(np.maximum(comps[:, 3], comps[:, 4]), sigma)).max()
                grid = _grid(shape, x, y, extent)
                model = _render_components(comps, grid, x, y, sigma)
                model *= peaks[k] / model.max()
                row = _measure(model, grid[0], noise, beam_area_pix, arcsec_per_pix)
                if row["n_components"] <= 3 and row["n_peaks"] <= 3:
                    break
                # keep to 1-3 components and peaks: redraw the morphology,
                # scaled to the extent the source was placed with
                comps = _radio_galaxy(rng, kind, fwhm_pix)
                comps[:, 1:5] *= radii[k] / np.hypot(comps[:, 1], comps[:, 2]).max()
        data[grid[0]] += model
        row["kind"] = kind
        rows.append(row)

    # --- artefacts around the brightest source
    if n_artefacts:
        if len(kinds):
            bright = int(np.argmax(peaks))
            x0, y0, bright_peak = xy[bright, 0], xy[bright, 1], peaks[bright]
        else:
            x0, y0, bright_peak = (nx - 1) / 2.0, (ny - 1) / 2.0, 100 * noise
        for k in range(n_artefacts):
            kind = "ring" if k % 2 == 0 else "stripe"
            amplitude = max(rng.uniform(0.01, 0.03) * bright_peak, rng.uniform(3.0, 6.0) * noise)
            for _ in range(50):
                made = _artefact(rng, kind, x0, y0, amplitude, fwhm_pix, sigma, shape)
                if made is not None and made[1].max() >= COMPONENT_LEVEL * noise:
                    break
            else:  # the brightest source sits where no artefact fits in the image
                continue
            slices, model = made
            data[slices] += model
            row = _measure(model, slices, noise, beam_area_pix, arcsec_per_pix)
            row["kind"] = "artefact"
            rows.append(row)

    # --- beam-correlated noise, exactly `noise` rms per pixel
    if add_noise:
        field = noise_rng.standard_normal(shape, dtype=np.float32)
        field = ndimage.gaussian_filter(field, sigma, mode="wrap")
        field *= np.float32(noise / field.std(dtype=np.float64))
        data += field

    wcs = make_wcs(shape, center, scale)
    unit = u.Jy / u.beam
    beam = Beam(fwhm, fwhm, 0 * u.deg)
    header = _make_header(wcs, unit, fwhm, NOISE=(noise, "[Jy/beam] noise rms per pixel"),
                          SEED=(str(seed), "make_radio_field seed"))
    image = SkyImage(data, wcs=wcs, unit=unit, beam=beam, header=header,
                     mask=np.zeros(data.shape, dtype=bool),
                     source=f"make_radio_field(seed={seed})", meta={"noise": noise})
    truth = _truth_table(rows, wcs, flux_unit=u.Jy, peak_unit=unit,
                         meta=provenance(generator="make_radio_field", seed=seed, noise=noise,
                                         shape=list(shape), beam_fwhm_arcsec=fwhm.value,
                                         pixel_scale_arcsec=scale.value))
    return image, truth


# ---------------------------------------------------------------------------
# optical field


def _oversampled_grid(shape, x, y, half, factor):
    grid = _grid(shape, x, y, half)
    if grid is None:
        return None
    slices = grid[0]
    y0, x0 = slices[0].start, slices[1].start
    nyp, nxp = slices[0].stop - y0, slices[1].stop - x0
    offsets = (np.arange(factor) + 0.5) / factor - 0.5
    yy = (y0 + np.arange(nyp)[:, None] + offsets[None, :]).ravel()
    xx = (x0 + np.arange(nxp)[:, None] + offsets[None, :]).ravel()
    return slices, *np.meshgrid(xx, yy)


def make_optical_field(shape=(512, 512), n_galaxies=40, n_stars=30, psf_fwhm=3.0,
                       sky_noise=1.0, sky_level=100.0, snr_range=(5, 500), gain=None,
                       pixel_scale=0.2 * u.arcsec, center=SkyCoord(150, 2, unit="deg"),
                       min_separation=2.0, add_noise=True, seed=0):
    """
    A synthetic optical image (galaxies and stars) with its truth catalogue.

    - **Galaxies**: `~astropy.modeling.models.Sersic2D` profiles with
      indices 0.5 to 4, effective radii 1 to 8 pixels (log-uniform),
      ellipticities 0 to 0.7 and random orientations, evaluated on
      oversampled stamps (5x5 sub-pixels below r_eff = 2, 3x3 below 5) so
      that small cuspy profiles keep their flux, and convolved with the
      PSF.
    - **Stars**: the PSF, a circular Gaussian of FWHM ``psf_fwhm``
      integrated over each pixel.
    - **Sky**: a constant ``sky_level`` plus Gaussian noise of rms
      ``sky_noise``; with ``gain`` (e-/ADU), the sources also get Poisson
      noise.

    Peak SNRs (peak / ``sky_noise``) are log-uniform in ``snr_range``.

    Parameters
    ----------
    shape : tuple of int, optional
        Image shape (ny, nx).
    n_galaxies, n_stars : int, optional
        Numbers of galaxies and stars.
    psf_fwhm : float, optional
        FWHM of the Gaussian PSF in pixels.
    sky_noise : float, optional
        Rms of the sky noise per pixel (ADU).
    sky_level : float, optional
        Constant sky background (ADU).
    snr_range : tuple of float, optional
        Range of the peak signal-to-noise ratios.
    gain : float or None, optional
        Electrons per ADU for the sources' Poisson noise; None adds none.
    pixel_scale : `~astropy.units.Quantity` or float, optional
        Pixel side (arcsec if a number).
    center : `~astropy.coordinates.SkyCoord`, optional
        Sky position of the image centre.
    min_separation : float or None, optional
        Smallest gap between two sources in PSF FWHMs, on top of their
        extents (2 r_eff for galaxies); None allows overlaps.
    add_noise : bool, optional
        If False, return the noiseless model plus the sky level.
    seed : int or None, optional
        Seed of `numpy.random.default_rng`.

    Returns
    -------
    image : `~astrofmtools.io.SkyImage`
        ``data`` (float32, ADU), TAN ``wcs``, ``unit`` adu, ``beam`` (the
        PSF FWHM as a circular `~astrofmtools.io.Beam`), ``header`` and
        ``meta`` (``sky_level``, ``sky_noise``).
    truth : `~astropy.table.QTable`
        One row per object: ``id``; ``x``, ``y`` (flux-weighted centre,
        0-based pixel); ``ra``, ``dec`` (deg), ``sky_centroid``; ``kind``
        (``'galaxy'`` or ``'star'``); ``flux`` (ADU, sum of the object's
        noiseless pixels); ``peak`` (ADU, its brightest pixel, above the
        sky); ``snr`` (``peak / sky_noise``); ``sersic_n``, ``r_eff``
        (pixels), ``ellipticity``, ``theta`` (deg, counter-clockwise from
        the +x axis) of the intrinsic profile (NaN, NaN, 0, 0 for stars);
        ``bbox_xmin``, ``bbox_xmax``, ``bbox_ymin``, ``bbox_ymax``
        (0-based inclusive bounds of the region where the noiseless
        object exceeds ``sky_noise``).

    Examples
    --------
    >>> from astrofmtools.datasets import make_optical_field
    >>> image, truth = make_optical_field(shape=(128, 128), n_galaxies=5, n_stars=5, seed=2)
    >>> image.unit, image.beam.major.to('arcsec')  # doctest: +FLOAT_CMP
    (Unit("adu"), <Quantity 0.6 arcsec>)
    >>> list(truth['kind']).count('galaxy'), list(truth['kind']).count('star')
    (5, 5)
    """
    ny, nx = shape = _shape(shape)
    n_galaxies = _count(n_galaxies, "n_galaxies")
    n_stars = _count(n_stars, "n_stars")
    psf_fwhm = _positive(psf_fwhm, "psf_fwhm")
    sky_noise = _positive(sky_noise, "sky_noise")
    try:
        sky_level = float(sky_level)
    except (TypeError, ValueError):
        raise InputError(f"sky_level must be a number, not {sky_level!r}.") from None
    if gain is not None:
        gain = _positive(gain, "gain")
    lo, hi = _snr_range(snr_range)
    scale = _angle(pixel_scale, "pixel_scale")
    center = _center(center)
    min_separation = _min_separation(min_separation)

    seeds = np.random.SeedSequence(seed).spawn(2)
    rng, noise_rng = np.random.default_rng(seeds[0]), np.random.default_rng(seeds[1])
    psf_sigma = psf_fwhm * _FWHM_TO_SIGMA

    n = n_galaxies + n_stars
    kinds = ["galaxy"] * n_galaxies + ["star"] * n_stars
    sersic_n = np.full(n, np.nan)
    r_eff = np.full(n, np.nan)
    ellip = np.zeros(n)
    theta = np.zeros(n)
    sersic_n[:n_galaxies] = rng.choice([0.5, 1.0, 1.5, 2.5, 4.0], n_galaxies)
    r_eff[:n_galaxies] = _log_uniform(rng, 1.0, 8.0, n_galaxies)
    ellip[:n_galaxies] = rng.uniform(0.0, 0.7, n_galaxies)
    theta[:n_galaxies] = rng.uniform(0.0, 180.0, n_galaxies)
    radii = np.where(np.isnan(r_eff), 0.0, 2.0 * np.nan_to_num(r_eff))
    min_distance = None if min_separation is None else min_separation * psf_fwhm
    xy = _place(rng, shape, radii, min_distance, margin=psf_fwhm, what="optical")
    peaks = _log_uniform(rng, lo, hi, n) * sky_noise

    data = np.zeros(shape, dtype=np.float64)
    rows = []
    for k, kind in enumerate(kinds):
        x, y = xy[k]
        if kind == "galaxy":
            factor = 5 if r_eff[k] < 2 else 3 if r_eff[k] < 5 else 1
            half = 8 * r_eff[k] * (1 if sersic_n[k] < 2 else 1.5) + 4 * psf_fwhm
            slices, xx, yy = _oversampled_grid(shape, x, y, half, factor)
            # sub-pixel sampling keeps the flux of small, cuspy (high-n) profiles
            model = Sersic2D.evaluate(xx, yy, 1.0, r_eff[k], sersic_n[k], x, y,
                                      ellip[k], np.deg2rad(theta[k]))
            model = ndimage.gaussian_filter(model, psf_sigma * factor, mode="constant",
                                            truncate=5.0)
        else:
            factor = 5
            slices, xx, yy = _oversampled_grid(shape, x, y, 5 * psf_sigma + 1, factor)
            model = Gaussian2D.evaluate(xx, yy, 1.0, x, y, psf_sigma, psf_sigma, 0.0)
        model = block_reduce(model, (factor, factor), np.mean)
        model *= peaks[k] / model.max()
        data[slices] += model
        row = _measure(model, slices, sky_noise, 1.0, 1.0, morphology=False)
        row.update(kind=kind, sersic_n=sersic_n[k], r_eff=r_eff[k], ellipticity=ellip[k],
                   theta=theta[k])
        rows.append(row)

    if add_noise:
        if gain is not None:
            data = noise_rng.poisson(np.clip(data, 0, None) * gain) / gain
        data += noise_rng.normal(0.0, sky_noise, shape)
    data += sky_level

    wcs = make_wcs(shape, center, scale)
    fwhm = psf_fwhm * scale
    header = _make_header(wcs, u.adu, fwhm, SKYLEVEL=(sky_level, "[adu] sky background"),
                          SKYNOISE=(sky_noise, "[adu] sky noise rms per pixel"),
                          SEED=(str(seed), "make_optical_field seed"))
    image = SkyImage(data.astype(np.float32), wcs=wcs, unit=u.adu,
                     beam=Beam(fwhm, fwhm, 0 * u.deg), header=header,
                     mask=np.zeros(shape, dtype=bool),
                     source=f"make_optical_field(seed={seed})",
                     meta={"sky_level": sky_level, "sky_noise": sky_noise})
    truth = _truth_table(rows, wcs, flux_unit=u.adu, peak_unit=u.adu, optical=True,
                         meta=provenance(generator="make_optical_field", seed=seed,
                                         sky_noise=sky_noise, sky_level=sky_level,
                                         shape=list(shape), psf_fwhm_pix=psf_fwhm,
                                         pixel_scale_arcsec=scale.value))
    return image, truth


# ---------------------------------------------------------------------------
# truth tables


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
