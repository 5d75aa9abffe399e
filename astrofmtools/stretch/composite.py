# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Multi-band images into channels: per-band stretches, Lupton RGB, radio on infrared."""

import numpy as np
from astropy.io import fits
from astropy.nddata import NDData
from astropy.visualization import (LuptonAsinhStretch, LuptonAsinhZscaleStretch,
                                   ManualInterval, make_lupton_rgb)
from scipy.ndimage import binary_dilation
from skimage.segmentation import find_boundaries

from ..exceptions import InputError
from .core import Stretch, _as_array, _clipped_stats, _noise_levels, stack_channels
from .core import noise_floor as _noise_floor

__all__ = ["stretch_bands", "lupton_rgb", "radio_ir_composite"]


# --------------------------------------------------------------------- inputs
def _band_array(image, names=None):
    """
    ``(array, names)``: the pixels as ``(C, H, W)`` or ``(N, C, H, W)`` floats
    (NaN where there is no data) and the C band names.

    A `~astrofmtools.io.SkyImage` is (C, H, W) (a 2-D one is one band); a
    `~astrofmtools.cutouts.CutoutStack` (or any stack of images with
    ``data``, ``table`` and ``bands``: stretch does not import cutouts, which
    is downstream of it) is (N, C, H, W) (a 2-D stack is one band); a plain
    array is (C, H, W) when 3-D, (N, C, H, W) when 4-D.
    """
    from ..io import SkyImage, load_image

    own = None
    if _is_stack(image):
        arr = _as_array(image.data, name="the cutout stack")
        if arr.ndim == 3:
            arr = arr[:, None]
        own = image.bands
    else:
        if isinstance(image, fits.HDUList) or not isinstance(image, (np.ndarray, NDData, list)):
            image = load_image(image)  # a file, an HDU(List) or (array, WCS)
        if isinstance(image, SkyImage):
            own = image.bands
        arr = _as_array(image, name="image")
        if arr.ndim == 2:
            arr = arr[None]
        elif arr.ndim > 4:
            raise InputError(f"image must be (C, H, W) bands or an (N, C, H, W) stack; it has "
                             f"shape {arr.shape}.")
    n = arr.shape[-3]
    if names is not None and own is not None and list(names) != list(own):
        raise InputError(f"The image already names its bands ({', '.join(own)}); leave names "
                         f"out (got {', '.join(map(str, names))}).")
    names = own if own is not None else names
    if names is None:
        names = [f"band{i}" for i in range(n)]
    names = [str(b) for b in ([names] if isinstance(names, str) else names)]
    if len(names) != n:
        raise InputError(f"{len(names)} band names ({', '.join(names)}) for {n} bands (image "
                         f"shape {arr.shape}, bands on axis -3).")
    return arr, names


def _is_stack(image):
    """Whether ``image`` is a cutout stack: images with a table (``data``, ``table``, ``bands``)."""
    return (not isinstance(image, (np.ndarray, NDData, fits.HDUList, list, str))
            and all(hasattr(image, attr) for attr in ("data", "table", "bands")))


def _select(names, keys, what):
    """Indices of the bands named (or numbered) by ``keys``."""
    out = []
    for key in keys:
        if isinstance(key, str):
            if key not in names:
                raise InputError(f"{what}: there is no band {key!r}; the bands are: "
                                 f"{', '.join(names)}.")
            out.append(names.index(key))
        elif (isinstance(key, (int, np.integer)) and not isinstance(key, bool)
              and -len(names) <= key < len(names)):
            out.append(int(key) % len(names))
        else:
            raise InputError(f"{what}: there is no band {key!r}; the bands are: "
                             f"{', '.join(names)} (or 0 to {len(names) - 1}).")
    return out


