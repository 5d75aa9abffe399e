# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Resize images and stacks to a model's input size."""

import numpy as np
from skimage.transform import resize as _sk_resize

from ..exceptions import InputError
from .core import _as_array

__all__ = ["resize"]


def resize(data, size, order=1, anti_aliasing=True):
    """
    Resize an image or a stack to a model's input size, NaN-safe.

    The last two axes are resampled with `skimage.transform.resize`
    (Gaussian anti-aliasing when shrinking); leading axes (images,
    channels) are kept. NaN pixels do not spread: data and coverage are
    resampled together and each output pixel is the average of the valid
    input under it (normalised convolution); output pixels where less than
    half of the input is valid are NaN.

    Parameters
    ----------
    data : array-like, `~astropy.nddata.NDData` or masked array
        An image (H, W) or a stack (..., H, W).
    size : int or (int, int)
        Output (height, width); an int gives a square.
    order : int, optional
        Spline order (0 nearest, 1 bilinear, 3 bicubic). With order 0 or 1
        the output stays within the input's range (so [0, 1] stays [0, 1]).
    anti_aliasing : bool, optional
        Smooth before shrinking, to avoid aliasing.

    Returns
    -------
    out : `~numpy.ndarray`
        float32 of shape ``data.shape[:-2] + (height, width)``.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.stretch import resize
    >>> stack = np.zeros((5, 3, 64, 64), dtype=np.float32)
    >>> resize(stack, 224).shape
    (5, 3, 224, 224)
    >>> image = np.ones((4, 4)); image[0, 0] = np.nan
    >>> resize(image, 2)
    array([[1., 1.],
           [1., 1.]], dtype=float32)
    """
    arr = _as_array(data)
    try:
        height, width = (int(size), int(size)) if np.ndim(size) == 0 else (int(s) for s in size)
    except (TypeError, ValueError):
        raise InputError(f"size must be an int or (height, width), not {size!r}.") from None
    if height < 1 or width < 1:
        raise InputError(f"size must be positive, not {size!r}.")
    shape = arr.shape[:-2] + (height, width)
    if arr.shape == shape:
        return arr.astype(np.float32, copy=True)
    # leading axes are not resampled: fold them into a channel-last stack
    flat = np.moveaxis(arr.reshape((-1,) + arr.shape[-2:]), 0, -1)
    out_shape = (height, width, flat.shape[-1])
    finite = np.isfinite(flat)
    kwargs = dict(order=order, anti_aliasing=anti_aliasing, preserve_range=True,
                  mode="edge")
    if finite.all():
        out = _sk_resize(flat, out_shape, **kwargs)
    else:
        weight = _sk_resize(finite.astype(np.float32), out_shape, **kwargs)
        total = _sk_resize(np.where(finite, flat, 0.0).astype(np.float32), out_shape, **kwargs)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(weight >= 0.5, total / weight, np.nan)
    out = np.moveaxis(out, -1, 0).reshape(shape)
    return out.astype(np.float32, copy=False)
