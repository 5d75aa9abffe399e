# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Intervals, stretches, the noise floor and channel stacks."""

import numpy as np
from astropy.stats import sigma_clipped_stats
from astropy.visualization import (AsinhStretch, AsymmetricPercentileInterval, BaseInterval,
                                   BaseStretch, LinearStretch, LogStretch, ManualInterval,
                                   MinMaxInterval, PercentileInterval, PowerStretch,
                                   SinhStretch, SqrtStretch, SquaredStretch, ZScaleInterval)

from ..exceptions import InputError

__all__ = ["Stretch", "noise_floor", "stack_channels", "multi_stretch", "STRETCHES",
           "INTERVALS"]

#: Stretch names, their astropy.visualization class and default parameter ``a``.
STRETCHES = {
    "linear": (LinearStretch, None),
    "sqrt": (SqrtStretch, None),
    "log": (LogStretch, 1000.0),
    "asinh": (AsinhStretch, 0.1),
    "power": (PowerStretch, 2.0),
    "sinh": (SinhStretch, 1.0 / 3.0),
    "squared": (SquaredStretch, None),
}

#: Interval names and what sets their limits.
INTERVALS = {
    "minmax": "the smallest and largest finite pixel",
    "percentile": "the central `percentile` per cent of the finite pixels, or the "
                  "(lower, upper) percentiles",
    "zscale": "IRAF's zscale algorithm",
    "manual": "vmin and vmax (a missing one: the smallest / largest pixel)",
}


