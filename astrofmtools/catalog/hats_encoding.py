# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
A QTable as Parquet columns and a JSON spec, and back: what HATS catalogues
(`astrofmtools.catalog.hats`) store beside the values Parquet can type
(units, descriptions, formats, meta, SkyCoord frames, row order).
"""

import copy
import json
import re
from pathlib import Path

import numpy as np
import astropy.units as u
from astropy.coordinates import SkyCoord
from astropy.table import Column, MaskedColumn, QTable, Table
from astropy.table.column import BaseColumn
from astropy.utils.masked import Masked

from ..exceptions import InputError
from ..schema import parse_positions

__all__ = []

#: The file, in the catalogue folder, holding what Parquet cannot type.
SIDECAR = "astrofmtools_table.json"
_FORMAT = "astrofmtools-hats"
_ROW = "_astrofm_row"  # the table's row order (0-based), a hidden column
_POS = ("_astrofm_ra", "_astrofm_dec")  # ICRS degrees, when the table's own columns are not
_RIGHT = "__astrofm_right"  # suffix of the reference's columns inside lsdb's join


def _catalog_name(path):
    name = Path(path).name
    if name.lower().endswith(".hats"):
        name = name[:-5]
    name = re.sub(r"\W+", "_", name).strip("_") or "catalogue"
    return name if not name[0].isdigit() else "c_" + name


def _encode(table, sky, frame, name):
    """A pyarrow Table of the table's values, and the spec of its columns."""
    import pyarrow as pa

    from .tables import _portable_meta

    if not isinstance(table, Table):
        raise InputError(f"A HATS catalogue is written from an astropy Table; got "
                         f"{type(table).__name__}.")
    table = QTable(table, copy=False)
    pos = parse_positions(table, sky, frame, kind="sky", name=name, argument="sky")
    if not pos.valid.all():
        bad = np.flatnonzero(~pos.valid)
        raise InputError(f"{name} has {bad.size} row(s) without a sky position (NaN or masked; "
                         f"0-based rows {bad[:5].tolist()}{'...' if bad.size > 5 else ''}): a "
                         "HATS catalogue places every row by its position; leave them out.")
    reserved = {_ROW, *_POS}
    clash = reserved & set(table.colnames)
    if clash:
        raise InputError(f"{name} has the column(s) {sorted(clash)}, which HATS catalogues of "
                         "astrofmtools keep for themselves; rename them.")
    taken = set(table.colnames) | reserved
    arrays, columns = {}, []
    for colname in table.colnames:
        col = table[colname]
        if isinstance(col, SkyCoord):
            pair = ("ra", "dec") if colname == "sky_centroid" else (f"{colname}_ra",
                                                                    f"{colname}_dec")
            if pair[0] in taken or pair[1] in taken:
                pair = (f"{colname}_ra", f"{colname}_dec")
            if pair[0] in taken or pair[1] in taken:
                raise InputError(f"Cannot store the SkyCoord column {colname!r} of {name} as "
                                 f"{pair}: the table has those names.")
            taken.update(pair)
            try:
                icrs = col.icrs
            except Exception as exc:  # noqa: BLE001 - frames that need more attributes
                raise InputError(f"Cannot convert the SkyCoord column {colname!r} of {name} to "
                                 f"ICRS: {exc}") from None
            arrays[pair[0]] = pa.array(np.asarray(icrs.ra.deg, dtype=float))
            arrays[pair[1]] = pa.array(np.asarray(icrs.dec.deg, dtype=float))
            columns.append({"name": colname, "kind": "skycoord", "stored": list(pair),
                            "frame": col.frame.name, **_info(col)})
        elif isinstance(col, (BaseColumn, u.Quantity)):
            arrays[colname], spec = _to_arrow(col, colname, name)
            columns.append(spec)
        else:
            raise InputError(f"A HATS catalogue cannot hold the column {colname!r} of {name} "
                             f"({type(col).__name__}); write ECSV or FITS, or leave it out.")
    if len(pos.columns) == 1:
        position = next(c["stored"] for c in columns if c["name"] == pos.columns[0])
    else:
        position = list(pos.columns)
        ra, dec = (arrays[c] for c in position)
        if not (pos.frame == "icrs" and _same(ra, pos.sky.ra.deg)
                and _same(dec, pos.sky.dec.deg)):
            arrays[_POS[0]] = pa.array(np.asarray(pos.sky.ra.deg, dtype=float))
            arrays[_POS[1]] = pa.array(np.asarray(pos.sky.dec.deg, dtype=float))
            position = list(_POS)
    arrays[_ROW] = pa.array(np.arange(len(table), dtype=np.int64))
    used = pos.columns[0] if len(pos.columns) == 1 else list(pos.columns)
    spec = {"format": _FORMAT, "version": 1, "columns": columns, "row": _ROW,
            "position": position, "sort": [_ROW], "sky": [used, pos.frame],
            "meta": _portable_meta(dict(table.meta))}
    return pa.table(arrays), spec