def _per_band(value, default, selected, what):
    """One value per selected band from a scalar, a list (one each) or a dict by name."""
    if isinstance(value, dict):
        unknown = [k for k in value if k not in selected]
        if unknown:
            raise InputError(f"{what}: no band {', '.join(map(repr, unknown))} among the bands "
                             f"used ({', '.join(selected)}).")
        return [value.get(name, default) for name in selected]
    if isinstance(value, (list, tuple)):
        if len(value) != len(selected):
            raise InputError(f"{what}: {len(value)} values for {len(selected)} bands "
                             f"({', '.join(selected)}); give one per band, a dict by band "
                             "name or a single value.")
        return list(value)
    return [value] * len(selected)


def _stretch_arrays(arr, names, index, stretch, interval, percentile, noise_floor, rms,
                    background, vmin, vmax, a, fill):
    """Each selected band stretched on its own: a list of (..., H, W) float32 arrays."""
    selected = [names[i] for i in index]
    settings = {
        "stretch": _per_band(stretch, "asinh", selected, "stretch"),
        "interval": _per_band(interval, None, selected, "interval"),
        "k": _per_band(noise_floor, None, selected, "noise_floor"),
        "rms": _per_band(rms, "auto", selected, "rms"),
        "background": _per_band(background, "auto", selected, "background"),
        "vmin": _per_band(vmin, None, selected, "vmin"),
        "vmax": _per_band(vmax, None, selected, "vmax"),
        "a": _per_band(a, None, selected, "a"),
    }
    channels = []
    for j, i in enumerate(index):
        s = {key: values[j] for key, values in settings.items()}
        band = arr[..., i, :, :]
        if s["k"] is not None:
            band = _noise_floor(band, rms=s["rms"], k=s["k"], background=s["background"])
            s["vmin"] = 0.0 if s["vmin"] is None else s["vmin"]
        if not isinstance(s["stretch"], Stretch):
            if s["interval"] is None:
                s["interval"] = "minmax" if s["k"] is not None else "percentile"
            s["stretch"] = Stretch(s["stretch"], interval=s["interval"], percentile=percentile,
                                   vmin=s["vmin"], vmax=s["vmax"], a=s["a"], fill=fill)
        channels.append(s["stretch"](band))
    return channels


