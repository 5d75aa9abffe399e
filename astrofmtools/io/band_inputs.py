# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The inputs of `load_bands` and `mosaic`: lists of images of any kind, loaded
with a celestial WCS, their band names and the reference grid.
"""

import os
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from ..exceptions import InputError
from .image import SkyImage
from .load import load_image

__all__ = []

_FITS_SUFFIXES = (".gz", ".fz", ".bz2", ".fits", ".fit", ".fts")
_NAME_KEYWORDS = ("FILTER", "SURVEY", "BAND")


def _stem(item):
    if not isinstance(item, (str, os.PathLike)):
        return None
    name = Path(item).name
    while True:
        lower = name.lower()
        for suffix in _FITS_SUFFIXES:
            if lower.endswith(suffix) and len(name) > len(suffix):
                name = name[: -len(suffix)]
                break
        else:
            return name or None


def _header_name(image):
    if image.header is None:
        return None
    for key in _NAME_KEYWORDS:
        value = str(image.header.get(key, "")).strip()
        if value:
            return value
    return None


def _as_list(images, what):
    single = (str, os.PathLike, SkyImage, fits.HDUList, fits.PrimaryHDU, fits.ImageHDU,
              fits.CompImageHDU)
    if isinstance(images, single) or (isinstance(images, tuple) and len(images) == 2
                                      and isinstance(images[0], np.ndarray)):
        images = [images]
    try:
        images = list(images)
    except TypeError:
        raise InputError(f"{what} takes a list of images (file names, HDUs, (array, WCS) "
                         f"pairs or SkyImages), not a {type(images).__name__}.") from None
    if not images:
        raise InputError(f"{what} needs at least one image; the list is empty.")
    return images


def _load_all(items, hdu, what):
    """Load every input as a 2-D SkyImage with a celestial WCS, naming failures."""
    loaded, no_wcs = [], []
    for i, item in enumerate(items):
        try:
            image = load_image(item, hdu=hdu) if not isinstance(item, SkyImage) else item
        except InputError as exc:
            raise type(exc)(f"{what}: images[{i}]: {exc}") from None
        if image.bands is not None:
            if image.n_bands != 1:
                raise InputError(
                    f"{what}: images[{i}] ({image.source}) is already a multi-band image "
                    f"with {image.n_bands} bands ({', '.join(image.bands)}); pass its bands "
                    "one by one, e.g. image.band(0), image.band(1).")
            image = image.band(0)
        if image.wcs is None:
            no_wcs.append(f"images[{i}] ({image.source})")
        loaded.append(image)
    if no_wcs:
        raise InputError(f"{what} needs a celestial WCS for every image, and "
                         f"{' and '.join(no_wcs)} "
                         f"{'has' if len(no_wcs) == 1 else 'have'} none (no CTYPE1/CTYPE2 "
                         "sky axes in the header).")
    return loaded


def _band_names(items, images, names):
    n = len(images)
    if names is not None:
        names = [names] if isinstance(names, str) else list(names)
        if len(names) != n:
            raise InputError(f"names has {len(names)} entries for {n} images.")
        names = [str(name) for name in names]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise InputError(f"Band names must be unique; repeated: {', '.join(duplicates)}.")
        return names
    names = []
    for i, (item, image) in enumerate(zip(items, images)):
        names.append(_stem(item) or _header_name(image) or f"band{i}")
    # Two FIRST cutouts, say: keep the first name, number the repeats.
    seen = {}
    unique = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        unique.append(name if count == 0 else f"{name}_{count + 1}")
    return unique


def _parse_reference(reference, items, images, hdu):
    """(wcs, shape, index or None, description) of the output grid."""
    if isinstance(reference, (bool, np.bool_)):
        raise InputError(f"reference must be an index, an image or a (WCS, shape) pair, "
                         f"not {reference!r}.")
    if isinstance(reference, (int, np.integer)):
        n = len(images)
        if not -n <= reference < n:
            raise InputError(f"reference={reference} is not an index into the {n} images.")
        index = int(reference) % n
        image = images[index]
        return image.wcs, image.shape[-2:], index, f"images[{index}] ({image.source})"
    for index, item in enumerate(items):
        if reference is item:
            return images[index].wcs, images[index].shape[-2:], index, \
                f"images[{index}] ({images[index].source})"
    if isinstance(reference, tuple) and len(reference) == 2 and isinstance(reference[0], WCS):
        wcs, shape = reference
        if not wcs.has_celestial:
            raise InputError("The reference WCS has no celestial axes.")
        try:
            shape = tuple(int(s) for s in shape)[-2:]
        except TypeError:
            raise InputError(f"The reference shape must be (ny, nx), not {shape!r}.") from None
        if len(shape) != 2 or min(shape) < 1:
            raise InputError(f"The reference shape must be (ny, nx), not {reference[1]!r}.")
        return wcs.celestial, shape, None, "the given (WCS, shape)"
    try:
        image = load_image(reference, hdu=hdu)
    except InputError as exc:
        raise type(exc)(f"reference: {exc}") from None
    if image.wcs is None:
        raise InputError(f"The reference image {image.source} has no celestial WCS (no "
                         "CTYPE1/CTYPE2 sky axes), so it cannot define the output grid.")
    return image.wcs, image.shape[-2:], None, image.source


def _pixels(image):
    """The image's pixels with its no-data mask set to NaN (no copy when possible)."""
    data = image.data
    if image.mask is not None and np.any(image.mask):
        data = np.where(image.mask, np.nan, data)
    return data


def _shared(values):
    first = values[0]
    if first is None or any(v is None for v in values):
        return None
    return first if all(v == first for v in values[1:]) else None
