# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Detector inputs from FITS: one normalisation per image (global background
and noise, noise floor, fixed stretch in noise units), zoom to the model's
scale, training boxes from tables, region files or `find_sources`, random
crops and their augmentations.
"""

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import astropy.units as u
from astropy.table import Table

from ..exceptions import InputError
from ..schema import BBOX_COLUMNS, as_labels, boxes_from_table, parse_positions

__all__ = ["DetectionPreprocess", "TrainingImage", "image_levels", "boxes_for_image",
           "load_training_set", "CropSampler", "REGION_SUFFIXES"]

#: File suffixes read as region files (`~astrofmtools.catalog.read_regions`).
REGION_SUFFIXES = (".reg", ".ds9", ".crtf")

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


# ----------------------------------------------------------------------------------- boxes


@dataclass
class TrainingImage:
    """
    One training image: its pixels in [0, 1] and its boxes.

    Attributes
    ----------
    name : str
        Where the image came from (for messages).
    unit : `~numpy.ndarray`
        ``(H, W)`` float32 pixels after `DetectionPreprocess.to_unit`.
    boxes : `~numpy.ndarray`
        ``(N, 4)`` float32 ``(x1, y1, x2, y2)`` pixel edges.
    labels : `~numpy.ndarray`
        ``(N,)`` int64 class indices, 1-based (0 is the background).
    """

    name: str
    unit: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray


def _values(col, unit=None):
    if isinstance(col, u.Quantity):
        return np.asarray(col.to_value(unit) if unit is not None else col.value, dtype=float)
    return np.asarray(np.ma.filled(np.ma.asarray(col).astype(float), np.nan), dtype=float)


def _angle_pixels(table, name, image, what):
    """An angular size column in pixels (numbers without a unit are arcsec)."""
    col = table[name]
    if isinstance(col, u.Quantity) and col.unit.physical_type == "angle":
        arcsec = col.to_value(u.arcsec)
    elif isinstance(col, u.Quantity) and col.unit == u.pix:
        return np.asarray(col.value, dtype=float)
    else:
        arcsec = _values(col)
    image.require_wcs(f"Sky sizes (column {name!r} of {what})")
    return np.asarray(arcsec, dtype=float) / image.pixel_scale.to_value(u.arcsec)


def _centred_boxes(x, y, width, height):
    """Edge boxes centred on 0-based pixel centres (x, y) with full sides (width, height)."""
    x, y = np.asarray(x, float) + 0.5, np.asarray(y, float) + 0.5
    w, h = np.asarray(width, float) / 2, np.asarray(height, float) / 2
    return np.stack([x - w, y - h, x + w, y + h], axis=1).astype(np.float32).reshape(-1, 4)


def _region_boxes(table, image, what):
    """Axis-aligned boxes around the regions of a `read_regions` table."""
    shapes = np.asarray(table["shape"]).astype(str)
    bad = sorted(set(shapes) - {"box", "circle", "ellipse"})
    if bad:
        raise InputError(f"{what} has {', '.join(bad)} regions; detector boxes come from box, "
                         "circle and ellipse regions only.")
    if "x" not in table.colnames:
        raise InputError(f"{what} has sky regions and the image {image.source} has no WCS to "
                         "place them.")
    sky = "sky_centroid" in table.colnames and table["radius"].unit == u.arcsec
    scale = image.pixel_scale.to_value(u.arcsec) if sky else 1.0
    radius = _values(table["radius"]) / scale
    width = _values(table["width"]) / scale
    height = _values(table["height"]) / scale
    theta = np.deg2rad(np.nan_to_num(_values(table["angle"], u.deg)))
    c, s = np.abs(np.cos(theta)), np.abs(np.sin(theta))
    is_box = shapes == "box"
    w = np.where(is_box, width * c + height * s, np.hypot(width * c, height * s))
    h = np.where(is_box, width * s + height * c, np.hypot(width * s, height * c))
    circle = shapes == "circle"
    w = np.where(circle, 2 * radius, w)
    h = np.where(circle, 2 * radius, h)
    return _centred_boxes(_values(table["x"]), _values(table["y"]), w, h)


def boxes_for_image(image, boxes, what=None, find_sources_kwargs=None):
    """
    Detector boxes of one image from a table, a region file or `find_sources`.

    Parameters
    ----------
    image : `~astrofmtools.io.SkyImage`
        The image the boxes belong to (its WCS converts sky positions).
    boxes : table, str, `~pathlib.Path` or ``'find_sources'``
        - A table with ``bbox_xmin``, ``bbox_xmax``, ``bbox_ymin``,
          ``bbox_ymax`` (0-based inclusive pixels; `find_sources` output,
          truth catalogues);
        - or a table of sky positions (``sky_centroid``, or ``ra`` and
          ``dec`` in degrees) with sizes: ``width`` and ``height``, or
          ``size`` (a square), or ``radius`` (angles; numbers are arcsec),
          placed through the image's WCS;
        - or a table of pixel centres ``x``, ``y`` with ``width`` and
          ``height`` in pixels;
        - a region file (``.reg``, ``.ds9``, ``.crtf``): box, circle and
          ellipse regions, pixel or sky (`~astrofmtools.catalog.read_regions`);
        - another file: a table (`~astrofmtools.catalog.read_table`);
        - ``'find_sources'``: pseudo-labels from
          `~astrofmtools.sources.find_sources` (bootstrapping without labels).
    what : str, optional
        How to name the boxes in messages.
    find_sources_kwargs : dict, optional
        Arguments of `~astrofmtools.sources.find_sources`.

    Returns
    -------
    boxes : `~numpy.ndarray`
        ``(N, 4)`` float32 ``(x1, y1, x2, y2)`` pixel edges.
    table : `~astropy.table.Table`
        The table they came from (for labels).

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.table import QTable
    >>> from astrofmtools.detect import boxes_for_image
    >>> from astrofmtools.io import load_image
    >>> image = load_image((np.zeros((50, 50)), None))
    >>> boxes, _ = boxes_for_image(image, QTable({"x": [10.0], "y": [20.0], "width": [4.0],
    ...                                             "height": [6.0]}))
    >>> boxes.tolist()
    [[8.5, 17.5, 12.5, 23.5]]
    """
    if isinstance(boxes, str) and boxes == "find_sources":
        from ..sources import find_sources
        table = find_sources(image, **(find_sources_kwargs or {}))
        return boxes_from_table(table, f"find_sources on {image.source}"), table
    if isinstance(boxes, (str, Path)):
        path = Path(boxes)
        what = what or str(path)
        if path.suffix.lower() in REGION_SUFFIXES:
            from ..catalog import read_regions
            table = read_regions(path, wcs=image.wcs)
            return _region_boxes(table, image, what), table
        from ..catalog import read_table
        boxes = read_table(path)
    if not isinstance(boxes, Table):
        raise InputError(f"Boxes must be a table, a table or region file, or 'find_sources'; "
                         f"got {type(boxes).__name__}.")
    table = boxes
    what = what or f"the boxes of {image.source}"
    names = table.colnames
    if all(c in names for c in BBOX_COLUMNS):
        return boxes_from_table(table, what), table
    if "shape" in names and "radius" in names and "width" in names:
        return _region_boxes(table, image, what), table
    # sky positions first (any frame the schema knows), then pixels
    pos = parse_positions(table, kind="sky", name=what, required=False)
    if pos is None:
        pos = parse_positions(table, kind="pixel", name=what, required=False)
    if pos is None:
        raise InputError(f"{what} has neither box columns ({', '.join(BBOX_COLUMNS)}) nor "
                         f"positions (sky_centroid, ra/dec, l/b... or x/y); it has "
                         f"{', '.join(names)}.")
    sky = pos if pos.kind == "sky" else None
    x, y = pos.pixels(image.require_wcs(f"Sky positions in {what}") if sky else None)
    if "width" in names and "height" in names:
        w = _angle_pixels(table, "width", image, what) if sky is not None else \
            _values(table["width"])
        h = _angle_pixels(table, "height", image, what) if sky is not None else \
            _values(table["height"])
    elif "size" in names:
        w = h = _angle_pixels(table, "size", image, what)
    elif "radius" in names:
        w = h = 2 * _angle_pixels(table, "radius", image, what)
    else:
        raise InputError(f"{what} gives positions but no sizes: add width and height, size "
                         "or radius columns (angles), or bbox columns.")
    return _centred_boxes(x, y, w, h), table


def load_training_set(images, boxes, label_column=None, classes=None,
                      find_sources_kwargs=None):
    """
    Load training images with their boxes and class labels.

    Parameters
    ----------
    images : list
        Images: paths, `~astrofmtools.io.SkyImage` or anything
        `~astrofmtools.io.load_image` takes.
    boxes : list, table or ``'find_sources'``
        One entry per image (see `boxes_for_image`), or one table with an
        ``image`` column naming each row's image (file name, with or
        without its folder and suffix, or the SkyImage's ``source``), or
        ``'find_sources'`` (or None) for pseudo-labels on every image.
    label_column : str, optional
        The column holding each box's class; None: one class,
        ``'source'``. (For region files: ``'label'``, the DS9 tag, or
        ``'text'``.)
    classes : list of str, optional
        The class names in order (default: the sorted labels found).
    find_sources_kwargs : dict, optional
        For pseudo-labels.

    Returns
    -------
    samples : list of (`~astrofmtools.io.SkyImage`, boxes, label names)
    classes : list of str
    """
    from ..io import load_image
    if isinstance(images, (str, Path)) or hasattr(images, "data"):
        images = [images]
    images = [load_image(im).require_2d("detection") for im in images]
    if not images:
        raise InputError("No training images.")
    if boxes is None:
        boxes = "find_sources"
    if isinstance(boxes, str) and boxes == "find_sources":
        per_image = ["find_sources"] * len(images)
    elif isinstance(boxes, Table) and "image" in boxes.colnames:
        per_image = _split_by_image(boxes, images)
    elif isinstance(boxes, (Table, str, Path)):
        if len(images) != 1:
            raise InputError(f"One boxes table for {len(images)} images: give it an 'image' "
                             "column naming each row's image, or pass one table per image.")
        per_image = [boxes]
    else:
        per_image = list(boxes)
        if len(per_image) != len(images):
            raise InputError(f"{len(images)} images but {len(per_image)} box tables; give one "
                             "per image.")
    samples = []
    for image, entry in zip(images, per_image):
        b, table = boxes_for_image(image, entry, find_sources_kwargs=find_sources_kwargs)
        if label_column is None:
            names = np.full(len(b), "source", dtype=object)
        else:
            if label_column not in table.colnames:
                raise InputError(f"The boxes of {image.source} have no column "
                                 f"{label_column!r}; they have {', '.join(table.colnames)}.")
            names = as_labels(table[label_column], f"label column {label_column!r} of the "
                              f"boxes of {image.source}").astype(str).astype(object)
        good = np.all(np.isfinite(b), axis=1) & (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
        samples.append((image, b[good], names[good]))
    found = sorted({str(n) for _, _, names in samples for n in names})
    if classes is None:
        classes = found or ["source"]
    classes = [str(c) for c in classes]
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise InputError(f"Box labels {unknown} are not among the classes {classes}.")
    if not any(len(b) for _, b, _ in samples):
        raise InputError("The training images have no boxes at all.")
    return samples, classes


def _split_by_image(table, images):
    keys = np.asarray(table["image"]).astype(str)
    out = []
    used = np.zeros(len(table), dtype=bool)
    for image in images:
        source = str(image.source)
        path = Path(source.split("[")[0].strip())
        names = {source, path.name, path.stem, str(path)}
        rows = np.array([k in names or Path(k).name in names or Path(k).stem in names
                         for k in keys], dtype=bool)
        used |= rows
        out.append(table[rows])
    if not used.any():
        raise InputError(f"No row of the boxes table names one of the images "
                         f"({', '.join(str(im.source) for im in images[:5])}) in its 'image' "
                         "column.")
    return out


# ----------------------------------------------------------------------------------- crops


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