# ------------------------------------------------------------------ stretches
def stretch_bands(image, stretch="asinh", interval=None, percentile=99.5, *, bands=None,
                  names=None, noise_floor=None, rms="auto", background="auto", vmin=None,
                  vmax=None, a=None, fill=0.0):
    """
    Stretch each band of a multi-band image on its own, into channels.

    Surveys differ in units, noise and dynamic range (a radio image in
    Jy/beam, an infrared one in Vega nanomaggies), so each band gets its own
    interval, its own optional noise floor and its own stretch, computed
    from that band alone (and, for a stack, from each image alone). The
    channels are assembled by `~astrofmtools.stretch.stack_channels`, as in
    `~astrofmtools.stretch.multi_stretch`.

    Parameters
    ----------
    image : `~astrofmtools.io.SkyImage`, `~astrofmtools.cutouts.CutoutStack` or array
        A multi-band image ``(C, H, W)`` (as `~astrofmtools.io.load_bands`
        makes), multi-band cutouts ``(N, C, H, W)``, or an array of either
        shape (3-D: bands; 4-D: a stack of them). A 2-D image is one band.
        Masked and NaN pixels are no data.
    stretch : str, `~astropy.visualization.BaseStretch`, `Stretch`, list or dict, optional
        The stretch (see `STRETCHES`) of every band; a list gives one per
        band used, a dict by band name (bands left out: ``'asinh'``). A
        `Stretch` instance is used as it is (its own interval too).
    interval : str, `~astropy.visualization.BaseInterval`, list or dict, optional
        The interval (see `INTERVALS`); by default ``'percentile'``, and
        ``'minmax'`` for bands with a noise floor (most of their pixels
        are at the floor, so a percentile may be the floor itself).
    percentile : float or (float, float), optional
        For percentile intervals, as in `Stretch` (the same for all bands).
    bands : list of str or int, optional
        The bands to use, in the output order (default: all, in order).
    names : list of str, optional
        Band names of a plain array (a `~astrofmtools.io.SkyImage` or
        `~astrofmtools.cutouts.CutoutStack` carries its own).
    noise_floor : float, list or dict, optional
        Apply `~astrofmtools.stretch.noise_floor` with this ``k`` (in units
        of the noise rms) before stretching: a number for every band, or
        per band (None: no floor). Floored bands get ``vmin=0``.
    rms, background : optional
        For the noise floor, as in `~astrofmtools.stretch.noise_floor`
        (default ``'auto'``: sigma-clipped statistics of each image); per
        band as a list or dict.
    vmin, vmax, a : float, list or dict, optional
        As in `Stretch`, for every band or per band.
    fill : float, optional
        Output value of pixels without data.

    Returns
    -------
    channels : `~numpy.ndarray`
        float32 in [0, 1] (and ``fill``), ``(C, H, W)`` or ``(N, C, H, W)``
        with C the number of bands used.

    Raises
    ------
    astrofmtools.InputError
        For a band the image does not have (the message lists its bands),
        or per-band settings that do not match the bands.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.io import SkyImage
    >>> from astrofmtools.stretch import stretch_bands
    >>> rng = np.random.default_rng(0)
    >>> radio = rng.normal(0, 1e-4, (32, 32)); radio[16, 16] = 0.05   # Jy/beam
    >>> infrared = rng.normal(100.0, 5.0, (32, 32))                    # counts
    >>> image = SkyImage(np.stack([radio, infrared]), bands=["first", "w1"])
    >>> out = stretch_bands(image, stretch={"first": "log"}, noise_floor={"first": 3})
    >>> out.shape, out.dtype, float(out[0, 16, 16]), float(out[0, 0, 0])
    ((2, 32, 32), dtype('float32'), 1.0, 0.0)
    >>> stretch_bands(image, bands=["w1"]).shape
    (1, 32, 32)
    """
    arr, band_names = _band_array(image, names)
    index = _select(band_names, band_names if bands is None else list(bands),
                    "stretch_bands")
    channels = _stretch_arrays(arr, band_names, index, stretch, interval, percentile,
                               noise_floor, rms, background, vmin, vmax, a, fill)
    return stack_channels(channels)


