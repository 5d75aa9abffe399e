# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Random training crops of the detector, their boxes and their augmentations."""

import math

import numpy as np

from ..exceptions import InputError
from .preprocess import _resize_unit

__all__ = ["CropSampler"]


class CropSampler:
    """
    Random square training crops, their boxes and their augmentations.

    Half of the crops (``object_fraction``) are placed so that a randomly
    chosen box lies inside them, the others uniformly. A box stays in a
    crop when at least ``min_visibility`` of its area does (clipped to the
    crop). Crops are taken from the [0, 1] images, resampled to
    ``crop_size`` model pixels (``crop_size / zoom`` image pixels), then
    augmented: the eight flips and quarter turns (exact, boxes moved with
    them), a small Gaussian blur and a small contrast (gamma and gain)
    change.

    Parameters
    ----------
    samples : list of `TrainingImage`
    crop_size : int
        Side of the model-input crops (a multiple of 32).
    zoom : float
        Model pixels per image pixel.
    object_fraction : float, optional
    min_visibility : float, optional
    augment : bool, optional
        Apply the augmentations.
    blur_probability : float, optional
    blur_sigma : (float, float), optional
        Range of the blur's sigma, in model pixels.
    contrast_probability : float, optional
    gamma, gain : (float, float), optional
        Ranges of the contrast change ``gain * x ** gamma``.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.detect import CropSampler, TrainingImage
    >>> unit = np.zeros((100, 100), np.float32)
    >>> unit[40:44, 60:64] = 1.0
    >>> sample = TrainingImage("toy", unit, np.array([[60, 40, 64, 44]], np.float32),
    ...                        np.array([1]))
    >>> sampler = CropSampler([sample], crop_size=64, zoom=2.0, object_fraction=1.0,
    ...                       blur_probability=0, contrast_probability=0)  # flips only
    >>> images, targets = sampler.batch(np.random.default_rng(0), 2)
    >>> tuple(images.shape), [t["boxes"].shape[0] for t in targets]
    ((2, 64, 64), [1, 1])
    >>> x1, y1, x2, y2 = targets[0]["boxes"][0].round().int().tolist()
    >>> x2 - x1, y2 - y1                                 # 4 x 4 pixels, zoomed 2 times
    (8, 8)
    >>> float(images[0, y1 + 1:y2 - 1, x1 + 1:x2 - 1].min())  # the source, inside its box
    1.0
    """

    def __init__(self, samples, crop_size, zoom, object_fraction=0.5, min_visibility=0.5,
                 augment=True, blur_probability=0.3, blur_sigma=(0.3, 1.0),
                 contrast_probability=0.5, gamma=(0.8, 1.25), gain=(0.9, 1.1)):
        self.samples = list(samples)
        self.crop_size = int(crop_size)
        if self.crop_size % 32:
            raise InputError(f"crop_size must be a multiple of 32, not {crop_size}.")
        self.zoom = float(zoom)
        self.side = max(2, int(round(self.crop_size / self.zoom)))
        self.object_fraction = float(object_fraction)
        self.min_visibility = float(min_visibility)
        self.augment = bool(augment)
        self.blur_probability = float(blur_probability)
        self.blur_sigma = tuple(float(s) for s in blur_sigma)
        self.contrast_probability = float(contrast_probability)
        self.gamma = tuple(float(g) for g in gamma)
        self.gain = tuple(float(g) for g in gain)
        areas = np.array([max(s.unit.shape[0], self.side) * max(s.unit.shape[1], self.side)
                          for s in self.samples], dtype=float)
        self.weights = areas / areas.sum()

    @property
    def crops_per_pass(self):
        """Crops that cover the training images' area once."""
        total = sum(max(s.unit.shape[0], self.side) * max(s.unit.shape[1], self.side)
                    for s in self.samples)
        return max(1, int(math.ceil(total / float(self.side ** 2))))

    def _window(self, rng, sample):
        ny, nx = sample.unit.shape
        c = self.side
        if len(sample.boxes) and rng.random() < self.object_fraction:
            b = sample.boxes[rng.integers(len(sample.boxes))]
            lo_x, hi_x = b[2] - c, b[0]
            lo_y, hi_y = b[3] - c, b[1]
            x0 = rng.uniform(min(lo_x, hi_x), max(lo_x, hi_x))
            y0 = rng.uniform(min(lo_y, hi_y), max(lo_y, hi_y))
        else:
            x0 = rng.uniform(0, max(nx - c, 0))
            y0 = rng.uniform(0, max(ny - c, 0))
        x0 = int(np.clip(round(x0), 0, max(nx - c, 0)))
        y0 = int(np.clip(round(y0), 0, max(ny - c, 0)))
        return y0, x0

    def crop(self, rng, sample):
        """One crop ``((S, S) [0, 1] tensor, boxes (M, 4), labels (M,))`` before augmentation."""
        import torch
        c = self.side
        y0, x0 = self._window(rng, sample)
        patch = np.zeros((c, c), dtype=np.float32)  # images smaller than a crop: padded
        part = sample.unit[y0:y0 + c, x0:x0 + c]
        patch[:part.shape[0], :part.shape[1]] = part
        boxes = sample.boxes - np.array([x0, y0, x0, y0], dtype=np.float32)
        clipped = np.clip(boxes, 0, c)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        seen = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
        keep = seen >= self.min_visibility * area
        scale = self.crop_size / float(c)
        image = _resize_unit(patch[None], (self.crop_size, self.crop_size))[0]
        boxes = torch.from_numpy(clipped[keep] * scale)
        labels = torch.from_numpy(np.asarray(sample.labels, dtype=np.int64)[keep])
        return image, boxes, labels

    def augment_crop(self, rng, image, boxes):
        """Random flips and quarter turns, blur and contrast of one crop and its boxes."""
        import torch
        from torchvision.transforms.v2 import functional as TF
        s = image.shape[-1]
        if rng.random() < 0.5:  # transpose: x <-> y
            image = image.transpose(-1, -2)
            boxes = boxes[:, [1, 0, 3, 2]]
        if rng.random() < 0.5:  # left-right
            image = torch.flip(image, dims=(-1,))
            boxes = torch.stack([s - boxes[:, 2], boxes[:, 1], s - boxes[:, 0], boxes[:, 3]], 1)
        if rng.random() < 0.5:  # up-down
            image = torch.flip(image, dims=(-2,))
            boxes = torch.stack([boxes[:, 0], s - boxes[:, 3], boxes[:, 2], s - boxes[:, 1]], 1)
        image = image.contiguous()
        if rng.random() < self.blur_probability:
            sigma = float(rng.uniform(*self.blur_sigma))
            k = 2 * int(math.ceil(3 * sigma)) + 1
            image = TF.gaussian_blur(image[None], [k, k], [sigma, sigma])[0]
        if rng.random() < self.contrast_probability:
            image = TF.adjust_gamma(image, float(rng.uniform(*self.gamma)),
                                    float(rng.uniform(*self.gain))).clamp_(0.0, 1.0)
        return image, boxes.reshape(-1, 4)

    def batch(self, rng, n):
        """
        ``n`` crops: a ``(n, S, S)`` [0, 1] tensor and torchvision targets
        (``{"boxes": (M, 4) float32, "labels": (M,) int64}`` each).
        """
        import torch
        images, targets = [], []
        for _ in range(int(n)):
            sample = self.samples[rng.choice(len(self.samples), p=self.weights)]
            image, boxes, labels = self.crop(rng, sample)
            if self.augment:
                image, boxes = self.augment_crop(rng, image, boxes)
            images.append(image)
            targets.append({"boxes": boxes.float().reshape(-1, 4), "labels": labels})
        return torch.stack(images), targets
