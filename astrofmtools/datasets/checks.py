# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Checks of the parameters of the synthetic fields."""

import numpy as np
import astropy.units as u
from astropy.coordinates import SkyCoord

from ..exceptions import InputError

__all__ = []


def _angle(value, name, default_unit=u.arcsec):
    try:
        q = u.Quantity(value, default_unit)
        q = q.to(u.arcsec)
    except (TypeError, ValueError, u.UnitsError):
        raise InputError(f"{name} must be an angle (a Quantity or a number in "
                         f"{default_unit}), not {value!r}.") from None
    if not q.isscalar or not np.isfinite(q.value) or q.value <= 0:
        raise InputError(f"{name} must be a positive finite angle, not {value!r}.")
    return q


def _positive(value, name):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a positive number, not {value!r}.") from None
    if not np.isfinite(value) or value <= 0:
        raise InputError(f"{name} must be a positive finite number, not {value!r}.")
    return value


def _count(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise InputError(f"{name} must be a non-negative integer, not {value!r}.")
    return int(value)


def _min_separation(value):
    if value is None:
        return None
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise InputError(f"min_separation must be >= 0 or None, not {value!r}.")
    return value


def _shape(shape):
    try:
        ny, nx = (int(n) for n in shape)
    except (TypeError, ValueError):
        raise InputError(f"shape must be (ny, nx), not {shape!r}.") from None
    if ny < 16 or nx < 16:
        raise InputError(f"shape must be at least (16, 16), not {shape!r}.")
    return ny, nx


def _snr_range(snr_range):
    try:
        lo, hi = (float(s) for s in snr_range)
    except (TypeError, ValueError):
        raise InputError(f"snr_range must be (low, high), not {snr_range!r}.") from None
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo <= 0 or hi < lo:
        raise InputError(f"snr_range must satisfy 0 < low <= high, not {snr_range!r}.")
    return lo, hi


def _center(center):
    if not isinstance(center, SkyCoord) or not center.isscalar:
        raise InputError(f"center must be a scalar SkyCoord, not {center!r}.")
    return center.icrs
