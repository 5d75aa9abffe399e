# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Background and RMS maps (the box statistics of photutils Background2D, computed
on sorted boxes) and global noise statistics.
"""

import warnings
from typing import NamedTuple

import numpy as np
import astropy.units as u
from astropy.io import fits
from astropy.stats import SigmaClip
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS, FITSFixedWarning

from ..exceptions import InputError
from ..io import load_image
from ..utils import atomic_output, provenance
from ..utils.checks import check_number
from .meshes import _box_meshes, _expand_mesh, _fill_mesh, _filter_mesh

__all__ = ["BackgroundMaps", "GlobalNoise", "clipped_std_correction", "estimate_background",
           "global_noise"]

#: An image needs at least this many boxes along each side for a 2-D
#: background; smaller images get global statistics.
MIN_BOXES = 2


class GlobalNoise(NamedTuple):
    """
    Sigma-clipped statistics of a whole image, in the image's unit.

    Attributes
    ----------
    mean, median, std : float
        The sigma-clipped mean, median and standard deviation.
    rms : float
        The noise: ``std`` corrected for the clipping (see
        `clipped_std_correction`), so that it estimates the sigma of
        Gaussian noise.
    n_pixels : int
        The number of pixels left after clipping.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.background import global_noise
    >>> stats = global_noise((np.random.default_rng(3).normal(0.0, 1.0, (300, 300)), None))
    >>> round(stats.rms, 2), round(stats.std, 2)  # the clipped std is 1.5% low
    (1.0, 0.98)
    """

    mean: float
    median: float
    std: float
    rms: float
    n_pixels: int

    @property
    def background(self):
        """The sky level: the clipped median."""
        return self.median


def clipped_std_correction(sigma=3.0):
    """
    The factor that turns a sigma-clipped standard deviation into Gaussian sigma.

    Clipping Gaussian noise at ``sigma`` times its (clipped) standard
    deviation, iterated to convergence, cuts the tails, so the standard
    deviation of what is left is too small: by 1.5% for 3-sigma clipping.
    This factor undoes that, so that a ``5 * rms`` threshold is a true
    5-sigma threshold.

    Parameters
    ----------
    sigma : float
        The clipping threshold in standard deviations.

    Returns
    -------
    factor : float
        Multiply the clipped standard deviation by this.

    Examples
    --------
    >>> from astrofmtools.background import clipped_std_correction
    >>> round(clipped_std_correction(3.0), 4)
    1.0154
    """
    from scipy.special import erf
    if not np.isfinite(sigma) or sigma >= 8:
        return 1.0
    sigma = max(float(sigma), 1.0)
    c = sigma
    for _ in range(200):  # fixed point: clip at c = sigma * (truncated std)
        mass = erf(c / np.sqrt(2.0))
        var = 1.0 - 2.0 * c * np.exp(-0.5 * c * c) / np.sqrt(2.0 * np.pi) / mass
        c_new = sigma * np.sqrt(var)
        if abs(c_new - c) < 1e-12:
            break
        c = c_new
    return float(1.0 / np.sqrt(var))


def _image_arrays(image, mask, what):
    """The float pixels, the no-data mask and the ignore mask of an image."""
    image = load_image(image).require_2d(what)
    data = np.asarray(image.data)
    if data.ndim != 2:
        raise InputError(f"{what} needs a 2-D image; {image.source} is {data.ndim}-D.")
    if data.size == 0:
        raise InputError(f"{what} needs pixels; {image.source} is empty (shape {data.shape}).")
    if data.dtype.kind != "f" or not data.dtype.isnative:
        data = data.astype(np.float32 if data.dtype.itemsize <= 4 else np.float64)
    nodata = ~np.isfinite(data)
    if image.mask is not None:
        image_mask = np.asarray(image.mask, dtype=bool)
        if image_mask.shape != data.shape:
            raise InputError(f"The no-data mask of {image.source} has shape {image_mask.shape}, "
                             f"not the image's {data.shape}.")
        nodata |= image_mask
    if nodata.all():
        raise InputError(f"{image.source} has no valid pixel: all are NaN, Inf or masked.")
    ignore = None
    if mask is not None:
        ignore = np.asarray(mask)
        if ignore.shape != data.shape:
            raise InputError(f"mask has shape {ignore.shape}, but {image.source} has shape "
                             f"{data.shape}; give one boolean per pixel (True = ignore).")
        ignore = ignore.astype(bool)
        if (ignore | nodata).all():
            raise InputError(f"mask and the no-data pixels of {image.source} together cover "
                             "the whole image: no pixel is left to measure.")
    return image, data, nodata, ignore


def global_noise(image, sigma=3.0, mask=None, maxiters=10):
    """
    Sigma-clipped background level and noise of a whole image.

    The right tool for small images (cutouts, fewer than two background
    boxes per side) and a quick look at large ones.

    Parameters
    ----------
    image : `~astrofmtools.io.SkyImage` or any input of `~astrofmtools.io.load_image`
        The image. Its no-data pixels (``image.mask``, NaN, Inf) are left out.
    sigma : float, optional
        The clipping threshold, in standard deviations.
    mask : array of bool, optional
        Pixels to ignore as well (True = ignore), e.g. bright sources.
    maxiters : int, optional
        The most clipping iterations.

    Returns
    -------
    stats : `GlobalNoise`
        ``mean``, ``median``, ``std`` (floats in the image's unit) and
        ``n_pixels``; ``background`` is the median and ``rms`` the
        standard deviation.

    Raises
    ------
    astrofmtools.InputError
        If no pixel is valid, or ``mask`` does not match the image.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.background import global_noise
    >>> rng = np.random.default_rng(0)
    >>> data = rng.normal(10.0, 2.0, (100, 100))
    >>> data[40:45, 40:45] += 500  # a bright source, clipped away
    >>> stats = global_noise((data, None))
    >>> round(stats.median, 1), round(stats.std, 1)
    (10.0, 2.0)
    """
    image, data, nodata, ignore = _image_arrays(image, mask, "global_noise")
    bad = nodata if ignore is None else nodata | ignore
    values = data[~bad] if bad.any() else data.ravel()
    return _global_stats(values, sigma, maxiters)


def _global_stats(values, sigma=3.0, maxiters=10):
    with warnings.catch_warnings():
        # a constant image gives a zero standard deviation
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", AstropyUserWarning)
        clipped = SigmaClip(sigma=sigma, maxiters=maxiters)(values, masked=False, axis=None)
        good = clipped[np.isfinite(clipped)]
        std = float(np.std(good))
        return GlobalNoise(float(np.mean(good)), float(np.median(good)), std,
                           std * clipped_std_correction(sigma), int(good.size))


class BackgroundMaps:
    """
    Background and RMS maps of an image, as `estimate_background` returns them.

    Attributes
    ----------
    background : `~numpy.ndarray`
        The sky level in each pixel (image unit), NaN where the image has
        no data.
    rms : `~numpy.ndarray`
        The noise (sigma-clipped standard deviation, corrected for the
        clipping) in each pixel, NaN where the image has no data.
    background_median, rms_median : float
        The medians of the maps over the valid pixels.
    method : str
        ``"Background2D"`` (box statistics) or ``"global"`` (constant maps
        from `global_noise`).
    box_size : tuple of int or None
        The ``(y, x)`` box size of the box statistics.
    unit : `~astropy.units.Unit` or None
        The image's unit.
    wcs : `~astropy.wcs.WCS` or None
        The image's WCS.
    meta : dict
        How the maps were made (`~astrofmtools.utils.provenance`).

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.background import BackgroundMaps
    >>> maps = BackgroundMaps(np.zeros((4, 4)), np.ones((4, 4)))
    >>> maps.rms_median, maps.shape
    (1.0, (4, 4))
    """

    def __init__(self, background, rms, method="Background2D", box_size=None, unit=None,
                 wcs=None, meta=None):
        self.background = np.asarray(background)
        self.rms = np.asarray(rms)
        if self.background.shape != self.rms.shape or self.background.ndim != 2:
            raise InputError(f"The background {self.background.shape} and RMS "
                             f"{self.rms.shape} maps must be 2-D with the same shape.")
        self.method = method
        self.box_size = box_size
        self.unit = u.Unit(unit) if unit is not None else None
        self.wcs = wcs
        self.meta = dict(meta) if meta is not None else {}

    def __repr__(self):
        unit = f" {self.unit}" if self.unit is not None else ""
        return (f"<BackgroundMaps {self.shape[1]}x{self.shape[0]} ({self.method}): "
                f"median background {self.background_median:.4g}{unit}, "
                f"median rms {self.rms_median:.4g}{unit}>")

    @property
    def shape(self):
        """The maps' shape, (ny, nx)."""
        return self.background.shape

    @property
    def background_median(self):
        """The median of the background map over pixels with data."""
        return float(np.nanmedian(self.background))

    @property
    def rms_median(self):
        """The median of the RMS map over pixels with data."""
        return float(np.nanmedian(self.rms))

    def __getitem__(self, slices):
        """The maps of a part of the image (a ``(y, x)`` pair of slices)."""
        wcs = self.wcs[slices] if self.wcs is not None else None
        return BackgroundMaps(self.background[slices], self.rms[slices], method=self.method,
                              box_size=self.box_size, unit=self.unit, wcs=wcs, meta=self.meta)

    def write(self, path, overwrite=False):
        """
        Write the maps to a FITS file: the background, then the RMS.

        HDU 0 (``EXTNAME='BACKGROUND'``) holds the background and HDU 1
        (``EXTNAME='RMS'``) the RMS, each with the image's WCS and unit.
        NaN marks pixels without data.

        Parameters
        ----------
        path : str or `~pathlib.Path`
            The output file.
        overwrite : bool, optional
            Replace an existing file.

        Raises
        ------
        astrofmtools.InputError
            If the file exists and ``overwrite`` is False.

        Examples
        --------
        >>> import numpy as np
        >>> from astrofmtools.background import BackgroundMaps
        >>> maps = BackgroundMaps(np.zeros((8, 8)), np.ones((8, 8)), unit="Jy/beam")
        >>> maps.write("background.fits")
        >>> BackgroundMaps.read("background.fits").rms_median
        1.0
        """
        header = self.wcs.to_header(relax=True) if self.wcs is not None else fits.Header()
        if self.unit is not None:
            header["BUNIT"] = self.unit.to_string("fits")
        header["BKGMETH"] = (self.method, "how the maps were estimated")
        if self.box_size is not None:
            header["BKGBOXY"] = (int(self.box_size[0]), "box size along y (pixels)")
            header["BKGBOXX"] = (int(self.box_size[1]), "box size along x (pixels)")
        for key in ("sigma", "filter_size"):
            if key in self.meta and self.meta[key] is not None:
                value = self.meta[key]
                value = value[0] if isinstance(value, (tuple, list)) else value
                header[f"BKG{key[:5].upper()}"] = (value, f"background {key}")
        if "image" in self.meta:
            # the input image; a long path continues on CONTINUE cards
            header["BKGIMAGE"] = str(self.meta["image"])
        primary = fits.PrimaryHDU(self.background, header=header)
        primary.header["EXTNAME"] = "BACKGROUND"
        rms = fits.ImageHDU(self.rms, header=header, name="RMS")
        with atomic_output(path, overwrite=overwrite) as tmp:
            fits.HDUList([primary, rms]).writeto(tmp)

    @classmethod
    def read(cls, path):
        """
        Read maps written by `write`.

        Parameters
        ----------
        path : str or `~pathlib.Path`
            The FITS file.

        Returns
        -------
        maps : `BackgroundMaps`

        Examples
        --------
        >>> import numpy as np
        >>> from astrofmtools.background import BackgroundMaps
        >>> BackgroundMaps(np.zeros((8, 8)), np.full((8, 8), 2.0)).write("bkg.fits")
        >>> BackgroundMaps.read("bkg.fits").rms_median
        2.0
        """
        try:
            hdul = fits.open(path)
        except (OSError, ValueError) as exc:
            raise InputError(f"Cannot read background maps from {str(path)!r} ({exc}).") from None
        with hdul:
            names = [h.name for h in hdul]
            if "BACKGROUND" not in names or "RMS" not in names:
                raise InputError(f"{str(path)!r} is not a background file: it needs HDUs "
                                 f"BACKGROUND and RMS, and has {names}.")
            header = hdul["BACKGROUND"].header
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FITSFixedWarning)
                wcs = WCS(header) if "CTYPE1" in header else None
            box = (header["BKGBOXY"], header["BKGBOXX"]) if "BKGBOXY" in header else None
            return cls(np.array(hdul["BACKGROUND"].data), np.array(hdul["RMS"].data),
                       method=header.get("BKGMETH", "Background2D"), box_size=box,
                       unit=header.get("BUNIT"), wcs=wcs)