def _same(array, values):
    import pyarrow as pa

    return (pa.types.is_float64(array.type) and array.null_count == 0
            and np.array_equal(array.to_numpy(), values))


def _info(col):
    from .tables import _portable_meta

    out = {}
    if col.info.description:
        out["description"] = str(col.info.description)
    if isinstance(col.info.format, str):
        out["format"] = col.info.format
    if col.info.meta:
        out["meta"] = _portable_meta(dict(col.info.meta))
    return out


def _to_arrow(col, colname, name):
    """A column as a pyarrow array (masked values null) and its spec."""
    import pyarrow as pa

    masked = isinstance(col, (MaskedColumn, Masked))
    if isinstance(col, u.Quantity):
        unit = col.unit
        values = np.asarray(col.unmasked.value if masked else col.value)
    else:
        unit = col.unit
        values = np.asarray(col.data.data if masked else col.data)
    mask = np.asarray(col.mask) if masked else None
    if values.dtype.kind not in "biufUS":
        raise InputError(f"A HATS catalogue cannot hold the column {colname!r} of {name} "
                         f"(dtype {values.dtype}); write ECSV or FITS, or leave it out.")
    shape = values.shape[1:]
    if shape:
        size = int(np.prod(shape))
        child = pa.array(values.reshape(-1), mask=None if mask is None else mask.reshape(-1))
        array = pa.FixedSizeListArray.from_arrays(child, size)
    else:
        array = pa.array(values, mask=mask)
    spec = {"name": colname, "kind": "column", "stored": colname, "dtype": values.dtype.str,
            "shape": list(shape), "masked": masked,
            "unit": None if unit is None else u.Unit(unit).to_string(), **_info(col)}
    return array, spec


def _write_sidecar(folder, spec):
    with open(Path(folder) / SIDECAR, "w", encoding="utf-8") as f:
        json.dump(spec, f, indent=1, default=str)


def _spec_of(catalog, path):
    """The spec written beside a catalogue, or one made from its columns."""
    places = []
    if path is not None:
        places += [Path(path), Path(path).parent]
    catalog_path = getattr(catalog.hc_structure, "catalog_path", None)
    if catalog_path is not None:
        try:
            places += [Path(str(catalog_path)), Path(str(catalog_path)).parent]
        except TypeError:  # a remote path
            pass
    for place in places:
        file = place / SIDECAR
        if file.is_file():
            spec = json.loads(file.read_text(encoding="utf-8"))
            if spec.get("format") == _FORMAT:
                return _add_sky_centroid(_prune(spec, list(catalog.columns)))
    return _foreign_spec(catalog)


def _add_sky_centroid(spec):
    """A ``sky_centroid`` from ``ra``/``dec`` (degrees), as read_table adds one, if none."""
    columns = {c["name"]: c for c in spec["columns"]}
    if "sky_centroid" in columns or "ra" not in columns or "dec" not in columns:
        return spec
    pair = [columns["ra"], columns["dec"]]
    if any(c["kind"] != "column" or c.get("shape") or c.get("unit") not in (None, "deg")
           or np.dtype(c.get("dtype", "f8")).kind not in "fi" for c in pair):
        return spec
    spec = dict(spec, columns=list(spec["columns"]))
    spec["columns"].insert(spec["columns"].index(columns["ra"]), {
        "name": "sky_centroid", "kind": "skycoord", "stored": [c["stored"] for c in pair],
        "frame": "icrs", "description": "sky position (ICRS), from ra and dec"})
    return spec


