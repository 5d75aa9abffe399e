# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Augmentations for sky images: random rotations by any angle, flips and
small random resized crops, applied per image to a whole batch at once, and
test-time augmentation over the eight flips and quarter turns.

The sky has no preferred orientation, so a classifier of sky cutouts should
not depend on one: training sees every image at random angles and
mirrorings, and prediction averages over the eight exact symmetries of the
square (the dihedral group D4), which need no interpolation. No colour
("jitter") transforms are applied: pixel values of a stretched radio or
optical image carry meaning.
"""

import math

import numpy as np

from ..exceptions import InputError

__all__ = ["SkyAugment", "dihedral_transforms", "tta_mean"]


def _torch():
    import torch
    return torch


class SkyAugment:
    """
    Random rotation, flip and resized crop of a batch of sky images.

    Each image of the batch gets its own random rotation angle (uniform in
    0-360 degrees), its own mirror flip and its own crop (a random fraction
    ``crop_scale`` of the area, aspect ratio in ``ratio``, at a random
    position), all composed into one affine resampling per image
    (`torch.nn.functional.grid_sample`, bilinear), so the pixels are
    interpolated once. Corners that the rotation brings in from outside the
    image are filled with each image's own background level (the median of
    each channel) rather than black, so the network cannot learn the
    rotation angle from the corners.

    Parameters
    ----------
    rotation : bool, optional
        Rotate by a random angle in [0, 360) degrees.
    flip : bool, optional
        Mirror half of the images (with the free rotation, one flip axis
        gives all mirrorings).
    crop_scale : tuple of float or None, optional
        Range of the fraction of the image area kept by the random crop,
        resized back to the full size (as `torchvision.transforms.v2.RandomResizedCrop`'s
        ``scale``). None: no crop.
    ratio : tuple of float, optional
        Range of the crop's aspect ratio (width / height), sampled
        log-uniformly.
    fill : 'median' or float, optional
        The value given to pixels brought in from outside the image:
        ``'median'`` (each image's per-channel median) or a constant.

    Examples
    --------
    >>> import torch
    >>> from astrofmtools.classify import SkyAugment
    >>> images = torch.zeros(4, 3, 16, 16)
    >>> images[:, :, 6:10, 6:10] = 1.0
    >>> augment = SkyAugment()
    >>> out = augment(images, generator=torch.Generator().manual_seed(0))
    >>> tuple(out.shape)
    (4, 3, 16, 16)
    >>> bool(out.min() >= 0) and bool(out.max() <= 1)
    True

    Without rotation, flip and crop the images come back unchanged:

    >>> same = SkyAugment(rotation=False, flip=False, crop_scale=None)(images)
    >>> bool(torch.equal(same, images))
    True
    """

    def __init__(self, rotation=True, flip=True, crop_scale=(0.8, 1.0), ratio=(3 / 4, 4 / 3),
                 fill="median"):
        if crop_scale is not None:
            crop_scale = tuple(float(s) for s in crop_scale)
            if len(crop_scale) != 2 or not 0 < crop_scale[0] <= crop_scale[1] <= 1:
                raise InputError(f"crop_scale must be (min, max) with 0 < min <= max <= 1; "
                                 f"got {crop_scale}.")
        ratio = tuple(float(r) for r in ratio)
        if len(ratio) != 2 or not 0 < ratio[0] <= ratio[1]:
            raise InputError(f"ratio must be (min, max) with 0 < min <= max; got {ratio}.")
        if not (fill == "median" or isinstance(fill, (int, float))):
            raise InputError(f"fill must be 'median' or a number; got {fill!r}.")
        self.rotation = bool(rotation)
        self.flip = bool(flip)
        self.crop_scale = crop_scale
        self.ratio = ratio
        self.fill = fill

    def __repr__(self):
        return (f"SkyAugment(rotation={self.rotation}, flip={self.flip}, "
                f"crop_scale={self.crop_scale}, ratio={self.ratio}, fill={self.fill!r})")

    def to_dict(self):
        """The settings, as a JSON-serialisable dict (``SkyAugment(**d)`` rebuilds it)."""
        return {"rotation": self.rotation, "flip": self.flip,
                "crop_scale": None if self.crop_scale is None else list(self.crop_scale),
                "ratio": list(self.ratio), "fill": self.fill}

    @property
    def is_identity(self):
        """True when the transform changes nothing."""
        return not self.rotation and not self.flip and self.crop_scale is None

    def __call__(self, images, generator=None):
        """
        Augment a batch.

        Parameters
        ----------
        images : `torch.Tensor`
            ``(N, C, H, W)`` images (any value range; square images keep
            the rotation free of shear).
        generator : `torch.Generator`, optional
            A CPU generator for the random parameters (reproducible runs).

        Returns
        -------
        augmented : `torch.Tensor`
            The augmented batch, same shape, dtype and device.
        """
        torch = _torch()
        if images.ndim != 4:
            raise InputError(f"SkyAugment needs an (N, C, H, W) batch; got shape "
                             f"{tuple(images.shape)}.")
        if self.is_identity or images.shape[0] == 0:
            return images
        n = images.shape[0]
        opts = {"generator": generator, "dtype": torch.float64}
        angle = (torch.rand(n, **opts) * 2 * math.pi if self.rotation
                 else torch.zeros(n, dtype=torch.float64))
        flip = (torch.where(torch.rand(n, **opts) < 0.5, -1.0, 1.0).double() if self.flip
                else torch.ones(n, dtype=torch.float64))
        if self.crop_scale is not None:
            lo, hi = self.crop_scale
            area = lo + (hi - lo) * torch.rand(n, **opts)
            log_r = math.log(self.ratio[0]) + (math.log(self.ratio[1] / self.ratio[0])
                                               * torch.rand(n, **opts))
            r = torch.exp(log_r)
            sw = torch.clamp(torch.sqrt(area * r), max=1.0)
            sh = torch.clamp(torch.sqrt(area / r), max=1.0)
            tx = (2 * torch.rand(n, **opts) - 1) * (1 - sw)
            ty = (2 * torch.rand(n, **opts) - 1) * (1 - sh)
        else:
            sw = sh = torch.ones(n, dtype=torch.float64)
            tx = ty = torch.zeros(n, dtype=torch.float64)
        cos, sin = torch.cos(angle), torch.sin(angle)
        # input coordinate = R(angle) @ diag(flip * sw, sh) @ output coordinate + t
        theta = torch.stack([
            torch.stack([cos * flip * sw, -sin * sh, tx], dim=1),
            torch.stack([sin * flip * sw, cos * sh, ty], dim=1),
        ], dim=1)
        work = images.float()
        theta = theta.to(device=images.device, dtype=work.dtype)
        if self.fill == "median":
            background = work.flatten(2).median(dim=2).values[:, :, None, None]
        else:
            background = torch.full((n, work.shape[1], 1, 1), float(self.fill),
                                    device=images.device, dtype=work.dtype)
        grid = torch.nn.functional.affine_grid(theta, list(work.shape), align_corners=False)
        out = torch.nn.functional.grid_sample(work - background, grid, mode="bilinear",
                                              padding_mode="zeros", align_corners=False)
        return (out + background).to(images.dtype)


def dihedral_transforms(images):
    """
    The eight flips and quarter turns of a batch of images.

    These are the exact symmetries of a square pixel grid (the dihedral
    group D4): they move pixels without interpolating them.

    Parameters
    ----------
    images : `torch.Tensor` or `~numpy.ndarray`
        ``(..., H, W)`` images.

    Returns
    -------
    views : list
        Eight arrays of the same type: the four rotations by 0, 90, 180 and
        270 degrees, then the same four of the image mirrored left-right.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.classify import dihedral_transforms
    >>> image = np.arange(4.0).reshape(1, 2, 2)
    >>> views = dihedral_transforms(image)
    >>> len(views), views[1][0].tolist()
    (8, [[1.0, 3.0], [0.0, 2.0]])
    """
    if isinstance(images, np.ndarray):
        flipped = images[..., ::-1]
        return ([np.rot90(images, k, axes=(-2, -1)) for k in range(4)]
                + [np.rot90(flipped, k, axes=(-2, -1)) for k in range(4)])
    torch = _torch()
    flipped = torch.flip(images, dims=(-1,))
    return ([torch.rot90(images, k, dims=(-2, -1)) for k in range(4)]
            + [torch.rot90(flipped, k, dims=(-2, -1)) for k in range(4)])


def tta_mean(predict, images, tta=True):
    """
    Average a model's class probabilities over the eight dihedral views.

    Parameters
    ----------
    predict : callable
        Maps an ``(N, C, H, W)`` tensor to ``(N, K)`` class probabilities.
    images : `torch.Tensor`
        The batch.
    tta : bool, optional
        False: just ``predict(images)``.

    Returns
    -------
    probabilities : `torch.Tensor`
        ``(N, K)``: the mean of the eight views' probabilities.

    Examples
    --------
    >>> import torch
    >>> from astrofmtools.classify import tta_mean
    >>> images = torch.zeros(2, 1, 4, 4)
    >>> images[:, :, 0, 0] = 1.0            # a bright corner pixel
    >>> top_left = lambda x: torch.stack([x[:, 0, 0, 0], 1 - x[:, 0, 0, 0]], dim=1)
    >>> tta_mean(top_left, images).tolist()  # the pixel is top-left in 2 of 8 views
    [[0.25, 0.75], [0.25, 0.75]]
    """
    if not tta:
        return predict(images)
    total = None
    for view in dihedral_transforms(images):
        p = predict(view.contiguous())
        total = p if total is None else total + p
    return total / 8.0