def lupton_rgb(image, bands=None, *, names=None, Q=8.0, stretch="zscale", minimum=None,
               scales=None, fill=0.0):
    """
    An RGB composite of three bands in the style of Lupton et al. (2004).

    The bands are combined by `astropy.visualization.make_lupton_rgb`: an
    asinh stretch of the summed intensity, shared by the three bands, so
    colours are kept (unlike stretching each band on its own) and bright
    cores do not turn white. This is how SDSS, the Legacy Surveys and
    Galaxy Zoo showed galaxies to people, so a backbone pretrained on such
    images sees what a human classifier saw.

    Parameters
    ----------
    image : `~astrofmtools.io.SkyImage`, `~astrofmtools.cutouts.CutoutStack` or array
        Multi-band ``(C, H, W)`` or ``(N, C, H, W)`` data (see
        `stretch_bands`), at least three bands.
    bands : list of three str or int, optional
        The bands for red, green and blue, the reddest first (e.g.
        ``["z", "r", "g"]``). Default: the image's three bands in order.
    names : list of str, optional
        Band names of a plain array.
    Q : float, optional
        The asinh softening parameter (Lupton's Q; 0 gives a linear
        stretch).
    stretch : float or ``'zscale'``, optional
        The linear range of the stretch, in the units of the (scaled)
        data. ``'zscale'`` sets it from the zscale limits of the intensity
        of each image (`~astropy.visualization.LuptonAsinhZscaleStretch`),
        which suits data in any unit.
    minimum : float or sequence of three floats, optional
        The level mapped to black in each band (in the units of the data).
        Default: each band's sigma-clipped median (the sky level), per
        image.
    scales : sequence of three floats, optional
        Multiply each band (after subtracting ``minimum``) by these
        factors to balance the colours, e.g. to put bands in the same flux
        units.
    fill : float, optional
        Output value of pixels without data in all three bands. A pixel
        without data in only some bands is composed from the others.

    Returns
    -------
    rgb : `~numpy.ndarray`
        float32 in [0, 1], ``(3, H, W)`` or ``(N, 3, H, W)`` (red, green,
        blue on axis -3); astropy's 8-bit output divided by 255, without
        the rounding.

    Raises
    ------
    astrofmtools.InputError
        For fewer or more than three bands, or a band the image does not
        have (the message lists its bands).

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.stretch import lupton_rgb
    >>> z, r, g = np.zeros((3, 8, 8)); z[4, 4], r[4, 4], g[4, 4] = 30.0, 20.0, 10.0
    >>> data = np.stack([g, r, z])                     # bands stored blue first
    >>> rgb = lupton_rgb(data, bands=["z", "r", "g"], names=["g", "r", "z"], stretch=5,
    ...                  minimum=0)
    >>> rgb.shape, rgb.dtype
    ((3, 8, 8), dtype('float32'))
    >>> rgb[:, 4, 4]   # red strongest, colour ratios kept   # doctest: +FLOAT_CMP
    array([0.8515028 , 0.56766856, 0.28383428], dtype=float32)
    """
    arr, band_names = _band_array(image, names)
    if bands is None:
        if len(band_names) != 3:
            raise InputError(f"lupton_rgb needs three bands (red, green, blue); the image has "
                             f"{len(band_names)} ({', '.join(band_names)}): pass bands=[red, "
                             "green, blue].")
        bands = band_names
    if isinstance(bands, str) or len(bands) != 3:
        raise InputError(f"lupton_rgb needs three bands (red, green, blue), not {bands!r}.")
    index = _select(band_names, list(bands), "lupton_rgb")
    if not (isinstance(stretch, str) and stretch == "zscale"):
        value = _number(stretch)
        if not (np.isfinite(value) and value > 0):
            raise InputError(f"stretch must be a positive number or 'zscale'; got {stretch!r}.")
        stretch = value
    value = _number(Q)
    if not (np.isfinite(value) and value >= 0):
        raise InputError(f"Q must be a non-negative number; got {Q!r}.")
    Q = value
    three = np.stack([arr[..., i, :, :] for i in index], axis=-3)
    lead = three.shape[:-3]
    flat = three.reshape((-1,) + three.shape[-3:])
    if minimum is None:
        mins = _clipped_stats(flat)[0].reshape(len(flat), 3)
    else:
        mins = np.broadcast_to(_three(minimum, "minimum"), (len(flat), 3))
    scales = np.ones(3) if scales is None else _three(scales, "scales")
    out = np.empty(flat.shape, dtype=np.float32)
    for n, bands_n in enumerate(flat):
        out[n] = _lupton_one(bands_n, mins[n], scales, Q, stretch, fill)
    out = out.reshape(lead + out.shape[-3:])
    return stack_channels([out[..., c, :, :] for c in range(3)])


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def _three(value, what):
    try:
        values = np.broadcast_to(np.asarray(value, dtype=float), (3,))
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number or three numbers (red, green, blue); "
                         f"got {value!r}.") from None
    if not np.isfinite(values).all():
        raise InputError(f"{what} must be finite; got {value!r}.")
    return values


