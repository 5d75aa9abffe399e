# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
One-to-one matching of detections to true sources by position (pixels or sky),
nearest first.
"""

import numpy as np
import astropy.units as u

from ..exceptions import InputError
from ..schema import parse_positions

__all__ = ["match_positions"]


def match_positions(predictions, truth, max_sep):
    """
    Match detections to true sources one to one by position, nearest first.

    Every pair closer than ``max_sep`` is a candidate; pairs are taken in
    order of increasing separation and a pair is kept when neither its
    detection nor its true source is already matched (ties: by truth row,
    then detection row). Candidate pairs come from a k-d tree
    (`scipy.spatial.cKDTree` for pixels,
    `~astropy.coordinates.search_around_sky` on the sky).

    Parameters
    ----------
    predictions, truth : `~astropy.table.Table`
        With ``x``, ``y`` (0-based pixel) for a separation in pixels, or
        ``sky_centroid`` (or ``ra``, ``dec`` in degrees) for an angle.
    max_sep : float or `~astropy.units.Quantity`
        Largest separation of a match (inclusive): pixels (a number or
        ``u.pix``) or an angle.

    Returns
    -------
    pred_index, truth_index : `~numpy.ndarray` of int
        Rows of the matched pairs, sorted by truth row.
    sep : `~numpy.ndarray` or `~astropy.units.Quantity`
        Their separations (pixels, or arcsec for an angle).

    Examples
    --------
    >>> from astropy.table import QTable
    >>> from astrofmtools.evaluate import match_positions
    >>> truth = QTable({"x": [10.0, 50.0], "y": [10.0, 50.0]})
    >>> found = QTable({"x": [10.5, 11.0, 80.0], "y": [10.0, 10.0, 80.0]})
    >>> match_positions(found, truth, max_sep=2)
    (array([0]), array([0]), array([0.5]))
    """
    sep_pix, angle = _parse_sep(max_sep)
    if angle is None:
        p = _pixel_xy(predictions, "predictions")
        t = _pixel_xy(truth, "truth")
        if len(p) == 0 or len(t) == 0:
            return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
        from scipy.spatial import cKDTree
        pairs = cKDTree(t).sparse_distance_matrix(cKDTree(p), sep_pix, output_type="ndarray")
        ti, pi, d = pairs["i"].astype(int), pairs["j"].astype(int), pairs["v"]
        ok = np.isfinite(d)
    else:
        from astropy.coordinates import search_around_sky
        p, p_valid = _sky(predictions, "predictions")
        t, t_valid = _sky(truth, "truth")
        if not p_valid.any() or not t_valid.any():
            return np.zeros(0, int), np.zeros(0, int), np.zeros(0) * u.arcsec
        p_rows, t_rows = np.flatnonzero(p_valid), np.flatnonzero(t_valid)
        ti, pi, d2d, _ = search_around_sky(t[t_valid], p[p_valid], angle)
        ti, pi = t_rows[ti], p_rows[pi]
        d = d2d.to_value(u.arcsec)
        ok = np.isfinite(d)
    ti, pi, d = ti[ok], pi[ok], d[ok]
    from ..catalog.matching import _one_to_one  # the greedy of crossmatch(mode="best")
    keep = _one_to_one(ti.astype(np.int64), pi.astype(np.int64), d)
    keep = keep[np.lexsort((pi[keep], ti[keep]))] if keep.size else keep
    sep = d[keep]
    return pi[keep], ti[keep], (sep * u.arcsec if angle is not None else sep)


def _parse_sep(max_sep):
    """(pixels, None) or (None, angle)."""
    if isinstance(max_sep, u.Quantity):
        if max_sep.unit == u.pix:
            value, angle = float(max_sep.value), None
        elif max_sep.unit.physical_type == "angle":
            value, angle = float(max_sep.to_value(u.arcsec)), max_sep.to(u.arcsec)
        else:
            raise InputError(f"max_sep must be in pixels or an angle, not {max_sep.unit}.")
    else:
        try:
            value, angle = float(max_sep), None
        except (TypeError, ValueError):
            raise InputError(f"max_sep must be a number of pixels or an angle, not "
                             f"{max_sep!r}.") from None
    if not np.isfinite(value) or value <= 0:
        raise InputError(f"max_sep must be positive and finite, not {max_sep!r}.")
    return (value if angle is None else None), angle


def _pixel_xy(table, what):
    pos = parse_positions(table, kind="pixel", name=f"The {what} table",
                          hint="(a separation in pixels needs them; give max_sep as an angle "
                               "to match on the sky)")
    xy = np.column_stack([pos.x, pos.y])
    xy[~pos.valid] = np.inf  # never matched
    return xy.reshape(-1, 2)


def _sky(table, what):
    pos = parse_positions(table, kind="sky", name=f"The {what} table",
                          hint="(max_sep is an angle: matching is on the sky)")
    return pos.sky, pos.valid
