# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Placement and stamps of synthetic sources: every source is rendered in a
small stamp, never over the whole image.
"""

import numpy as np

from ..exceptions import InputError

__all__ = []

_FWHM_TO_SIGMA = 1.0 / np.sqrt(8.0 * np.log(2.0))


def _place(rng, shape, radii, min_distance, margin, what):
    """
    Positions (x, y) such that no two sources are closer than
    ``radius_i + radius_j + min_distance`` and each centre is at least
    ``radius + margin`` from the image edge. Larger sources are placed first.
    """
    ny, nx = shape
    n = len(radii)
    xy = np.full((n, 2), np.nan)
    if n == 0:
        return xy
    order = np.argsort(-radii, kind="stable")
    px = np.empty(n)
    py = np.empty(n)
    pr = np.empty(n)
    k = 0
    batch = 8
    for index in order:
        r = radii[index]
        edge = min(r + margin, (min(nx, ny) - 1) / 2.0)
        for _ in range(1000):
            cx = rng.uniform(edge, nx - 1 - edge, batch)
            cy = rng.uniform(edge, ny - 1 - edge, batch)
            if k == 0 or min_distance is None:
                choice = 0
            else:
                d2 = (cx[:, None] - px[None, :k]) ** 2 + (cy[:, None] - py[None, :k]) ** 2
                need = (r + pr[None, :k] + min_distance) ** 2
                ok = np.flatnonzero(np.all(d2 >= need, axis=1))
                if ok.size == 0:
                    continue
                choice = ok[0]
            break
        else:
            raise InputError(
                f"Cannot place {n} {what} sources {min_distance:.3g} pixels apart in a "
                f"{nx}x{ny} image: the field is too crowded. Ask for fewer sources, a "
                "larger shape, or min_separation=None to allow overlaps.")
        px[k], py[k], pr[k] = cx[choice], cy[choice], r
        xy[index] = cx[choice], cy[choice]
        k += 1
    return xy


def _grid(shape, x, y, half):
    """Clipped pixel grid of half-size ``half`` around (x, y), or None if outside."""
    ny, nx = shape
    x0, x1 = max(int(np.floor(x - half)), 0), min(int(np.ceil(x + half)), nx - 1)
    y0, y1 = max(int(np.floor(y - half)), 0), min(int(np.ceil(y + half)), ny - 1)
    if x1 < x0 or y1 < y0:
        return None
    yy, xx = np.mgrid[y0:y1 + 1, x0:x1 + 1]
    return (slice(y0, y1 + 1), slice(x0, x1 + 1)), xx.astype(float), yy.astype(float)


def _log_uniform(rng, lo, hi, n):
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n))