def _lupton_one(bands, minimum, scales, Q, stretch, fill):
    """One (3, H, W) image through make_lupton_rgb: (3, H, W) float in [0, 1]."""
    nodata = ~np.isfinite(bands)
    minimum = np.where(np.isfinite(minimum), minimum, 0.0)
    images = []
    for c in range(3):
        band = np.where(nodata[c], minimum[c], bands[c])  # no data: black in this band
        if scales[c] != 1:
            band = (band - minimum[c]) * scales[c]
        images.append(band)
    levels = np.where(scales != 1, 0.0, minimum)
    if isinstance(stretch, str):  # 'zscale'
        try:
            stretch_object = LuptonAsinhZscaleStretch(np.stack(images), Q=Q, pedestal=levels)
        except ZeroDivisionError:  # a constant image: nothing to stretch
            stretch_object = LuptonAsinhStretch(stretch=1.0, Q=Q)
    else:
        stretch_object = LuptonAsinhStretch(stretch=stretch, Q=Q)
    intervals = [ManualInterval(vmin=float(v), vmax=None) for v in levels]
    with np.errstate(invalid="ignore", divide="ignore"):
        rgb = make_lupton_rgb(*images, interval=intervals, stretch_object=stretch_object,
                              output_dtype=np.float64)
    rgb = np.clip(np.moveaxis(rgb, -1, 0), 0.0, 1.0)
    rgb[:, nodata.all(axis=0)] = fill
    return rgb


# ------------------------------------------------------------ radio on infrared
def radio_ir_composite(image, radio=0, ir=1, mode="channel", *, names=None, radio_channel=0,
                       k=3.0, rms="auto", background="auto", levels=None, width=1,
                       ir_stretch="asinh", radio_stretch="asinh", percentile=99.5, fill=0.0):
    """
    Radio over infrared in three channels, as Radio Galaxy Zoo showed them.

    Radio Galaxy Zoo volunteers matched radio lobes to their host galaxy by
    looking at radio contours drawn over an infrared image. This builds the
    same picture for a 3-channel backbone, in one of two ways:

    - ``mode="channel"``: the stretched infrared image in two channels and
      the stretched radio image, cut at ``k`` times its noise
      (`~astrofmtools.stretch.noise_floor`), in ``radio_channel``.
    - ``mode="contour"``: the stretched infrared image in all three
      channels (greyscale) with the radio contours drawn in
      ``radio_channel``: contour pixels are 1 there and 0 in the other two
      channels, so they show on bright and faint infrared alike.

    Parameters
    ----------
    image : `~astrofmtools.io.SkyImage`, `~astrofmtools.cutouts.CutoutStack` or array
        Multi-band ``(C, H, W)`` or ``(N, C, H, W)`` data holding the radio
        and the infrared bands on one grid (see `stretch_bands`).
    radio, ir : str or int, optional
        The radio and infrared bands (names or indices).
    mode : {'channel', 'contour'}, optional
        How the radio image enters (see above).
    names : list of str, optional
        Band names of a plain array.
    radio_channel : int, optional
        The output channel (0 red, 1 green, 2 blue) of the radio image or
        contours.
    k : float, optional
        ``'channel'``: the noise floor of the radio channel in units of its
        rms. ``'contour'``: the lowest contour, in units of the rms.
    rms, background : float, array, ``'auto'`` or background maps, optional
        The radio noise rms and background, as in
        `~astrofmtools.stretch.noise_floor` (``'auto'``: sigma-clipped
        statistics of each image).
    levels : sequence of float, optional
        ``'contour'``: the contour levels in units of the rms. Default:
        ``k`` times 1, 2, 4, 8... up to the radio peak.
    width : int, optional
        ``'contour'``: the line width in pixels.
    ir_stretch, radio_stretch : str, astropy stretch or `Stretch`, optional
        The stretches of the two bands (the radio one, after the noise
        floor, with ``vmin=0`` and a minmax interval).
    percentile : float or (float, float), optional
        The percentile interval of the infrared image.
    fill : float, optional
        Output value of pixels without data.

    Returns
    -------
    rgb : `~numpy.ndarray`
        float32 in [0, 1], ``(3, H, W)`` or ``(N, 3, H, W)``.

    Raises
    ------
    astrofmtools.InputError
        For an unknown mode or band (the message lists the image's bands).

    Notes
    -----
    Contours are the boundaries of the regions above each level
    (`skimage.segmentation.find_boundaries`, ``mode='inner'``): the
    outermost pixels at or above the level, one pixel wide.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.io import SkyImage
    >>> from astrofmtools.stretch import radio_ir_composite
    >>> rng = np.random.default_rng(1)
    >>> y, x = np.indices((32, 32))
    >>> radio = rng.normal(0, 1.0, (32, 32)) + 50 * np.exp(-((x - 10)**2 + (y - 16)**2) / 8)
    >>> infrared = rng.normal(0, 1.0, (32, 32)) + 20 * np.exp(-((x - 20)**2 + (y - 16)**2) / 4)
    >>> image = SkyImage(np.stack([radio, infrared]), bands=["first", "w1"])
    >>> rgb = radio_ir_composite(image, radio="first", ir="w1")
    >>> rgb.shape, float(rgb[0, 16, 10]), float(rgb[1, 16, 20])   # radio in red
    ((3, 32, 32), 1.0, 1.0)
    >>> lines = radio_ir_composite(image, radio="first", ir="w1", mode="contour", levels=[5])
    >>> lines[:, 16, 6], lines[:, 16, 20]   # on the 5-sigma contour; the infrared source
    (array([1., 0., 0.], dtype=float32), array([1., 1., 1.], dtype=float32))
    """
    if mode not in ("channel", "contour"):
        raise InputError(f"mode must be 'channel' or 'contour', not {mode!r}.")
    if radio_channel not in (0, 1, 2) or isinstance(radio_channel, bool):
        raise InputError(f"radio_channel must be 0, 1 or 2 (red, green, blue); got "
                         f"{radio_channel!r}.")
    arr, band_names = _band_array(image, names)
    i_radio, i_ir = _select(band_names, [radio, ir], "radio_ir_composite")
    if mode == "channel":
        ir_out, radio_out = _stretch_arrays(
            arr, band_names, [i_ir, i_radio], [ir_stretch, radio_stretch], None, percentile,
            [None, k], ["auto", rms], ["auto", background], None, None, None, fill)
        return stack_channels([radio_out if c == radio_channel else ir_out
                               for c in range(3)])
    ir_out, = _stretch_arrays(arr, band_names, [i_ir], ir_stretch, "percentile", percentile,
                              None, "auto", "auto", None, None, None, fill)
    lines = _contours(arr[..., i_radio, :, :], k, rms, background, levels, width)
    return stack_channels([np.where(lines, 1.0 if c == radio_channel else 0.0, ir_out)
                           for c in range(3)])