def _foreign_spec(catalog):
    """The spec of a catalogue written by other tools: its columns, and ``sky_centroid``."""
    info = catalog.hc_structure.catalog_info
    ra, dec = info.ra_column, info.dec_column
    names = list(catalog.columns)
    columns = []
    for name in names:
        if name == ra and dec in names and "sky_centroid" not in names:
            columns.append({"name": "sky_centroid", "kind": "skycoord", "stored": [ra, dec],
                            "frame": "icrs",
                            "description": f"sky position (ICRS), from {ra} and {dec}"})
        columns.append({"name": name, "kind": "column", "stored": name,
                        "unit": "deg" if name in (ra, dec) else None})
    return {"format": _FORMAT, "version": 1, "columns": columns, "row": None,
            "position": [ra, dec], "sort": [], "sky": [[ra, dec], "icrs"], "meta": {}}


def _prune(spec, present):
    """The spec of the columns a catalogue has (a selection may have dropped some)."""
    present = set(present)
    spec = dict(spec)
    spec["columns"] = [c for c in spec["columns"]
                       if set(_as_list(c["stored"])) <= present]
    if spec.get("row") not in present:
        spec["row"] = None
    spec["sort"] = [c for c in spec.get("sort", []) if c in present]
    return spec


def _select(spec, columns, name):
    names = [columns] if isinstance(columns, str) else list(columns)
    known = {c["name"]: c for c in spec["columns"]}
    missing = [n for n in names if n not in known]
    if missing:
        raise InputError(f"{name} has no column(s) {missing}; its columns are: "
                         f"{', '.join(known)}.")
    spec = dict(spec)
    spec["columns"] = [known[n] for n in names]
    return spec


def _stored(spec):
    """The Parquet columns to read for a spec: its columns, positions, row numbers."""
    names = [s for c in spec["columns"] for s in _as_list(c["stored"])]
    names += list(spec.get("position", [])) + list(spec.get("sort", []))
    if spec.get("row"):
        names.append(spec["row"])
    return _unique(names)


def _as_list(stored):
    return list(stored) if isinstance(stored, (list, tuple)) else [stored]


def _joined_spec(lspec, rspec, names, extra, ref_name, sep_arcsec, mode):
    """
    The spec of the cross-match's output, the columns of lsdb's join to keep
    and their new names.
    """
    left_stored = set(_stored(lspec)) | {s for c in lspec["columns"] for s in _as_list(c["stored"])}
    used = set(left_stored)
    keep = list(left_stored)
    rename = {}

    def fresh(name):
        while name in used:
            name += "_"
        used.add(name)
        return name

    chosen = [c for c in rspec["columns"] if c["name"] in names]
    stored_new = {}
    for c in chosen:  # plain columns first: they keep their new names
        if c["kind"] == "column":
            stored_new[c["stored"]] = fresh(names[c["name"]])
    columns = list(lspec["columns"])
    for c in chosen:
        new = dict(c, name=names[c["name"]])
        if c["kind"] == "skycoord":
            for stored, end in zip(c["stored"], ("_ra", "_dec")):
                if stored not in stored_new:
                    stored_new[stored] = fresh(new["name"] + end)
            new["stored"] = [stored_new[s] for s in c["stored"]]
        else:
            new["stored"] = stored_new[c["stored"]]
        columns.append(new)
    for stored, new in stored_new.items():
        keep.append(stored + _RIGHT)
        rename[stored + _RIGHT] = new
    sep_text = f"{sep_arcsec:g} arcsec"
    index_base = [b for b in extra if b not in ("separation", "n_matches")][0]
    index_text = ("0-based row index of the matched source in" if index_base == "ref_index"
                  else "_healpix_29 (HATS spatial index) of the matched source in")
    for source, base, unit, dtype, text in (
            ("_astrofm_sep", "separation", "arcsec", "<f8",
             f"angular separation from the matched source of {ref_name}"),
            ("_astrofm_n", "n_matches", None, "<i8",
             f"number of sources of {ref_name} within {sep_text} of this row"),
            ("_astrofm_ref", index_base, None, "<i8", f"{index_text} {ref_name}")):
        stored = fresh(extra[base])
        keep.append(source)
        rename[source] = stored
        spec = {"name": extra[base], "kind": "column", "stored": stored, "dtype": dtype,
                "shape": [], "masked": False, "unit": unit, "description": text}
        if base == "n_matches":
            spec["fill"] = 0
        columns.append(spec)
    sort = [lspec["row"]] if lspec.get("row") else []
    if sort and mode == "all":
        sort += [rename["_astrofm_sep"], rename["_astrofm_ref"]]
    out = {"format": _FORMAT, "version": 1, "columns": columns, "row": lspec.get("row"),
           "position": lspec["position"], "sort": sort, "sky": lspec["sky"]}
    return out, set(keep), rename


