# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Detector inputs from FITS: one normalisation per image (global background
and noise, noise floor, fixed stretch in noise units) and the zoom to the
model's scale.
"""

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ..exceptions import InputError

__all__ = ["DetectionPreprocess", "image_levels"]

#: At most this many pixels are read to measure an image's background and noise.
_MAX_STATS_PIXELS = 4_000_000


def image_levels(image, max_pixels=_MAX_STATS_PIXELS):
    """
    The background and noise of a whole image, from a strided subsample.

    Every ``s``-th row and column (``s`` chosen so that at most
    ``max_pixels`` are read) go to `~astrofmtools.background.global_noise`
    (sigma-clipped). For a memory-mapped mosaic only those pixels are
    read, so memory stays bounded; every tile of the mosaic is then
    normalised with the same two numbers.

    Parameters
    ----------
    image : `~astrofmtools.io.SkyImage` or any input of `~astrofmtools.io.load_image`
    max_pixels : int, optional

    Returns
    -------
    background, rms : float
        The sigma-clipped median and the noise rms (in the image's unit).

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.detect import image_levels
    >>> data = np.random.default_rng(0).normal(5.0, 2.0, (600, 600))
    >>> [round(v, 1) for v in image_levels((data, None), max_pixels=90_000)]
    [5.0, 2.0]
    """
    from ..background import global_noise
    from ..io import load_image
    image = load_image(image).require_2d("detection")
    ny, nx = image.shape
    step = max(1, int(math.ceil(math.sqrt(ny * nx / float(max_pixels)))))
    sub = np.array(image.data[::step, ::step], dtype=np.float32)
    if image.mask is not None:
        sub[np.asarray(image.mask[::step, ::step], dtype=bool)] = np.nan
    if not np.isfinite(sub).any():
        raise InputError(f"{image.source} has no valid pixel to measure its noise on.")
    stats = global_noise((sub, None))
    rms = stats.rms if stats.rms > 0 else 1.0
    return float(stats.median), float(rms)


@dataclass
class DetectionPreprocess:
    """
    How raw image pixels become a detector's normalised input.

    Steps: subtract the image's background and set everything below
    ``noise_floor`` times its noise to 0 (`~astrofmtools.stretch.noise_floor`),
    stretch from 0 to ``vmax`` times the noise (`~astrofmtools.stretch.Stretch`,
    the same fixed interval for every image and tile, in noise units, so that
    tiles of a mosaic and images of a training set look alike), upscale by
    ``zoom`` to sides that are multiples of 32, repeat into 3 channels and
    normalise with the backbone's ``mean`` and ``std``.

    Parameters
    ----------
    zoom : float, optional
        Upscaling factor (model pixels per image pixel).
    noise_floor : float or None, optional
        Threshold in units of the noise rms; None: keep the noise.
    stretch : str, optional
        A stretch of `~astrofmtools.stretch.STRETCHES`.
    a : float or None, optional
        The stretch's parameter (asinh: the linear-to-log transition, in
        units of ``vmax``).
    vmax : float, optional
        The top of the stretch, in units of the noise rms.
    mean, std : tuple of float, optional
        The backbone's normalisation.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.detect import DetectionPreprocess
    >>> pre = DetectionPreprocess(zoom=2.0)
    >>> data = np.zeros((40, 48), np.float32)
    >>> data[20, 10] = 50.0                       # a 50-sigma pixel
    >>> unit = pre.to_unit(data, background=0.0, rms=1.0)
    >>> round(float(unit.max()), 3), float(unit[0, 0])    # asinh over 0-500 sigma
    (0.502, 0.0)
    >>> x, scale = pre.to_tensor(unit[None])
    >>> tuple(x.shape), scale                     # 80 x 96, padded to multiples of 32
    ((1, 3, 96, 96), (2.0, 2.0))
    """

    zoom: float = 1.0
    noise_floor: float = 3.0
    stretch: str = "asinh"
    a: float = 0.02
    vmax: float = 500.0
    mean: tuple = (0.485, 0.456, 0.406)
    std: tuple = (0.229, 0.224, 0.225)

    def __post_init__(self):
        from ..stretch import Stretch
        try:
            self.zoom = float(self.zoom)
        except (TypeError, ValueError):
            raise InputError(f"zoom must be a positive number, not {self.zoom!r}.") from None
        if not self.zoom > 0:
            raise InputError(f"zoom must be a positive number, not {self.zoom!r}.")
        if self.noise_floor is not None:
            self.noise_floor = float(self.noise_floor)
        self.vmax = float(self.vmax)
        if not self.vmax > 0:
            raise InputError(f"vmax must be positive, not {self.vmax!r}.")
        self.mean = tuple(float(m) for m in self.mean)
        self.std = tuple(float(s) for s in self.std)
        Stretch(self.stretch, interval="manual", vmin=0.0, vmax=1.0, a=self.a)  # fail early

    def to_dict(self):
        """The settings as a JSON-serialisable dict."""
        out = dataclasses.asdict(self)
        out["mean"], out["std"] = list(self.mean), list(self.std)
        return out

    @classmethod
    def from_dict(cls, d):
        """Rebuild from `to_dict` output."""
        return cls(**d)

    def to_unit(self, data, background, rms):
        """
        Pixels to [0, 1]: background subtracted, noise floored, stretched.

        Parameters
        ----------
        data : array
            ``(..., H, W)`` raw pixels (NaN allowed: they become 0).
        background, rms : float
            The image's levels (`image_levels`).

        Returns
        -------
        unit : `~numpy.ndarray`
            float32, same shape, in [0, 1].
        """
        from ..stretch import Stretch, noise_floor
        data = np.asarray(data, dtype=np.float32)
        if self.noise_floor is not None:
            data = noise_floor(data, rms=rms, k=self.noise_floor, background=background)
        else:
            data = data - np.float32(background)
        out = Stretch(self.stretch, interval="manual", vmin=0.0, vmax=self.vmax * rms,
                      a=self.a, fill=0.0)(data)
        return out

    def model_shape(self, shape):
        """
        The zoomed size ``(h, w)`` of image pixels of ``shape``, and the
        model-input size: the same padded to multiples of 32.
        """
        zoomed = tuple(max(1, int(round(n * self.zoom))) for n in shape[-2:])
        return zoomed, tuple(max(32, int(math.ceil(n / 32.0)) * 32) for n in zoomed)

    def to_tensor(self, unit):
        """
        [0, 1] images to the normalised model input.

        The images are resampled by ``zoom`` (bilinear) and padded at the
        right and bottom with the background (0) to multiples of 32 pixels.

        Parameters
        ----------
        unit : array or `torch.Tensor`
            ``(N, H, W)`` images from `to_unit` (all the same size).

        Returns
        -------
        x : `torch.Tensor`
            ``(N, 3, H', W')`` float32.
        scale : (float, float)
            Model pixels per image pixel along y and x (``zoom``, up to the
            rounding of the zoomed size to whole pixels).
        """
        import torch.nn.functional as F
        zoomed, padded = self.model_shape(unit.shape)
        x = _resize_unit(unit, zoomed)
        x = F.pad(x, (0, padded[1] - zoomed[1], 0, padded[0] - zoomed[0]))
        scale = (zoomed[0] / unit.shape[-2], zoomed[1] / unit.shape[-1])
        return self.normalize(x), scale

    def normalize(self, x):
        """``(N, H, W)`` [0, 1] tensor -> ``(N, 3, H, W)`` with the backbone's mean and std."""
        import torch
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x[:, None].expand(-1, 3, -1, -1) - mean) / std


def _resize_unit(unit, size):
    """Bilinear resampling of ``(N, H, W)`` [0, 1] images to ``size`` (a torch tensor)."""
    import torch
    import torch.nn.functional as F
    x = torch.as_tensor(np.ascontiguousarray(unit, dtype=np.float32)
                        if isinstance(unit, np.ndarray) else unit, dtype=torch.float32)
    size = tuple(int(s) for s in size)
    if tuple(x.shape[-2:]) == size:
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    out = F.interpolate(x[:, None], size=size, mode="bilinear", align_corners=False,
                        antialias=shrink)[:, 0]
    return out.clamp_(0.0, 1.0)