def _box_tuple(box_size, name="box_size"):
    sides = box_size
    if isinstance(box_size, (tuple, list, np.ndarray)) and np.ndim(box_size) == 1:
        sides = tuple(box_size) * (2 if len(box_size) == 1 else 1)
        if len(sides) != 2:
            sides = None
    else:
        sides = (box_size, box_size)
    if sides is None:
        raise InputError(f"{name} must be a positive integer or a (y, x) pair of them, not "
                         f"{box_size!r}.")
    box = tuple(check_number(v, name, "a positive integer or a (y, x) pair of them",
                             lambda v: v >= 1, integer=True) for v in sides)
    return box


def estimate_background(image, box_size=64, filter_size=3, sigma=3.0, mask=None,
                        exclude_percentile=10.0, tile_size=None, scheduler=None, workers=None):
    """
    Background and RMS maps of an image.

    The image is cut into boxes; in each, the sky level (SourceExtractor's
    mode estimate) and the noise (standard deviation) are measured after
    sigma clipping (the standard deviation corrected for the clipping with
    `clipped_std_correction`), the box values are median-filtered and then
    interpolated bilinearly between box centres into full-size maps. The
    box values are those of photutils `~photutils.background.Background2D`
    (with `~astropy.stats.SigmaClip`), computed here on the sorted pixels
    of each row of boxes, several times faster. Images with fewer
    than two boxes along a side, and images whose boxes are nearly all
    masked, get constant maps from global sigma-clipped statistics
    (`global_noise`) instead.

    Parameters
    ----------
    image : `~astrofmtools.io.SkyImage` or any input of `~astrofmtools.io.load_image`
        The image. Its no-data pixels (``image.mask``, NaN, Inf) are the
        photutils ``coverage_mask``: left out of the statistics, and NaN in
        the maps.
    box_size : int or (int, int), optional
        The box side in pixels (or ``(y, x)`` sides). Make it several times
        the largest source and small enough to follow the background's
        variations.
    filter_size : int or (int, int), optional
        The size, in boxes, of the median filter applied to the box values.
    sigma : float, optional
        The clipping threshold, in standard deviations.
    mask : array of bool, optional
        Pixels to ignore (True = ignore): bright sources, artefacts. They
        are left out of the statistics but get map values (the photutils
        ``mask``).
    exclude_percentile : float, optional
        Boxes with more than this percentage of ignored or no-data pixels
        get their values from their neighbours.
    tile_size : int, optional
        Estimate the maps in overlapping tiles of this side (pixels), each
        from its own boxes, kept over the tile's core; 0 never tiles. By
        default decided by size and memory (`~astrofmtools.io.auto_tile_size`),
        so that a mosaic read on demand is never read whole. The maps are
        then float32; ``meta['tile_size']`` records the tiling.
    scheduler : str or executor, optional
        Where the tiles run (see `~astrofmtools.io.map_tiles`): serially
        (default), ``"threads"``, ``"dask"`` or a Dask scheduler's address
        or client; the maps are the same whichever runs them.
    workers : int, optional
        The number of threads or local Dask workers.

    Returns
    -------
    maps : `BackgroundMaps`
        ``background`` and ``rms`` maps (arrays of the image's shape),
        their medians, the method used and the image's WCS.

    Raises
    ------
    astrofmtools.InputError
        If the image has no valid pixel, ``mask`` does not match it, or an
        option is invalid.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.background import estimate_background
    >>> rng = np.random.default_rng(1)
    >>> yy, xx = np.mgrid[:256, :256]
    >>> data = 5.0 + 0.01 * xx + rng.normal(0.0, 0.5, (256, 256))
    >>> maps = estimate_background((data, None), box_size=32)
    >>> maps.method, round(maps.rms_median, 1)
    ('Background2D', 0.5)
    >>> maps.background[128, [48, 208]].round(1)  # the sky rises by 0.01 per pixel in x
    array([5.5, 7.1])

    A small image gets constant maps from global statistics:

    >>> small = estimate_background((data[:40, :40], None), box_size=32)
    >>> small.method
    'global'
    """
    box = _box_tuple(box_size)
    filt = _box_tuple(filter_size, "filter_size")
    sigma = check_number(sigma, "sigma", "a positive number (standard deviations)", lambda v: v > 0
                         and np.isfinite(v))
    exclude_percentile = check_number(exclude_percentile, "exclude_percentile",
                                      "a percentage between 0 and 100", lambda v: 0 <= v <= 100)
    check_number(workers, "workers", "None or a positive integer", lambda v: v >= 1, integer=True,
                 none=True)
    image = load_image(image).require_2d("estimate_background")
    tiled = _tiled_maps(image, mask, tile_size, box, filt, scheduler, workers,
                        dict(sigma=sigma, exclude_percentile=exclude_percentile))
    if tiled is not None:
        return tiled
    image, data, nodata, ignore = _image_arrays(image, mask, "estimate_background")
    meta = provenance(stage="background", image=image.source, box_size=list(box),
                      filter_size=list(filt), sigma=float(sigma))
    bad = nodata if ignore is None else nodata | ignore
    if data.shape[0] >= MIN_BOXES * box[0] and data.shape[1] >= MIN_BOXES * box[1]:
        min_good = (1.0 - exclude_percentile / 100.0) * box[0] * box[1]
        bkg_mesh, rms_mesh = _box_meshes(data, bad if bad.any() else None, box, sigma, 10,
                                         min_good)
        if np.isnan(bkg_mesh).all():
            meta["note"] = (f"too few good boxes for a 2-D background (all boxes have <= "
                            f"{min_good:g} good pixels); global statistics")
        else:
            bkg_mesh = _filter_mesh(_fill_mesh(bkg_mesh), filt)
            rms_mesh = _filter_mesh(_fill_mesh(rms_mesh), filt) * clipped_std_correction(sigma)
            background = _expand_mesh(bkg_mesh, box, data.shape, data.dtype)
            rms = _expand_mesh(rms_mesh, box, data.shape, data.dtype)
            if nodata.any():
                background[nodata] = np.nan
                rms[nodata] = np.nan
            return BackgroundMaps(background, rms, method="Background2D", box_size=box,
                                  unit=image.unit, wcs=image.wcs, meta=meta)
    stats = _global_stats(data[~bad], sigma)
    background = np.full(data.shape, stats.median, dtype=data.dtype)
    rms = np.full(data.shape, stats.rms, dtype=data.dtype)
    background[nodata] = np.nan
    rms[nodata] = np.nan
    return BackgroundMaps(background, rms, method="global", box_size=None, unit=image.unit,
                          wcs=image.wcs, meta=meta)


