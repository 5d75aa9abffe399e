# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The augmented views of self-supervised pretraining, made on the device in batches.

The views follow Radio Galaxy Zoo's BYOL model (Slijepcevic et al. 2023):
rotation by any angle, mirror flips, a random resized crop of 80-100 % of
the (already centre-cropped) image, and an optional Gaussian blur; no colour
transforms, since the pixel values of a single-band image carry meaning.
Rotations and flips make the features blind to handedness (clockwise and
anticlockwise spirals look alike): turn them off for such tasks.
"""

import torch

from ..classify.augment import SkyAugment
from ..exceptions import InputError

__all__ = ["SkyViews"]


def gaussian_blur(images, sigma):
    """
    Blur each image of a batch with its own Gaussian (``sigma`` in pixels, 0: unchanged).

    Examples
    --------
    >>> import torch
    >>> from astrofmtools.pretrain.views import gaussian_blur
    >>> x = torch.zeros(2, 1, 21, 21)
    >>> x[:, :, 10, 10] = 1.0
    >>> out = gaussian_blur(x, torch.tensor([0.0, 1.5]))
    >>> float(out[0, 0, 10, 10]), round(float(out[1].sum()), 3), float(out[1, 0, 10, 10]) < 0.2
    (1.0, 1.0, True)
    """
    n, c, h, w = images.shape
    sigma = sigma.to(device=images.device, dtype=torch.float32).clamp(min=1e-3)
    radius = int(torch.ceil(3 * sigma.max()).item())
    if radius < 1:
        return images
    offsets = torch.arange(-radius, radius + 1, device=images.device, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (offsets[None] / sigma[:, None]) ** 2)
    kernel = kernel / kernel.sum(1, keepdim=True)  # (N, K); sigma ~0 -> a delta
    kernel = kernel.repeat_interleave(c, dim=0)  # one kernel per image and channel
    x = images.float().reshape(1, n * c, h, w)
    pad = torch.nn.functional.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = torch.nn.functional.conv2d(pad, kernel[:, None, None, :], groups=n * c)
    x = torch.nn.functional.conv2d(x, kernel[:, None, :, None], groups=n * c)
    return x.reshape(n, c, h, w).to(images.dtype)


class SkyViews:
    """
    Random views of a batch of sky images for self-supervised pretraining.

    Parameters
    ----------
    n_views : int, optional
        Views per image.
    rotation, flip : bool, optional
        Rotate by any angle; mirror (see `~astrofmtools.classify.SkyAugment`).
    crop_scale : (float, float) or None, optional
        Area fraction range of the random resized crop.
    blur_probability : float, optional
        Fraction of the views blurred.
    blur_sigma : (float, float), optional
        Range of the blur's sigma, in pixels of the view.

    Examples
    --------
    >>> import torch
    >>> from astrofmtools.pretrain import SkyViews
    >>> images = torch.zeros(4, 3, 32, 32)
    >>> images[:, :, 12:20, 14:18] = 1.0
    >>> views = SkyViews()(images, torch.Generator().manual_seed(0))
    >>> len(views), tuple(views[0].shape), bool(torch.equal(views[0], views[1]))
    (2, (4, 3, 32, 32), False)
    """

    def __init__(self, n_views=2, rotation=True, flip=True, crop_scale=(0.8, 1.0),
                 blur_probability=0.0, blur_sigma=(0.1, 1.5)):
        if int(n_views) < 2:
            raise InputError(f"n_views must be at least 2; got {n_views!r}.")
        if not 0 <= float(blur_probability) <= 1:
            raise InputError(f"blur_probability must be in [0, 1]; got {blur_probability!r}.")
        lo, hi = (float(s) for s in blur_sigma)
        if not 0 <= lo <= hi:
            raise InputError(f"blur_sigma must be (min, max) with 0 <= min <= max; got "
                             f"{blur_sigma!r}.")
        self.n_views = int(n_views)
        self.augment = SkyAugment(rotation=rotation, flip=flip, crop_scale=crop_scale)
        self.blur_probability = float(blur_probability)
        self.blur_sigma = (lo, hi)

    def to_dict(self):
        """The settings as a JSON-serialisable dict (``SkyViews(**d)`` rebuilds them)."""
        a = self.augment
        return {"n_views": self.n_views, "rotation": a.rotation, "flip": a.flip,
                "crop_scale": None if a.crop_scale is None else list(a.crop_scale),
                "blur_probability": self.blur_probability, "blur_sigma": list(self.blur_sigma)}

    def __call__(self, images, generator=None):
        """``n_views`` augmented copies of the ``(N, C, H, W)`` batch (a list)."""
        views = []
        for _ in range(self.n_views):
            view = self.augment(images, generator)
            if self.blur_probability > 0:
                n = images.shape[0]
                lo, hi = self.blur_sigma
                sigma = lo + (hi - lo) * torch.rand(n, generator=generator)
                sigma[torch.rand(n, generator=generator) >= self.blur_probability] = 0.0
                view = gaussian_blur(view, sigma)
            views.append(view)
        return views
