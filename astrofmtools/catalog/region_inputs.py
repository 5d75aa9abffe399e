# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The arguments of the region functions: choices, WCS, radius and columns."""

import warnings
from pathlib import Path

import numpy as np
import astropy.units as u
from astropy.io import fits
from astropy.nddata import NDData
from astropy.wcs import WCS

from ..exceptions import InputError

__all__ = []


def _check_choice(value, choices, what):
    key = str(value).lower() if value is not None else None
    if key not in choices:
        raise InputError(f"Unsupported {what} {value!r}; supported: {', '.join(choices)}.")
    return key


def _as_wcs(wcs):
    """A 2-D celestial WCS from a WCS, header, NDData, image file, or None."""
    if wcs is None:
        return None
    if isinstance(wcs, WCS):
        out = wcs
    elif isinstance(wcs, fits.Header):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=Warning)  # FITSFixedWarning and kin
            out = WCS(wcs)
    elif isinstance(wcs, NDData):
        out = wcs.wcs
    elif isinstance(wcs, (str, Path)):
        from ..io import load_image
        out = load_image(wcs).wcs
    else:
        raise InputError(f"wcs= must be a WCS, a FITS header, an image or an image file; "
                         f"got {type(wcs).__name__}.")
    if out is None:
        raise InputError("The image given as wcs= has no celestial WCS.")
    if not isinstance(out, WCS):
        raise InputError(f"wcs= must be an astropy WCS; got {type(out).__name__}.")
    if out.naxis != 2 or not out.has_celestial:
        if not out.has_celestial:
            raise InputError("wcs= has no celestial (sky) axes.")
        out = out.celestial
    return out


def _parse_radius(radius):
    if radius is None:
        return None
    if isinstance(radius, u.Quantity):
        if radius.unit.physical_type == "angle":
            return ("sky", radius)
        if radius.unit in (u.pix, u.dimensionless_unscaled):
            return ("pix", float(radius.value))
        raise InputError(f"radius must be in pixels or an angle; got unit {radius.unit}.")
    try:
        return ("pix", float(radius))
    except (TypeError, ValueError):
        raise InputError(f"radius must be a number of pixels or an angle; got {radius!r}.")


def _resolve_column(table, name, defaults, what):
    if name is None:
        return None
    if name == "auto":
        for col in defaults:
            if col and col in table.colnames:
                return col
        return None
    if name not in table.colnames:
        raise InputError(f"{what}= names column {name!r}, which the table lacks; its "
                         f"columns are {table.colnames}.")
    return name


def _values(col):
    """A float array from a column (Quantity, Column, masked), masked -> NaN."""
    name = getattr(getattr(col, "info", None), "name", "")
    if isinstance(col, u.Quantity):
        col = col.value
    arr = np.ma.asarray(col)
    if arr.dtype.kind not in "fiub":
        raise InputError(f"Column {name!r} is not numeric.")
    return np.ma.filled(arr.astype(float), np.nan)
