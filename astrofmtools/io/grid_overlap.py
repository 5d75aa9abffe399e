# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Where two celestial pixel grids overlap: the output box an input image reaches."""

import numpy as np
from astropy.wcs.utils import pixel_to_pixel

__all__ = []


def _edge_samples(shape, n_samples):
    """Pixel positions ``(x, y)`` along the outer edges of an array of ``shape``."""
    ny, nx = shape
    xs = np.linspace(-0.5, nx - 0.5, n_samples)
    ys = np.linspace(-0.5, ny - 0.5, n_samples)
    x = np.concatenate([xs, xs, np.full(n_samples, -0.5), np.full(n_samples, nx - 0.5)])
    y = np.concatenate([np.full(n_samples, -0.5), np.full(n_samples, ny - 0.5), ys, ys])
    return x, y


def _to_pixels(wcs_a, wcs_b, x, y):
    """
    Pixels of grid ``a`` on grid ``b``, and whether each transform is valid:
    finite, and back on grid ``a`` within a pixel (points on the far side of
    the sky have no place in most projections).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        bx, by = (np.asarray(v, float) for v in pixel_to_pixel(wcs_a, wcs_b, x, y))
        ax, ay = (np.asarray(v, float) for v in pixel_to_pixel(wcs_b, wcs_a, bx, by))
        ok = np.isfinite(bx) & np.isfinite(by) & (np.hypot(ax - x, ay - y) < 1)
    return bx, by, ok


def _inside(x, y, shape):
    return (x > -0.5) & (x < shape[1] - 0.5) & (y > -0.5) & (y < shape[0] - 0.5)


def _overlap_box(wcs_in, shape_in, wcs_out, shape_out, n_samples=33, pad=2):
    """
    The output-pixel box ``(slice_y, slice_x)`` that the input image can
    reach, from its edges transformed into the output grid (as
    `reproject.mosaicking.reproject_and_coadd` does per tile), or None when
    the two do not overlap. When some edges have no valid coordinates on the
    output grid (an all-sky input, or one on the far side of the sky), the
    whole output is returned if any sample of either grid falls on the
    other, and None otherwise.
    """
    ny_out, nx_out = shape_out
    full = (slice(0, ny_out), slice(0, nx_out))
    ex, ey = _edge_samples(shape_in, n_samples)
    ox, oy, ok = _to_pixels(wcs_in, wcs_out, ex, ey)
    if ok.all():
        x0 = max(0, int(np.floor(ox.min() + 0.5)) - pad)
        x1 = min(nx_out, int(np.ceil(ox.max() + 0.5)) + pad)
        y0 = max(0, int(np.floor(oy.min() + 0.5)) - pad)
        y1 = min(ny_out, int(np.ceil(oy.max() + 0.5)) + pad)
        if x1 <= x0 or y1 <= y0:
            return None
        return slice(y0, y1), slice(x0, x1)
    if (ok & _inside(ox, oy, shape_out)).any():
        return full
    gy, gx = (g.ravel() for g in np.meshgrid(np.linspace(-0.5, ny_out - 0.5, n_samples),
                                             np.linspace(-0.5, nx_out - 0.5, n_samples),
                                             indexing="ij"))
    ix, iy, ok = _to_pixels(wcs_out, wcs_in, gx, gy)
    return full if (ok & _inside(ix, iy, shape_in)).any() else None