def _tiled_maps(image, mask, tile_size, box, filt, scheduler, workers, settings):
    """The maps of an image too large to estimate whole, from tiles; None to estimate it whole."""
    from ..io import auto_tile_size
    from .tiled import BYTES_PER_PIXEL, _estimate_tiled
    shape = tuple(image.shape)
    if tile_size is None:
        tile_size = auto_tile_size(shape, BYTES_PER_PIXEL)
    else:
        tile_size = check_number(tile_size, "tile_size", "a whole number of pixels (0: never tile)",
                                 lambda v: v >= 0, integer=True)
    if not tile_size or (shape[0] <= tile_size and shape[1] <= tile_size):
        return None
    if mask is not None and np.shape(mask) != shape:
        raise InputError(f"mask has shape {np.shape(mask)}, but {image.source} has shape "
                         f"{shape}; give one boolean per pixel (True = ignore).")
    background, rms, methods, overlap = _estimate_tiled(image, mask, int(tile_size), box, filt,
                                                        settings, scheduler, workers)
    meta = provenance(stage="background", image=image.source, box_size=list(box),
                      filter_size=list(filt), sigma=float(settings["sigma"]),
                      tile_size=int(tile_size), overlap=overlap)
    method = "global" if methods == {"global"} else "Background2D"
    return BackgroundMaps(background, rms, method=method, box_size=box if method != "global"
                          else None, unit=image.unit, wcs=image.wcs, meta=meta)
