# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The WCS of each cutout, built on demand from its parent image's WCS."""

from collections.abc import Sequence

import numpy as np
from astropy.wcs import Sip

from ..exceptions import InputError

__all__ = []


class _WCSList(Sequence):
    """The WCS of each cutout of a stack, built when asked for."""

    def __init__(self, stack):
        self._stack = stack

    def __len__(self):
        return len(self._stack)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._stack.wcs_of(i) for i in range(*index.indices(len(self)))]
        return self._stack.wcs_of(index)

    def __repr__(self):
        return f"<{len(self)} cutout WCS, built on demand>"


def _cutout_wcs(parent, x0, y0, scale, shape):
    """The WCS of a crop starting at parent pixel (x0, y0), resampled by ``scale``."""
    new = parent.deepcopy()
    crpix = np.array(parent.wcs.crpix, dtype=float)
    offset = np.array([x0, y0], dtype=float)
    if scale == 1:
        new.wcs.crpix = crpix - offset
    else:
        new.wcs.crpix = (crpix - offset - 0.5) / scale + 0.5
        if parent.wcs.has_cd():
            new.wcs.cd = np.array(parent.wcs.cd) * scale
        else:
            new.wcs.cdelt = np.array(parent.wcs.cdelt) * scale
    if parent.sip is not None:
        def rescale(coeffs):
            if coeffs is None or scale == 1:
                return coeffs
            p, q = np.indices(coeffs.shape)
            return coeffs * scale ** (p + q - 1.0)
        sip = parent.sip
        new.sip = Sip(rescale(sip.a), rescale(sip.b), rescale(sip.ap), rescale(sip.bp),
                      new.wcs.crpix)
    tables = [t for t in (new.cpdis1, new.cpdis2, new.det2im1, new.det2im2) if t is not None]
    if tables:
        if scale != 1:
            raise InputError("The parent image has lookup-table distortions (CPDIS/D2IMDIS), "
                             "which resized cutouts do not support; use a fixed size.")
        for t in tables:
            t.crval[0] -= x0
            t.crval[1] -= y0
    new.pixel_shape = (int(shape[1]), int(shape[0]))
    return new
