# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Checks of the arguments of public functions, with messages that name them."""

import numpy as np
import astropy.units as u

from ..exceptions import InputError

__all__ = ["check_number"]


def check_number(value, name, accepts, ok=np.isfinite, integer=False, none=False):
    """
    A numeric argument as a number, or an `~astrofmtools.InputError` naming it.

    Strings, bools, Quantities with a unit, arrays, complex numbers, NaN
    (unless ``ok`` allows it) and values ``ok`` refuses are refused, with a
    message naming the argument and what it ``accepts``.

    Parameters
    ----------
    value : object
        What the caller gave.
    name : str
        The argument's name, for the message.
    accepts : str
        What it accepts, for the message ("a positive number").
    ok : callable, optional
        ``ok(number) -> bool``; finite numbers by default.
    integer : bool, optional
        Require a whole number and return an int.
    none : bool, optional
        Let None through.

    Returns
    -------
    number : float, int or None

    Raises
    ------
    astrofmtools.InputError

    Examples
    --------
    >>> from astrofmtools.utils.checks import check_number
    >>> check_number("5", "snr", "a positive number", lambda v: v > 0)
    Traceback (most recent call last):
    ...
    astrofmtools.exceptions.InputError: snr must be a positive number, not '5' (str).
    >>> check_number(5, "snr", "a positive number", lambda v: v > 0)
    5.0
    """
    if value is None and none:
        return None
    number = None
    if isinstance(value, u.Quantity) and value.unit == u.dimensionless_unscaled:
        value = value.value
    if not isinstance(value, (bool, np.bool_, str, bytes, u.Quantity)) and np.ndim(value) == 0:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
        if number is not None and np.iscomplexobj(value):
            number = None
    if number is None or not ok(number) or (integer and not (np.isfinite(number)
                                                             and number.is_integer())):
        raise InputError(f"{name} must be {accepts}, not {value!r}"
                         f"{f' ({type(value).__name__})' if isinstance(value, str) else ''}.")
    return int(number) if integer else number
