# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Training boxes of the detector: from tables, region files or `find_sources`,
one set per image, with their class labels.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import astropy.units as u
from astropy.table import Table

from ..exceptions import InputError
from ..schema import BBOX_COLUMNS, as_labels, boxes_from_table, parse_positions

__all__ = ["TrainingImage", "boxes_for_image", "load_training_set", "REGION_SUFFIXES"]

#: File suffixes read as region files (`~astrofmtools.catalog.read_regions`).
REGION_SUFFIXES = (".reg", ".ds9", ".crtf")


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
