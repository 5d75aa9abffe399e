# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The named bands of multi-band cutouts: checked names and units, band lookup."""

import numpy as np
import astropy.units as u

from ..exceptions import InputError

__all__ = []


def _check_bands(data, bands, band_units):
    """Validated (bands, band_units) lists for ``data``, or (None, None)."""
    if bands is None:
        if band_units is not None:
            raise InputError("band_units needs bands (the band names).")
        return None, None
    if isinstance(bands, str):
        bands = [bands]
    bands = [str(b) for b in bands]
    if data.ndim != 4 or data.shape[1] != len(bands):
        raise InputError(f"{len(bands)} band names ({', '.join(bands)}) need cutouts of shape "
                         f"(N, {len(bands)}, H, W); the data have shape {data.shape}.")
    if len(set(bands)) != len(bands):
        raise InputError(f"The band names must differ; got {', '.join(bands)}.")
    if band_units is None:
        band_units = [None] * len(bands)
    band_units = [None if bu is None else u.Unit(bu, parse_strict="silent")
                  for bu in band_units]
    if len(band_units) != len(bands):
        raise InputError(f"{len(bands)} bands need {len(bands)} band_units; got "
                         f"{len(band_units)}.")
    return bands, band_units


def _band_index(bands, key):
    if isinstance(key, str):
        if key not in bands:
            raise InputError(f"There is no band {key!r}; the bands are: {', '.join(bands)}.")
        return bands.index(key)
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool) \
            and -len(bands) <= key < len(bands):
        return int(key) % len(bands)
    raise InputError(f"There is no band {key!r}; the bands are {', '.join(bands)} "
                     f"(or 0 to {len(bands) - 1}).")