def _as_array(data, name="data"):
    """A float array (NaN where there is no data) from an array, NDData or masked array."""
    mask = None
    if not isinstance(data, np.ndarray) and hasattr(data, "data"):
        mask = getattr(data, "mask", None)
        data = data.data
    if isinstance(data, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(data) if mask is None else mask
        data = data.data
    try:
        arr = np.asarray(data)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be an array of numbers.") from None
    if arr.dtype.kind not in "fiub":
        raise InputError(f"{name} must hold numbers, not {arr.dtype}.")
    if arr.ndim < 2:
        raise InputError(f"{name} must be an image (H, W) or a stack (..., H, W); "
                         f"it has shape {arr.shape}.")
    dtype = np.float64 if arr.dtype == np.float64 else np.float32
    arr = arr.astype(dtype, copy=mask is not None)
    if mask is not None and np.any(mask):
        arr[np.broadcast_to(np.asarray(mask, dtype=bool), arr.shape)] = np.nan
    return arr


def _make_stretch(stretch, a):
    if isinstance(stretch, BaseStretch):
        return stretch
    if not isinstance(stretch, str) or stretch.lower() not in STRETCHES:
        raise InputError(f"Unknown stretch {stretch!r}; the known stretches are: "
                         f"{', '.join(STRETCHES)} (or an astropy.visualization stretch).")
    cls, default = STRETCHES[stretch.lower()]
    if default is None:
        return cls()
    return cls(a=default if a is None else a)


def _make_interval(interval, percentile, vmin, vmax):
    if isinstance(interval, BaseInterval):
        return interval
    if not isinstance(interval, str) or interval.lower() not in INTERVALS:
        raise InputError(f"Unknown interval {interval!r}; the known intervals are: "
                         f"{', '.join(INTERVALS)} (or an astropy.visualization interval).")
    interval = interval.lower()
    if interval == "minmax":
        return MinMaxInterval()
    if interval == "zscale":
        return ZScaleInterval()
    if interval == "manual":
        return ManualInterval(vmin=vmin, vmax=vmax)
    if np.ndim(percentile) == 0:
        if not 0 < float(percentile) <= 100:
            raise InputError(f"percentile must be in (0, 100], not {percentile!r}.")
        return PercentileInterval(float(percentile))
    try:
        lower, upper = (float(p) for p in percentile)
    except (TypeError, ValueError):
        raise InputError(f"percentile must be a number or (lower, upper), "
                         f"not {percentile!r}.") from None
    if not 0 <= lower < upper <= 100:
        raise InputError(f"percentile (lower, upper) must satisfy 0 <= lower < upper <= 100, "
                         f"not {percentile!r}.")
    return AsymmetricPercentileInterval(lower, upper)


class Stretch:
    """
    Map images to [0, 1] with an interval and a stretch (float32, NaN-safe).

    The interval sets the limits (vmin, vmax) of each image separately;
    pixels are scaled linearly so that vmin -> 0 and vmax -> 1, clipped to
    [0, 1], then stretched. Both parts are `astropy.visualization` classes.

    Parameters
    ----------
    stretch : str or `~astropy.visualization.BaseStretch`, optional
        One of ``'linear'``, ``'sqrt'``, ``'log'``, ``'asinh'``, ``'power'``,
        ``'sinh'``, ``'squared'`` (see `STRETCHES`), or an astropy stretch.
    interval : str or `~astropy.visualization.BaseInterval`, optional
        ``'percentile'``, ``'minmax'``, ``'zscale'`` or ``'manual'`` (see
        `INTERVALS`), or an astropy interval.
    percentile : float or (float, float), optional
        For ``interval='percentile'``: the central percentage of pixels kept
        (99.5 clips the brightest and faintest 0.25 per cent), or the
        ``(lower, upper)`` percentiles.
    vmin, vmax : float, optional
        Fixed limits. With ``'manual'`` they are the interval; with any
        other interval they replace the limit it computes (for example
        ``vmin=0`` after `noise_floor`).
    a : float, optional
        The stretch's parameter: asinh's transition (default 0.1), log's
        ``a`` (1000), power's exponent (2), sinh's ``a`` (1/3). Ignored by
        the others.
    fill : float, optional
        Output value of NaN / masked input pixels.

    Notes
    -----
    An image with no finite pixel, or whose limits are equal (a constant
    image), maps to 0 (and ``fill`` where it has no data).

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.stretch import Stretch
    >>> image = np.array([[0.0, 1.0], [10.0, np.nan]])
    >>> Stretch("linear", interval="minmax")(image)
    array([[0. , 0.1],
           [1. , 0. ]], dtype=float32)
    >>> Stretch("log", interval="minmax", fill=-1)(image)  # doctest: +FLOAT_CMP
    array([[ 0.       ,  0.6680105],
           [ 1.       , -1.       ]], dtype=float32)

    A stack gets one interval per image:

    >>> stack = np.stack([image, 100 * image])
    >>> out = Stretch("sqrt", interval="minmax")(stack)
    >>> out.shape, bool(np.all(out[0] == out[1]))
    ((2, 2, 2), True)
    """

    def __init__(self, stretch="asinh", interval="percentile", percentile=99.5, vmin=None,
                 vmax=None, a=None, fill=0.0):
        self.stretch = stretch
        self.interval = interval
        self.percentile = percentile
        self.vmin = vmin
        self.vmax = vmax
        self.a = a
        self.fill = float(fill)
        self._stretch = _make_stretch(stretch, a)
        self._interval = _make_interval(interval, percentile, vmin, vmax)

    def __repr__(self):
        args = [f"stretch={self.stretch!r}", f"interval={self.interval!r}"]
        if self.interval == "percentile":
            args.append(f"percentile={self.percentile!r}")
        for name in ("vmin", "vmax", "a"):
            if getattr(self, name) is not None:
                args.append(f"{name}={getattr(self, name)!r}")
        if self.fill:
            args.append(f"fill={self.fill!r}")
        return f"Stretch({', '.join(args)})"

    def get_limits(self, data):
        """
        The (vmin, vmax) limits of each image.

        Parameters
        ----------
        data : array-like
            An image (H, W) or a stack (..., H, W); NaNs are ignored.

        Returns
        -------
        vmin, vmax : float or `~numpy.ndarray`
            Floats for one image, arrays of shape ``data.shape[:-2]`` for a
            stack. NaN for an image without finite pixels.

        Examples
        --------
        >>> import numpy as np
        >>> from astrofmtools.stretch import Stretch
        >>> stack = np.arange(2 * 4 * 4, dtype=float).reshape(2, 4, 4)
        >>> Stretch(interval="minmax", vmin=0).get_limits(stack)
        (array([0., 0.]), array([15., 31.]))
        """
        arr = _as_array(data)
        vmin, vmax = _per_image(arr, self._interval.get_limits)
        if self.vmin is not None:
            vmin[...] = self.vmin
        if self.vmax is not None:
            vmax[...] = self.vmax
        if vmin.ndim == 0:
            return float(vmin), float(vmax)
        return vmin, vmax

    def __call__(self, data):
        """
        Stretch an image or a stack.

        Parameters
        ----------
        data : array-like, `~astropy.nddata.NDData` or masked array
            An image (H, W) or a stack (..., H, W). Masked (NDData: True =
            no data) and NaN pixels become ``fill``.

        Returns
        -------
        out : `~numpy.ndarray`
            float32 of the same shape, in [0, 1] (and ``fill``).
        """
        arr = _as_array(data)
        vmin, vmax = self.get_limits(arr)
        vmin = np.asarray(vmin, dtype=float)[..., None, None]
        vmax = np.asarray(vmax, dtype=float)[..., None, None]
        span = vmax - vmin
        good = np.isfinite(span) & (span > 0)
        finite = np.isfinite(arr)
        norm = (arr - np.where(good, vmin, 0.0)) / np.where(good, span, 1.0)
        norm = np.where(good & finite, norm, 0.0)
        np.clip(norm, 0.0, 1.0, out=norm)
        out = np.asarray(self._stretch(norm, clip=True), dtype=np.float32)
        out[~finite] = self.fill
        return out


def noise_floor(data, rms, k=3.0, background=0.0, floor=0.0):
    """
    Subtract the background and set everything below ``k`` times the noise
    to a floor.

    Radio classifiers are usually trained on images where every pixel
    fainter than 3 sigma is set to zero (e.g. Aniyan & Thorat 2017, the
    MiraBest and Radio Galaxy Zoo preprocessing), so that models see the
    source and not the noise. The output is relative to the background:
    ``out = data - background``, then ``out[out < k * rms] = floor``. NaN
    pixels stay NaN (a later `Stretch` fills them).

    Parameters
    ----------
    data : array-like, `~astropy.nddata.NDData` or masked array
        An image (H, W) or a stack (..., H, W).
    rms : float, array, ``'auto'`` or background maps
        The noise rms per pixel: a number, a map broadcastable to ``data``
        (an RMS map), ``'auto'`` to measure it on each image with
        `~astropy.stats.sigma_clipped_stats` (3 sigma), or an object with
        ``rms`` and ``background`` maps (as
        `~astrofmtools.background.estimate_background` returns), whose
        background is then subtracted too unless ``background`` is given.
    k : float, optional
        The threshold in units of ``rms``.
    background : float, array or ``'auto'``, optional
        Background to subtract first (0: the data are background-subtracted;
        ``'auto'``: the sigma-clipped median of each image).
    floor : float, optional
        The value given to pixels below the threshold, relative to the
        background (0 = the background level).

    Returns
    -------
    out : `~numpy.ndarray`
        float32, same shape as ``data``.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.stretch import noise_floor
    >>> noise_floor(np.array([[1.0, 2.0], [3.5, 10.0]]), rms=1.0, k=3.0)
    array([[ 0. ,  0. ],
           [ 3.5, 10. ]], dtype=float32)
    >>> noise_floor(np.array([[101.0, 104.0]]), rms=1.0, background=100.0, floor=np.nan)
    array([[nan,  4.]], dtype=float32)
    """
    arr = _as_array(data)
    try:
        k = float(k)
    except (TypeError, ValueError):
        raise InputError(f"k must be a number, not {k!r}.") from None
    rms, background = _noise_levels(arr, rms, background, background_default=0.0)
    out = (arr - background).astype(np.float32)
    with np.errstate(invalid="ignore"):
        below = out < k * rms
    out[np.broadcast_to(below, out.shape)] = floor
    return out


def _noise_levels(arr, rms, background, background_default):
    """
    The rms and background of ``arr`` as float arrays that broadcast to it.

    Each is a number, an array, ``'auto'`` (sigma-clipped statistics of each
    image) or, for ``rms``, an object with ``.rms`` and ``.background`` maps
    (as `~astrofmtools.background.estimate_background` returns), whose
    background is used when ``background`` is left at ``background_default``.
    """
    if not isinstance(rms, (str, np.ndarray, int, float, np.number)) and hasattr(rms, "rms"):
        if isinstance(background, type(background_default)) and \
                background == background_default:
            background = rms.background
        rms = rms.rms
    auto_rms = isinstance(rms, str) and rms == "auto"
    auto_bkg = isinstance(background, str) and background == "auto"
    for value, name, auto in ((rms, "rms", auto_rms), (background, "background", auto_bkg)):
        if isinstance(value, str) and not auto:
            raise InputError(f"{name} must be a number, an array or 'auto', not {value!r}.")
    if auto_rms or auto_bkg:
        median, std = _clipped_stats(arr)
        rms = std if auto_rms else rms
        background = median if auto_bkg else background
    try:
        rms = np.asarray(rms, dtype=float)
        background = np.asarray(background, dtype=float)
        np.broadcast_shapes(rms.shape, arr.shape)
        np.broadcast_shapes(background.shape, arr.shape)
    except (TypeError, ValueError):
        raise InputError(f"rms and background must be numbers or arrays that broadcast to the "
                         f"data's shape {arr.shape}, or 'auto'.") from None
    if np.any(rms[np.isfinite(rms)] < 0):
        raise InputError("rms must not be negative.")
    return rms, background


def _per_image(arr, statistic):
    """
    Two numbers per image of a stack, from its finite pixels.

    ``statistic(values) -> (a, b)`` is called on the finite pixels of each
    (H, W) image of ``arr`` (..., H, W); returns the arrays ``a`` and ``b``
    of shape ``arr.shape[:-2]`` (0-d for one image), NaN for an image
    without finite pixels.
    """
    flat = arr.reshape((-1,) + arr.shape[-2:])
    out = np.full((2, len(flat)), np.nan)
    for i, image in enumerate(flat):
        values = image[np.isfinite(image)]
        if values.size:
            out[:, i] = statistic(values)
    return out[0].reshape(arr.shape[:-2]), out[1].reshape(arr.shape[:-2])


def _clipped_stats(arr):
    """Sigma-clipped median and std of each image, shaped to broadcast."""
    median, std = _per_image(
        arr, lambda values: sigma_clipped_stats(values, sigma=3.0, maxiters=10)[1:])
    return median[..., None, None], std[..., None, None]


def stack_channels(channels):
    """
    Stack equally shaped images into channels.

    The one place where channels are assembled (multi-stretch stacks,
    multi-band images): channel axis third from the end, float32.

    Parameters
    ----------
    channels : sequence of array-like
        C arrays of the same shape, each (H, W) or (N, H, W) (any leading
        axes).

    Returns
    -------
    stack : `~numpy.ndarray`
        float32 of shape (C, H, W), or (N, C, H, W).

    Raises
    ------
    astrofmtools.InputError
        If there is no channel, or the shapes differ (the message names the
        channel).

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.stretch import stack_channels
    >>> stack_channels([np.zeros((4, 5)), np.ones((4, 5))]).shape
    (2, 4, 5)
    >>> stack_channels([np.zeros((8, 4, 5))] * 3).shape
    (8, 3, 4, 5)
    """
    if isinstance(channels, np.ndarray) or not hasattr(channels, "__len__") or not len(channels):
        raise InputError("channels must be a non-empty list of equally shaped arrays.")
    arrays = [_as_array(c, name=f"channel {i}") for i, c in enumerate(channels)]
    for i, a in enumerate(arrays[1:], start=1):
        if a.shape != arrays[0].shape:
            raise InputError(f"channel {i} has shape {a.shape}, channel 0 has "
                             f"{arrays[0].shape}; all channels need the same shape.")
    return np.stack(arrays, axis=-3).astype(np.float32, copy=False)


def multi_stretch(data, stretches=("linear", "asinh", "log"), interval="percentile",
                  percentile=99.5, vmin=None, vmax=None, fill=0.0):
    """
    One channel per stretch: keep faint and bright structure for 3-channel models.

    Each channel is the same image under a different stretch (same
    interval), so a 3-channel model pretrained on RGB photographs sees the
    bright cores (linear), the faint extended emission (log) and the range
    between (asinh) at once.

    Parameters
    ----------
    data : array-like, `~astropy.nddata.NDData` or masked array
        An image (H, W) or a stack (N, H, W).
    stretches : sequence, optional
        Stretch names (see `STRETCHES`), astropy stretches, or `Stretch`
        instances (used as they are, with their own interval).
    interval, percentile, vmin, vmax, fill
        As for `Stretch`, for the channels given by name or astropy stretch.

    Returns
    -------
    stack : `~numpy.ndarray`
        float32 in [0, 1], (C, H, W) or (N, C, H, W).

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.stretch import multi_stretch
    >>> image = np.array([[0.0, 1.0], [10.0, 100.0]])
    >>> multi_stretch(image, interval="minmax")[:, 0, 1]  # doctest: +FLOAT_CMP
    array([0.01      , 0.03329775, 0.34708068], dtype=float32)
    """
    if isinstance(stretches, (str, BaseStretch, Stretch)) or not len(stretches):
        raise InputError("stretches must be a non-empty sequence of stretch names, e.g. "
                         "('linear', 'asinh', 'log').")
    arr = _as_array(data)
    channels = []
    for s in stretches:
        if not isinstance(s, Stretch):
            s = Stretch(s, interval=interval, percentile=percentile, vmin=vmin, vmax=vmax,
                        fill=fill)
        channels.append(s(arr))
    return stack_channels(channels)
