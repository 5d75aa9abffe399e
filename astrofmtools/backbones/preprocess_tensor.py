# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
`Preprocess` in torch: the same steps, batched, on any device.

`Preprocess.to_array` runs NumPy and astropy one image at a time on the
CPU; this module does the same arithmetic on a whole batch of tensors, on
the CPU or a GPU, so the data path keeps up with the accelerator. Each step
reproduces its NumPy counterpart:

- the noise floor (`~astrofmtools.stretch.noise_floor` with ``rms='auto'``
  and ``background='auto'``): astropy's ``sigma_clipped_stats(sigma=3,
  maxiters=10)`` per image. The kept pixels of an image are always a
  contiguous run of its sorted finite values, so each image is sorted once
  and every iteration moves two indices (`torch.searchsorted`); the median
  (mean of the two middle values, as NumPy's) and the population standard
  deviation (``ddof=0``) of the run are computed in float64;
- the interval: percentiles with NumPy's ``'linear'`` interpolation on the
  sorted finite values, or the finite minimum and maximum; ``vmin = 0``
  with the floor on;
- the stretches: astropy's formulas (`TENSOR_STRETCHES`);
- the resize: the same `torch.nn.functional.interpolate` call as
  `Preprocess.to_array`.

The results agree with `Preprocess.to_array` to a few 1e-6 (float32
arithmetic; see ``tests/backbones/test_preprocess_tensor.py``).
"""

import math

import numpy as np

from ..exceptions import InputError
from ..stretch import STRETCHES
from ..stretch.core import _make_interval

__all__ = ["TENSOR_STRETCHES", "TENSOR_INTERVALS", "tensor_supported", "preprocess_tensor",
           "normalize_tensor"]


def _linear(x, a):
    return x


def _sqrt(x, a):
    return x.sqrt()


def _log(x, a):  # astropy LogStretch
    return (x * a + 1.0).log() / math.log(a + 1.0)


def _asinh(x, a):  # astropy AsinhStretch
    return (x / a).asinh() / math.asinh(1.0 / a)


def _power(x, a):  # astropy PowerStretch (and SquaredStretch, a = 2)
    return x.pow(a)


def _sinh(x, a):  # astropy SinhStretch
    return (x / a).sinh() / math.sinh(1.0 / a)


def _squared(x, a):
    return x * x


#: The stretches the tensor path knows: name -> ``f(x, a)`` on [0, 1]
#: tensors, the formulas of the `astropy.visualization` classes that
#: `~astrofmtools.stretch.STRETCHES` names (with their default ``a``).
TENSOR_STRETCHES = {
    "linear": _linear,
    "sqrt": _sqrt,
    "log": _log,
    "asinh": _asinh,
    "power": _power,
    "sinh": _sinh,
    "squared": _squared,
}

#: The intervals the tensor path knows (``'zscale'`` falls back to NumPy).
TENSOR_INTERVALS = ("percentile", "minmax", "manual")


def _stretch_name(stretch):
    return stretch.lower() if isinstance(stretch, str) else None


def tensor_supported(preprocess):
    """
    Whether `preprocess_tensor` reproduces these `Preprocess` settings.

    Parameters
    ----------
    preprocess : `Preprocess`

    Returns
    -------
    supported : bool
        False for an interval or stretch outside `TENSOR_INTERVALS` and
        `TENSOR_STRETCHES` (for example ``'zscale'``, or astropy objects);
        those run with NumPy.
    """
    interval = preprocess.interval
    if not isinstance(interval, str) or interval.lower() not in TENSOR_INTERVALS:
        return False
    names = preprocess.stretches if preprocess.channels == "multi_stretch" \
        else (preprocess.stretch,)
    return all(_stretch_name(s) in TENSOR_STRETCHES for s in names)


def _sorted_finite(flat):
    """Each row sorted, non-finite values last as +inf, and the count of finite values."""
    import torch
    finite = torch.isfinite(flat)
    values = torch.where(finite, flat, torch.full_like(flat, math.inf))
    return torch.sort(values, dim=1).values, finite.sum(dim=1)


def _gather(rows, index):
    """``rows[i, index[i]]`` for index clamped into the row."""
    index = index.clamp(0, rows.shape[1] - 1)
    return rows.gather(1, index[:, None])[:, 0]


def _run_stats(rows, sums, lo, hi):
    """
    Median and population std of ``rows[i, lo[i]:hi[i]]`` (float64; NaN when empty).

    ``sums`` are the prefix sums of `_prefix_sums`: an iteration of the clipping costs
    a few gathers, not a pass over the pixels.
    """
    import torch
    m = hi - lo
    median = 0.5 * (_gather(rows, lo + (m - 1) // 2) + _gather(rows, lo + m // 2))
    s1, s2 = sums
    count = m.clamp(min=1).double()
    t1 = (s1.gather(1, hi[:, None]) - s1.gather(1, lo[:, None]))[:, 0] / count
    t2 = (s2.gather(1, hi[:, None]) - s2.gather(1, lo[:, None]))[:, 0] / count
    std = (t2 - t1 * t1).clamp(min=0.0).sqrt()
    nan = torch.full_like(median, math.nan)
    return torch.where(m > 0, median, nan), torch.where(m > 0, std, nan)


def _prefix_sums(rows, n):
    """
    Prefix sums (with a leading 0) of each sorted row's finite values and of their squares.

    The values are first shifted by each row's middle value, so that the float64
    ``E[x^2] - E[x]^2`` loses nothing to a large offset (integer counts) on a small noise.
    """
    import torch
    shift = _gather(rows, (n - 1) // 2).nan_to_num(0.0, posinf=0.0)
    x = rows - shift[:, None]
    x = torch.where(torch.isfinite(x), x, 0.0)
    zero = x.new_zeros((x.shape[0], 1))
    return (torch.cat([zero, x.cumsum(dim=1)], dim=1),
            torch.cat([zero, (x * x).cumsum(dim=1)], dim=1))


def _clipped_stats(images, sigma=3.0, maxiters=10):
    """
    astropy's ``sigma_clipped_stats(values, sigma, maxiters)[1:]`` of each image's finite
    pixels: (B,) float64 median and std, NaN for an image without finite pixels.

    The kept pixels are a run ``[lo, hi)`` of the sorted finite values. An image whose
    run did not change keeps it (astropy stops there), so running all ``maxiters``
    iterations gives the same result: on a GPU that is what happens, because asking
    whether any image changed would wait for the device at every iteration; on the
    CPU the loop stops when none did.
    """
    import torch
    flat = images.reshape(images.shape[0], -1)
    rows, n = _sorted_finite(flat)
    rows = rows.double()
    sums = _prefix_sums(rows, n)
    lo = torch.zeros_like(n)
    hi = n.clone()
    check = rows.device.type == "cpu"
    empty = n == 0
    for _ in range(maxiters):
        median, std = _run_stats(rows, sums, lo, hi)
        # the kept values are in [median - sigma std, median + sigma std], as astropy's
        new_lo = torch.searchsorted(rows, (median - sigma * std)[:, None].contiguous(),
                                    side="left")[:, 0]
        new_hi = torch.searchsorted(rows, (median + sigma * std)[:, None].contiguous(),
                                    side="right")[:, 0]
        new_lo = torch.where(empty, lo, torch.maximum(lo, new_lo))
        new_hi = torch.where(empty, hi, torch.minimum(hi, new_hi))
        if check and not bool(((new_lo != lo) | (new_hi != hi)).any()):
            break
        lo, hi = new_lo, new_hi
    return _run_stats(rows, sums, lo, hi)


def _percentiles(rows, n, percents):
    """NumPy's ``'linear'`` percentiles of ``rows[i, :n[i]]`` (sorted): (B, len(percents))."""
    import torch
    # python numbers, not a tensor: no host-to-device copy that would wait for the device
    index = torch.stack([(n.double() - 1.0) * (p / 100.0) for p in percents], dim=1)
    below = index.floor()
    frac = index - below
    below = below.long().clamp(min=0)
    above = (below + 1).minimum((n[:, None] - 1).clamp(min=0))
    a = rows.gather(1, below.clamp(max=rows.shape[1] - 1)).double()
    b = rows.gather(1, above).double()
    # NumPy's _lerp: the form that is exact at both ends
    out = torch.where(frac >= 0.5, b - (b - a) * (1.0 - frac), a + (b - a) * frac)
    return torch.where(n[:, None] > 0, out, torch.full_like(out, math.nan))


def _limits(images, interval, percentile):
    """(vmin, vmax) float64 (B,) of each image's finite pixels; NaN without any."""
    import torch
    flat = images.reshape(images.shape[0], -1)
    if interval == "percentile":
        lower_upper = _make_interval("percentile", percentile, None, None)
        rows, n = _sorted_finite(flat)
        out = _percentiles(rows, n, (lower_upper.lower_percentile,
                                     lower_upper.upper_percentile))
        return out[:, 0], out[:, 1]
    finite = torch.isfinite(flat)
    vmin = torch.where(finite, flat, math.inf).amin(dim=1).double()
    vmax = torch.where(finite, flat, -math.inf).amax(dim=1).double()
    empty = ~finite.any(dim=1)
    nan = torch.full_like(vmin, math.nan)
    return torch.where(empty, nan, vmin), torch.where(empty, nan, vmax)


def _resize(images, size, interpolation):
    """`Preprocess`'s resize (``preprocess._resize``) on a (B, H, W) tensor."""
    import torch.nn.functional as F
    h, w = images.shape[-2:]
    if (h, w) == (size, size):
        return images
    x = images.reshape(-1, 1, h, w)
    if interpolation == "nearest":
        out = F.interpolate(x, size=(size, size), mode="nearest-exact")
    else:
        out = F.interpolate(x, size=(size, size), mode=interpolation, align_corners=False,
                            antialias=size < max(h, w))
    return out.reshape(images.shape[:-2] + (size, size))


#: Array types that go to torch as they are (not big-endian FITS ones, for example).
_NATIVE = tuple(np.dtype(t) for t in ("float32", "float64", "float16", "int8", "int16", "int32",
                                      "int64", "uint8"))


def _parse(cutouts, device):
    """A (N, H, W) or (N, C, H, W) tensor on ``device`` (the shapes `parse_cutouts` takes)."""
    import torch
    from ..cutouts import parse_cutouts
    if isinstance(cutouts, np.ndarray) and cutouts.dtype in _NATIVE:
        # as it is (int16 travels in half the bytes), float32 on the device
        cutouts = torch.from_numpy(np.ascontiguousarray(cutouts))
    if not isinstance(cutouts, torch.Tensor):
        data = torch.from_numpy(parse_cutouts(cutouts, index_table=False)[0])
    else:
        data = cutouts.detach()
        if data.is_complex() or data.dtype == torch.bool:
            raise InputError(f"cutouts must hold real numbers, not {data.dtype}.")
        if data.ndim == 2:
            data = data[None]
        if data.ndim == 4 and data.shape[-1] <= 4 < min(data.shape[1], data.shape[2]):
            data = data.movedim(-1, 1)  # N, H, W, C -> N, C, H, W
        if data.ndim not in (3, 4) or data.shape[0] == 0 or min(data.shape[-2:]) < 2:
            raise InputError(f"cutouts must be an (N, H, W), (N, H, W, C) or (N, C, H, W) "
                             f"tensor with N >= 1 and H, W >= 2; got shape "
                             f"{tuple(data.shape)}.")
    device = data.device if device is None else torch.device(device)
    # a pinned batch (extract_features) is copied while the device works
    data = data.to(device, non_blocking=data.device.type == "cpu" and data.is_pinned())
    # as parse_cutouts: float32 pixels
    return data.to(torch.float32)


def preprocess_tensor(preprocess, cutouts, device=None, zoom=None):
    """
    `Preprocess.to_array` in torch, batched on any device: [0, 1] images.

    Parameters
    ----------
    preprocess : `Preprocess`
        Settings for which `tensor_supported` is True.
    cutouts : array or `torch.Tensor`
        Raw pixels, (N, H, W) or (N, C, H, W), NaN allowed.
    device : str or `torch.device`, optional
        Where to compute: default the tensor's device (CPU for arrays).
    zoom : float, optional
        As for `Preprocess.to_array` (``'auto'`` is resolved on the CPU).

    Returns
    -------
    images : `torch.Tensor`
        float32 (N, C, S, S) in [0, 1] on the device; ``'repeat'`` gives a
        (N, 3, S, S) view of one channel.
    """
    import torch
    if not tensor_supported(preprocess):
        raise InputError(f"These settings (interval={preprocess.interval!r}, "
                         f"stretch={preprocess.stretch!r}) have no tensor implementation; "
                         "use Preprocess.to_array.")
    data = _parse(cutouts, device)
    mode, n_out = preprocess._plan(data)
    if data.ndim == 4 and data.shape[1] == 1 and mode != "bands":
        data = data[:, 0]
    if zoom is None:
        zoom = preprocess.resolve_zoom(cutouts.detach().cpu().numpy()
                                       if isinstance(cutouts, torch.Tensor) else cutouts)
    zoom = float(zoom)
    lead = data.shape[:-2]
    images = data.reshape((-1,) + data.shape[-2:])
    with torch.autocast(images.device.type, enabled=False):
        images = torch.where(torch.isfinite(images), images, math.nan)
        floored = preprocess.noise_floor is not None
        if floored:
            median, std = _clipped_stats(images)
            # as noise_floor: (data - background) in float32, compared in float64
            images = (images.double() - median[:, None, None]).float()
            below = images.double() < preprocess.noise_floor * std[:, None, None]
            images = images.masked_fill(below, math.nan)
        if zoom > 1:
            h, w = images.shape[-2:]
            ch, cw = max(2, int(round(h / zoom))), max(2, int(round(w / zoom)))
            y0, x0 = (h - ch) // 2, (w - cw) // 2
            images = images[:, y0:y0 + ch, x0:x0 + cw]
        vmin, vmax = _limits(images, preprocess.interval.lower(), preprocess.percentile)
        if floored:
            vmin = torch.zeros_like(vmin)
        span = vmax - vmin
        good = torch.isfinite(span) & (span > 0)
        offset = torch.where(good, vmin, 0.0).float()[:, None, None]
        scale = torch.where(good, span, 1.0).float()[:, None, None]
        finite = torch.isfinite(images)
        norm = ((images - offset) / scale).masked_fill(~(good[:, None, None] & finite), 0.0)
        norm = norm.clamp(0.0, 1.0)
        names = preprocess.stretches if mode == "multi_stretch" else (preprocess.stretch,)
        channels = []
        for name in names:
            name = name.lower()
            out = TENSOR_STRETCHES[name](norm, STRETCHES[name][1])
            channels.append(out.masked_fill(~finite, 0.0))  # fill
        images = torch.stack(channels, dim=1)  # (B, K, h, w)
        images = _resize(images, preprocess.input_size, preprocess.interpolation)
        images = images.clamp(0.0, 1.0)
    size = preprocess.input_size
    if mode == "multi_stretch":
        return images.reshape(len(data), n_out, size, size)
    if mode == "repeat":
        return images.reshape(len(data), 1, size, size).expand(-1, n_out, -1, -1)
    return images.reshape(lead + (size, size)) if len(lead) == 2 \
        else images.reshape(len(data), 1, size, size)


def normalize_tensor(preprocess, images):
    """
    `Preprocess.normalize` for tensors on any device, one channel at a time.

    The mean and std go in as Python numbers, so no small tensor is copied to
    the device (such a copy waits for the work queued there); a ``'repeat'``
    view is read once per channel.

    Parameters
    ----------
    preprocess : `Preprocess`
    images : `torch.Tensor`
        (N, C, S, S) in [0, 1], as from `preprocess_tensor`.

    Returns
    -------
    x : `torch.Tensor`
        float32 (N, C, S, S), contiguous.
    """
    import torch
    mean, std = preprocess._channel_stats(images.shape[1])
    return torch.stack([(images[:, c] - m) / s for c, (m, s) in enumerate(zip(mean, std))],
                       dim=1)
