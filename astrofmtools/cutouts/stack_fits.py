# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The `CutoutStack` file: one multi-extension FITS file with the cutout cube,
the table (HDU ``CUTOUTS``) and the parent images' headers (HDU
``PARENTS``).
"""

import io
import json
import warnings
from pathlib import Path

import numpy as np
import astropy.units as u
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.io.misc import yaml
from astropy.table import QTable, Table

from ..exceptions import InputError, MissingFileError
from ..utils import atomic_output
from .columns import CUTOUT_COLUMNS
from .parents import CutoutParent

__all__ = []

_FILE_TYPE = "CUTOUTSTACK"


def _write_stack(stack, path, overwrite=False):
    """Write ``stack`` to one FITS file (`CutoutStack.write`)."""
    table = stack.table.copy(copy_data=False)
    # keep only the parents used, renumbered
    p = np.asarray(table["cutout_parent"], dtype=np.int64)
    valid = (p >= 0) & (p < len(stack.parents))
    used = np.unique(p[valid]) if len(stack) else np.arange(len(stack.parents))
    remap = np.full(len(stack.parents) + 1, -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    table["cutout_parent"] = np.where(valid, remap[np.where(valid, p, -1)], -1)
    table["cutout_parent"].info.description = CUTOUT_COLUMNS["cutout_parent"][2]
    parents = [stack.parents[k] for k in used]

    primary = fits.PrimaryHDU(stack.data if len(stack) else None)
    hdr = primary.header
    hdr["ASTFMTYP"] = (_FILE_TYPE, "astrofmtools CutoutStack file")
    hdr["NCUTOUT"] = (len(stack), "number of cutouts (last FITS axis)")
    hdr["CUTSHAPE"] = (",".join(str(n) for n in stack.data.shape[1:]),
                       "shape of one cutout, numpy order")
    if stack.unit is not None:
        hdr["BUNIT"] = stack.unit.to_string("fits")
    if stack.bands is not None:
        hdr["NBANDS"] = (len(stack.bands), "named bands along FITS axis 3")
        for k, (name, unit) in enumerate(zip(stack.bands, stack.band_units), start=1):
            hdr[f"BAND{k}"] = (str(name), f"name of band {k} (FITS axis 3)")
            hdr[f"BANDU{k}"] = (_unit_string(unit), f"unit of band {k}")
    hdr.add_comment("Cutouts: FITS axes 1, 2 = cutout x, y; the last axis = row of "
                    "the CUTOUTS table. Per-cutout WCS: parent WCS (PARENTS HDU) "
                    "shifted by cutout_x0/cutout_y0 and scaled by cutout_scale.")
    with atomic_output(path, overwrite=overwrite) as tmp:
        hdul = fits.HDUList([primary, _table_hdu(table, "CUTOUTS"),
                             _parents_hdu(parents)])
        hdul.writeto(tmp)


def _read_stack(cls, path):
    """Read a `CutoutStack` file as an instance of ``cls`` (`CutoutStack.read`)."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"File not found: {str(path)!r}.")
    try:
        hdul = fits.open(path, memmap=True)
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise InputError(f"{str(path)!r} is not a readable FITS file ({exc}).") from None
    with hdul:
        names = [h.name for h in hdul]
        if (hdul[0].header.get("ASTFMTYP") != _FILE_TYPE or "CUTOUTS" not in names
                or "PARENTS" not in names):
            raise InputError(f"{str(path)!r} is not a CutoutStack file (it needs a "
                             f"primary cube with ASTFMTYP = '{_FILE_TYPE}' and CUTOUTS "
                             f"and PARENTS tables; its HDUs: {', '.join(names)}).")
        hdr = hdul[0].header
        shape = tuple(int(n) for n in str(hdr["CUTSHAPE"]).split(","))
        if hdul[0].data is None:
            data = np.empty((0,) + shape, dtype=np.float32)
        else:
            data = np.array(hdul[0].data, dtype=np.float32)
        unit = u.Unit(hdr["BUNIT"], parse_strict="silent") if "BUNIT" in hdr else None
        bands = band_units = None
        if "NBANDS" in hdr:
            nb = int(hdr["NBANDS"])
            bands = [str(hdr.get(f"BAND{k}", f"band{k - 1}")) for k in range(1, nb + 1)]
            band_units = [u.Unit(hdr[f"BANDU{k}"], parse_strict="silent")
                          if str(hdr.get(f"BANDU{k}", "")).strip() else None
                          for k in range(1, nb + 1)]
        table = _read_table_hdu(hdul["CUTOUTS"])
        ptab = hdul["PARENTS"].data
        parents = [CutoutParent.from_header_string(str(s), str(h))
                   for s, h in zip(ptab["source"], ptab["header"])] if ptab is not None \
            else []
    return cls(data, table, parents, unit, bands, band_units)


def _unit_string(unit):
    if unit is None:
        return ""
    try:
        return unit.to_string("fits")
    except (ValueError, u.UnitsError):
        return unit.to_string()


def _dump_meta(meta):
    try:
        text = yaml.dump(dict(meta))
    except Exception:  # noqa: BLE001 - values yaml cannot represent are kept as text
        text = yaml.dump({str(k): _plain(v) for k, v in meta.items()})
    return json.dumps(text)  # one ASCII line: a FITS long-string card


def _plain(value):
    try:
        yaml.dump(value)
        return value
    except Exception:  # noqa: BLE001
        return repr(value)


def _table_hdu(table, name):
    meta = table.meta
    out = table.copy(copy_data=False)
    out.meta = {}
    buffer = io.BytesIO()
    out.write(buffer, format="fits")
    buffer.seek(0)
    with fits.open(buffer) as hdul:
        hdu = fits.BinTableHDU(data=hdul[1].data.copy(), header=hdul[1].header.copy(),
                               name=name)
    hdu.header["ASTFMETA"] = (_dump_meta(meta), "table meta (YAML in a JSON string)")
    return hdu


def _read_table_hdu(hdu):
    table = QTable.read(hdu, character_as_bytes=False)
    text = hdu.header.get("ASTFMETA")
    table.meta = yaml.load(json.loads(text)) if text else {}
    return table


def _parents_hdu(parents):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)
        headers = [p.header.tostring(sep="", endcard=False, padding=False) for p in parents]
    sources = [p.source for p in parents]
    width_s = max([len(s) for s in sources] + [1])
    width_h = max([len(h) for h in headers] + [1])
    t = Table({"source": np.array(sources, dtype=f"U{width_s}"),
               "header": np.array(headers, dtype=f"U{width_h}")})
    hdu = fits.table_to_hdu(t)
    hdu.name = "PARENTS"
    return hdu
