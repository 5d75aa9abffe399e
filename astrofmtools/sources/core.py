# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Source finding: `find_sources`, on the whole image or in tiles."""

import numpy as np

from ..background import BackgroundMaps
from ..background.core import _box_tuple
from ..utils.checks import check_number
from ..exceptions import InputError
from ..io import auto_tile_size, load_image
from ..utils import provenance
from .detection import _find_whole
from .filtering import cov_to_fwhm
from .measure import _build_table, _empty_columns
from .plan import _describe_filter
from .tiled import _find_tiled

__all__ = ["find_sources"]

#: Working memory of the whole-image path per pixel, in bytes (measured with
#: ``benchmarks/scaling.py``); sets when an image is tiled and how large a tile is.
BYTES_PER_PIXEL = 24


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
       ``island_snr`` (the segmentation of photutils
       `~photutils.segmentation.detect_sources`), kept if they reach ``snr``;
    4. peaks: local maxima above ``snr`` that rise at least
       ``peak_prominence`` sigma above the saddle joining them to a higher
       peak; islands with several are split between their peaks by a
       watershed (``deblend=True``);
    5. measurement of each segment on the unfiltered background-subtracted
       image (the quantities of photutils
       `~photutils.segmentation.SourceCatalog`, as vectorised sums over the
       segments' pixels).

    Images whose working memory (about `BYTES_PER_PIXEL` bytes a pixel)
    would exceed `~astrofmtools.io.tiles.MEMORY_BUDGET` are processed in
    overlapping tiles (`~astrofmtools.io.plan_tiles`, sized by
    `~astrofmtools.io.auto_tile_size`), whether the
    pixels are in memory or read on demand from the file, so peak memory
    stays flat whatever the mosaic size. The matched filter and its noise are
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
        decided by size and memory (`~astrofmtools.io.auto_tile_size`).
    overlap : int, optional
        The overlap of the tiles; make it larger than the largest source.
    scheduler : str or executor, optional
        Where the tiles run (see `~astrofmtools.io.map_tiles`): serially
        (default), ``"threads"``, ``"dask"`` (a local Dask cluster of
        ``workers`` processes), a Dask scheduler's address
        (``"tcp://host:8786"``), or an executor such as a
        ``dask.distributed.Client``. The table is the same whichever runs
        them. Unused for an image processed whole.
    workers : int, optional
        The number of threads or local Dask workers.

    Returns
    -------
    table : `~astropy.table.QTable`
        One row per source, in raster order of the peak pixel, with columns
        (see ``SOURCE_COLUMNS`` for their descriptions): ``id``, ``island``,
        ``x``, ``y`` (0-based pixel), ``sky_centroid`` (ICRS
        `~astropy.coordinates.SkyCoord`), ``ra``, ``dec``, ``bbox_xmin``,
        ``bbox_xmax``, ``bbox_ymin``, ``bbox_ymax`` (0-based, inclusive),
        ``area`` (pix2), ``peak`` (image unit), ``flux`` (integrated, by
        `integrated_flux`: Jy for Jy/beam, MJy/sr, Jy/pixel and Jy images;
        otherwise the pixel sum in the image unit, as ``meta['flux']``
        says), ``snr`` (peak
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
    snr = check_number(snr, "snr", "a positive number (the detection threshold, in sigma)",
                       _positive)
    island_snr = check_number(island_snr, "island_snr", "a positive number (sigma)", _positive)
    peak_prominence = check_number(peak_prominence, "peak_prominence",
                                   "a non-negative number (sigma)", lambda v: 0 <= v < np.inf)
    npixels = check_number(npixels, "npixels", "None or a positive integer (pixels)",
                           lambda v: v >= 1, integer=True, none=True)
    _check_options(psf_fwhm, deblend, box_size, overlap, workers)
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
    if tile_size is None:  # decided by size and memory, whatever the kind of array
        tile_size = auto_tile_size(shape, BYTES_PER_PIXEL)
    else:
        tile_size = check_number(tile_size, "tile_size", "a whole number of pixels (0: never tile)",
                                 lambda v: v >= 0, integer=True)
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


def _positive(value):
    return 0 < value < np.inf


def _check_options(psf_fwhm, deblend, box_size, overlap, workers):
    """InputErrors naming the argument for options of the wrong type, unit or range."""
    import astropy.units as u
    if psf_fwhm is not None:
        accepts = ("a positive FWHM in pixels (a number), an angle (a Quantity), or "
                   "(major, minor, theta_deg) in pixels and degrees")
        if isinstance(psf_fwhm, u.Quantity):
            if not (psf_fwhm.unit.physical_type == "angle"
                    or psf_fwhm.unit.is_equivalent(u.pix)
                    or psf_fwhm.unit == u.dimensionless_unscaled):
                raise InputError(f"psf_fwhm must be {accepts}; {psf_fwhm} is neither pixels "
                                 "nor an angle.")
        elif isinstance(psf_fwhm, (tuple, list, np.ndarray)) and np.ndim(psf_fwhm) == 1:
            if len(psf_fwhm) != 3:
                raise InputError(f"psf_fwhm must be {accepts}, not {psf_fwhm!r}.")
            for k, v in enumerate(psf_fwhm):
                check_number(v, "psf_fwhm", accepts, _positive if k < 2 else np.isfinite)
        else:
            check_number(psf_fwhm, "psf_fwhm", accepts, _positive)
    if not isinstance(deblend, (bool, np.bool_)):
        raise InputError(f"deblend must be True or False, not {deblend!r}.")
    _box_tuple(box_size)
    check_number(overlap, "overlap", "a non-negative whole number of pixels", lambda v: v >= 0,
                 integer=True)
    check_number(workers, "workers", "None or a positive integer", lambda v: v >= 1, integer=True,
                 none=True)