def _decode(frame, spec):
    """The QTable of a computed lsdb frame, as the spec describes it."""
    n = len(frame)
    arrays = {}

    def get(name):
        if name not in arrays:
            arrays[name] = _arrow(frame[name])
        return arrays[name]

    order = None
    if spec.get("sort") and n:
        order = np.lexsort([_sort_key(get(c)) for c in reversed(spec["sort"])])
        if np.all(order[1:] > order[:-1]):
            order = None
    out = QTable()
    for c in spec["columns"]:
        if c["kind"] == "skycoord":
            ra, dec = (_float(get(s), order) for s in c["stored"])
            col = SkyCoord(ra, dec, unit="deg", frame="icrs")
            if c.get("frame", "icrs") != "icrs":
                try:
                    col = col.transform_to(c["frame"])
                except Exception:  # noqa: BLE001 - a frame astropy cannot make by name: ICRS
                    pass
        else:
            col = _column(get(c["stored"]), c, order)
        out[c["name"]] = col
        if c.get("description"):
            out[c["name"]].info.description = c["description"]
        if c.get("format"):
            out[c["name"]].info.format = c["format"]
        if c.get("meta"):
            out[c["name"]].info.meta = copy.deepcopy(c["meta"])
    out.meta = copy.deepcopy(spec.get("meta", {}))
    return out


def _arrow(series):
    import pyarrow as pa

    array = pa.array(series, from_pandas=False)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _sort_key(array):
    import pyarrow as pa

    if pa.types.is_floating(array.type):
        return array.fill_null(np.inf).to_numpy(zero_copy_only=False)
    if pa.types.is_integer(array.type):
        return array.fill_null(np.iinfo(np.int64).max).to_numpy(zero_copy_only=False)
    return np.zeros(len(array))


def _take(array, order):
    import pyarrow as pa

    return array if order is None else array.take(pa.array(order))


def _float(array, order):
    array = _take(array, order)
    return np.asarray(array.fill_null(np.nan).to_numpy(zero_copy_only=False), dtype=float)


def _numpy(array, dtype):
    """Values of an array, nulls filled, as numpy (of ``dtype`` when given)."""
    import pyarrow as pa

    if array.null_count:
        t = array.type
        fill = (np.nan if pa.types.is_floating(t) else 0 if pa.types.is_integer(t) else
                False if pa.types.is_boolean(t) else "" if pa.types.is_string(t)
                or pa.types.is_large_string(t) else None)
        if fill is not None:
            array = array.fill_null(fill)
    values = array.to_numpy(zero_copy_only=False)
    if dtype is not None:
        values = values.astype(np.dtype(dtype), copy=False)
    elif values.dtype == object and len(values) and all(isinstance(v, str) for v in values):
        values = values.astype(str)
    return values


def _column(array, spec, order):
    """A column (Quantity, Column; masked where null) from an array and its spec."""
    import pyarrow as pa

    array = _take(array, order)
    dtype = spec.get("dtype")
    null = np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_fixed_size_list(array.type):
        size = array.type.list_size
        child = array.values.slice(array.offset * size, len(array) * size)
        shape = (len(array),) + tuple(spec.get("shape") or (size,))
        values = _numpy(child, dtype).reshape(shape)
        mask = (np.asarray(child.is_null().to_numpy(zero_copy_only=False), dtype=bool)
                | np.repeat(null, size)).reshape(shape)
    else:
        values, mask = _numpy(array, dtype), null
    if "fill" in spec and mask.any():
        values = values.copy()
        values[mask] = spec["fill"]
        mask = np.zeros_like(mask)
    masked = bool(spec.get("masked")) or bool(mask.any())
    unit = spec.get("unit")
    if unit is not None and values.dtype.kind in "biuf":
        col = u.Quantity(values, u.Unit(unit, parse_strict="silent"), dtype=values.dtype,
                         copy=False)
        return Masked(col, mask=mask) if masked else col
    col = MaskedColumn(values, mask=mask) if masked else Column(values)
    if unit is not None:
        col.unit = u.Unit(unit, parse_strict="silent")
    return col


def _unique(names):
    return list(dict.fromkeys(names))
