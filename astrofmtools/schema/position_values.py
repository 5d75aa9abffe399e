# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Reading position columns as plain float64: masked values as NaN, angles
in degrees (sexagesimal strings included), pixels checked to be pixels.
"""

import numpy as np
import astropy.units as u
from astropy.coordinates import Angle
from astropy.utils.masked import Masked

from ..exceptions import InputError

__all__ = []


def _filled(values):
    """Plain float64, NaN where masked."""
    if isinstance(values, Masked):
        values = values.filled(np.nan)
    out = np.array(np.ma.getdata(values), dtype=np.float64)
    if np.ma.isMaskedArray(values):
        out[np.ma.getmaskarray(values)] = np.nan
    return out


def _angle_values(table, col_name, name, hours=False):
    """Plain float64 degrees, NaN where masked; unitless numbers are degrees."""
    values = table[col_name]
    if isinstance(values, np.ndarray) and values.dtype.kind in "USO" and not isinstance(
            values, u.Quantity):
        strings = np.ma.asarray(values)
        if strings.dtype.kind == "S":
            strings = np.char.decode(np.ma.filled(strings, b""), "utf-8", "replace")
        elif strings.dtype.kind == "O":
            strings = np.array([str(v) if v is not None else "" for v in
                                np.ma.filled(strings, "")], dtype=str)
        else:
            strings = np.ma.filled(strings, "")
        strings = np.char.strip(np.asarray(strings, dtype=str))
        empty = np.isin(np.char.lower(strings), ("", "nan", "--"))
        text = strings[~empty]
        out = np.full(len(strings), np.nan)
        try:
            out[~empty] = text.astype(np.float64)  # decimal degrees
            return out
        except ValueError:
            pass
        unit = u.hourangle if hours else u.deg
        try:
            out[~empty] = Angle(text, unit=unit).to_value(u.deg)
        except (ValueError, TypeError, u.UnitsError):
            rows = np.flatnonzero(~empty)
            for row in rows:
                try:
                    Angle(strings[row], unit=unit)
                except (ValueError, TypeError, u.UnitsError) as exc:
                    raise InputError(f"Cannot read column {col_name!r} of {name} as angles: "
                                     f"row {row} (0-based) holds {str(strings[row])!r} ({exc}).") \
                        from None
            raise  # pragma: no cover - some row fails above
        return out
    unit = getattr(values, "unit", None)
    factor = 1.0
    if unit is not None:
        try:
            factor = unit.to(u.deg)
        except u.UnitsError:
            raise InputError(f"Column {col_name!r} of {name} has unit {unit}, not an "
                             "angle.") from None
    try:
        raw = values.value if isinstance(values, u.Quantity) else values
        return _filled(raw) * factor
    except (TypeError, ValueError):
        raise InputError(f"Column {col_name!r} of {name} does not hold numbers or "
                         "angles.") from None


def _pixel_values(table, col_name, name):
    """Plain float64 pixels, NaN where masked; pix or no unit."""
    values = table[col_name]
    unit = getattr(values, "unit", None)
    if unit is not None and unit not in (u.pix, u.dimensionless_unscaled):
        kind = "an angle" if unit.physical_type == "angle" else f"in {unit}"
        raise InputError(f"Column {col_name!r} of {name} is {kind}; pixel positions must be "
                         "unitless or in pix.")
    if getattr(values, "dtype", np.dtype(float)).kind not in "fiub":
        raise InputError(f"Column {col_name!r} of {name} does not hold numbers (pixel "
                         "positions).")
    raw = values.value if isinstance(values, u.Quantity) else values
    try:
        return _filled(raw)
    except (TypeError, ValueError):
        raise InputError(f"Column {col_name!r} of {name} does not hold numbers (pixel "
                         "positions).") from None