def _contours(data, k, rms, background, levels, width):
    """Boolean contour lines of the radio image(s) at ``levels`` times the rms."""
    rms, background = _noise_levels(data, rms, background, background_default="auto")
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = np.where(rms > 0, (data - background) / rms, np.nan)
    if levels is not None:
        levels = np.atleast_1d(np.asarray(levels, dtype=float))
        if levels.ndim != 1 or not np.isfinite(levels).all() or not len(levels):
            raise InputError(f"levels must be finite numbers (multiples of the rms); got "
                             f"{levels!r}.")
    elif not (np.isfinite(k) and k > 0):
        raise InputError(f"k must be a positive number; got {k!r}.")
    width = int(width)
    if width < 1:
        raise InputError(f"width must be at least 1 pixel; got {width}.")
    flat = snr.reshape((-1,) + snr.shape[-2:])
    lines = np.zeros(flat.shape, dtype=bool)
    for n, image in enumerate(flat):
        peak = np.nanmax(image) if np.isfinite(image).any() else np.nan
        steps = levels
        if steps is None:  # k, 2k, 4k... up to the peak
            count = int(np.floor(np.log2(peak / k))) + 1 if peak >= k else 0
            steps = k * 2.0 ** np.arange(count)
        with np.errstate(invalid="ignore"):
            for level in steps:
                lines[n] |= find_boundaries(image >= level, mode="inner")
        if width > 1 and lines[n].any():
            lines[n] = binary_dilation(lines[n], iterations=width - 1)
    return lines.reshape(snr.shape)
