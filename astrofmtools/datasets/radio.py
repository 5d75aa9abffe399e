# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
A synthetic radio continuum field with its truth catalogue: compact
sources, FRI/FRII radio galaxies, artefacts and beam-correlated noise.

It is seeded (the same ``seed`` gives the same pixels and the same
table), fast (every source is rendered in a small stamp, never over the
whole image) and comes with a real TAN WCS and a FITS header, so it can be
written to a file and read back with `~astrofmtools.io.load_image`.
"""

import numpy as np
import astropy.units as u
from astropy.coordinates import SkyCoord
from astropy.modeling.models import Gaussian2D
from scipy import ndimage

from ..exceptions import InputError
from ..io import Beam, SkyImage
from ..utils import provenance
from .checks import _angle, _center, _count, _min_separation, _positive, _shape, _snr_range
from .stamps import _FWHM_TO_SIGMA, _grid, _log_uniform, _place
from .truth import COMPONENT_LEVEL, _measure, _truth_table
from .wcs import _make_header, make_wcs

__all__ = ["make_radio_field"]

_MAX_REDRAWS = 20


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
