# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Survey-scale catalogues as HATS (HEALPix-partitioned Parquet), through
`lsdb <https://docs.lsdb.io>`_ and `hats <https://hats.readthedocs.io>`_.

A HATS catalogue is a folder of Parquet files, one per HEALPix pixel, sized
so that each fits in memory, with a *margin cache* (the sources within a
few arcseconds outside each pixel) so that a cross-match never needs two
partitions at once. lsdb writes, reads and cross-matches them partition by
partition with Dask. What it does not do for us is done here:

- Parquet holds values, not astropy's column attributes: units, column
  descriptions, formats, column and table ``meta``, the frames of
  `~astropy.coordinates.SkyCoord` columns and the table's row order are
  written to a JSON file beside the catalogue (``astrofmtools_table.json``
  in the folder) and restored by `read_hats`. ``SkyCoord`` columns are
  stored as ICRS right ascension and declination in degrees, named as
  `~astrofmtools.catalog.write_table` names them for ECSV and VOTable
  (``sky_centroid`` -> ``ra``, ``dec``; another ``c`` -> ``c_ra``,
  ``c_dec``), so the Parquet files read well in TOPCAT and pandas too.
- lsdb's cross-match finds the ``n`` nearest neighbours of each row; the
  modes of `~astrofmtools.catalog.crossmatch` need every pair within the
  radius (to count them) and a one-to-one selection over the whole sky.
  `crossmatch_hats` finds the pairs partition by partition (an lsdb
  cross-match algorithm calling astropy's
  `~astropy.coordinates.search_around_sky`, as `crossmatch` does), selects
  them as `crossmatch` does, and joins the chosen pairs' columns in a second
  partition-by-partition pass, so that only the pairs (three numbers each)
  are ever in memory at once.
"""

import contextlib
import copy
import functools
import json
import re
import types
import warnings
from pathlib import Path

import numpy as np
import astropy.units as u
from astropy.coordinates import SkyCoord
from astropy.table import Column, MaskedColumn, QTable, Table
from astropy.table.column import BaseColumn
from astropy.utils.masked import Masked

from ..exceptions import InputError, MissingFileError
from ..schema import parse_positions
from ..utils import atomic_folder, check_output_path, provenance

__all__ = ["write_hats", "read_hats", "crossmatch_hats", "is_hats"]

__doctest_requires__ = {("write_hats", "read_hats", "crossmatch_hats"): ["lsdb"]}

#: The file, in the catalogue folder, holding what Parquet cannot type.
SIDECAR = "astrofmtools_table.json"
_FORMAT = "astrofmtools-hats"
_ROW = "_astrofm_row"  # the table's row order (0-based), a hidden column
_POS = ("_astrofm_ra", "_astrofm_dec")  # ICRS degrees, when the table's own columns are not
_RIGHT = "__astrofm_right"  # suffix of the reference's columns inside lsdb's join
_INSTALL = "pip install 'astrofmtools[scale]'"


# ----------------------------------------------------------------------------
# public functions

def is_hats(path):
    """
    Whether a path is a HATS catalogue (or collection) folder.

    Only the folder's layout is looked at (a ``collection.properties``
    file, or ``hats.properties``/``properties`` beside a ``dataset``
    folder); nothing is read and lsdb is not needed.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        A file or folder.

    Returns
    -------
    bool

    Examples
    --------
    >>> from astrofmtools.catalog import is_hats
    >>> is_hats("sources.ecsv"), is_hats(".")
    (False, False)
    """
    path = Path(path)
    if not path.is_dir():
        return False
    if (path / "collection.properties").is_file():
        return True
    return (((path / "hats.properties").is_file() or (path / "properties").is_file())
            and (path / "dataset").is_dir())


def write_hats(table, path, overwrite=False, *, sky=None, frame=None, catalog_name=None,
               margin_arcsec=10.0, partition_rows=None):
    """
    Write a table as a HATS catalogue folder (HEALPix-partitioned Parquet), atomically.

    The catalogue is built by `lsdb.from_dataframe` and written by lsdb as
    a collection: the catalogue, its margin cache and, in the folder,
    ``astrofmtools_table.json`` with the units, descriptions, formats,
    column and table metadata, ``SkyCoord`` frames and the row order, which
    `read_hats` restores. The folder is built beside ``path`` and renamed
    into place when complete.

    Parameters
    ----------
    table : `~astropy.table.Table` or `~astropy.table.QTable`
        The table, with sky positions (every row needs one: HATS places
        rows by position). It is not modified.
    path : str or `~pathlib.Path`
        The output folder (``.hats`` by convention).
    overwrite : bool, optional
        Replace an existing folder (only once the new one is complete).
    sky, frame : optional
        Where the positions are, as for `~astrofmtools.catalog.crossmatch`
        (by default ``sky_centroid``, another ``SkyCoord`` column, or
        ``ra``/``dec``, ``RAJ2000``/``DEJ2000``, ... found by name). The
        catalogue is partitioned on them, as ICRS degrees: ``SkyCoord``
        columns are stored as ICRS ``ra``/``dec`` (``c_ra``/``c_dec`` for
        a column ``c`` other than ``sky_centroid``, or when the table has
        ``ra`` and ``dec`` of its own), and positions in other columns or
        frames get hidden ``_astrofm_ra``/``_astrofm_dec`` columns.
    catalog_name : str, optional
        The catalogue's name in its properties (default: the folder name
        without ``.hats``).
    margin_arcsec : float or None, optional
        Width of the margin cache (default 10 arcsec; None: no margin).
        `crossmatch_hats` needs the reference's margin to be at least
        ``max_sep``. Narrow margins take lsdb longer to make (about 4 s
        for 2 arcsec, 0.5 s for 10 arcsec, whatever the size of the table).
    partition_rows : int, optional
        Rows per partition at most (partitions are HEALPix pixels of order
        7 or less). By default lsdb's: up to 1 GiB of data per partition,
        which makes a catalogue of a few million rows one partition; give
        ``100_000`` to a million, say, for catalogues to be matched
        partition by partition on a small machine.

    Raises
    ------
    astrofmtools.InputError
        For an existing folder without ``overwrite``, a table without
        sky positions or with rows without one, an empty table, a column
        Parquet cannot hold (the message names the path and the column),
        or lsdb missing.

    Examples
    --------
    >>> import os, tempfile
    >>> import astropy.units as u
    >>> from astropy.coordinates import SkyCoord
    >>> from astropy.table import QTable
    >>> from astrofmtools.catalog import read_hats, write_hats
    >>> table = QTable({"id": [1, 2], "flux": [1.5, 2.0] * u.mJy,
    ...                 "sky_centroid": SkyCoord([150.0, 150.01], [2.0, 2.01], unit="deg")})
    >>> table["flux"].info.description = "peak flux"
    >>> path = os.path.join(tempfile.mkdtemp(), "sources.hats")
    >>> write_hats(table, path)
    >>> back = read_hats(path)
    >>> back.colnames, back["flux"].unit, back["flux"].info.description
    (['id', 'flux', 'sky_centroid'], Unit("mJy"), 'peak flux')
    >>> sorted(os.listdir(path))
    ['astrofmtools_table.json', 'collection.properties', 'sources', 'sources_10arcs']
    """
    lsdb = _lsdb()
    path = Path(path)
    name = catalog_name or _catalog_name(path)
    with atomic_folder(path, overwrite=overwrite) as tmp:
        arrow, spec = _encode(table, sky, frame, f"the table for {str(path)!r}")
        if len(arrow) == 0:
            raise InputError(f"Cannot write an empty table as the HATS catalogue {str(path)!r}: "
                             "HATS partitions rows by their positions.")
        try:
            with _quiet():
                catalog = _from_arrow(lsdb, arrow, spec, name, margin_arcsec, partition_rows)
                catalog.write_catalog(tmp, catalog_name=name, overwrite=True, progress_bar=False,
                                      addl_hats_properties={"astrofmtools_table": SIDECAR})
        except (ValueError, TypeError, KeyError) as exc:
            raise InputError(f"Cannot write {str(path)!r} as a HATS catalogue: "
                             f"{type(exc).__name__}: {exc}") from exc
        _write_sidecar(tmp, spec)


def read_hats(path, columns=None, **kwargs):
    """
    Read a HATS catalogue folder into a `~astropy.table.QTable`.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The catalogue or collection folder.
    columns : list of str, optional
        The columns to read (names of the table, ``sky_centroid`` for
        instance; default: all, or the catalogue's default columns).
    **kwargs
        Passed to `lsdb.read_hats`: ``search_filter=lsdb.ConeSearch(...)``
        reads only the partitions of a region, for instance.

    Returns
    -------
    table : `~astropy.table.QTable`
        For a catalogue written by `write_hats`, the table as it was:
        its rows in their order, Quantity columns with their units,
        descriptions, formats and metadata, ``SkyCoord`` columns in their
        frames, masked values masked; and, as
        `~astrofmtools.catalog.read_table` does, a ``sky_centroid`` (ICRS)
        before ``ra`` and ``dec`` (degrees) when it has those but no
        ``sky_centroid``. For any other HATS catalogue, its
        columns in the order of the partitions (ra and dec in degrees) and
        a ``sky_centroid`` (ICRS) column before its right ascension, as
        `~astrofmtools.catalog.read_table` adds one to tables with ``ra``
        and ``dec``.

    Raises
    ------
    astrofmtools.MissingFileError
        For a path that does not exist.
    astrofmtools.InputError
        For a folder that is not a HATS catalogue, an unknown column, or
        content lsdb cannot read (the message names the path).

    Examples
    --------
    >>> import os, tempfile
    >>> from astropy.table import QTable
    >>> from astrofmtools.catalog import read_hats, write_hats
    >>> path = os.path.join(tempfile.mkdtemp(), "radec.hats")
    >>> write_hats(QTable({"ra": [150.0, 150.1], "dec": [2.0, 2.1], "id": [7, 8]}), path)
    >>> read_hats(path).colnames  # a sky_centroid is added, as read_table adds one
    ['sky_centroid', 'ra', 'dec', 'id']
    >>> t = read_hats(path, columns=["id", "sky_centroid"])
    >>> t["id"].tolist(), t["sky_centroid"][1].to_string("hmsdms", precision=0)
    ([7, 8], '10h00m24s +02d06m00s')
    """
    lsdb = _lsdb()
    path = _hats_path(path)
    with _reading(path):
        catalog = lsdb.read_hats(path, **kwargs)
        spec = _spec_of(catalog, path)
        if columns is not None:
            spec = _select(spec, columns, str(path))
            catalog = lsdb.read_hats(path, columns=_stored(spec), **kwargs)
        frame = catalog.compute(progress_bar=False)
    return _decode(frame, spec)


def crossmatch_hats(table, reference, max_sep=5 * u.arcsec, mode="best", keep_unmatched=False,
                    suffix="_ref", sky=None, ref_sky=None, ref_columns=None, reference_name=None,
                    frame=None, ref_frame=None, output=None, overwrite=False):
    """
    `~astrofmtools.catalog.crossmatch` for catalogues larger than memory, through lsdb.

    Either input may be a HATS catalogue (a folder, or an `lsdb.Catalog`),
    a table or a table file: tables are turned into in-memory lsdb
    catalogues. The pairs within ``max_sep`` are found partition by
    partition with astropy's `~astropy.coordinates.search_around_sky` (the
    reference's margin cache supplies the sources across partition edges),
    selected by ``mode`` exactly as `~astrofmtools.catalog.crossmatch`
    selects them, and the chosen pairs' columns joined in a second pass; the
    result is computed into a table or written, partition by partition, as a
    HATS catalogue.

    Parameters
    ----------
    table, reference : str, `~pathlib.Path`, `lsdb.Catalog` or `~astropy.table.Table`
        The table to match and the reference catalogue: HATS folders,
        lsdb catalogues, tables or table files.
    max_sep, mode, keep_unmatched, suffix, ref_columns, reference_name
        As for `~astrofmtools.catalog.crossmatch`.
    sky, ref_sky, frame, ref_frame : optional
        Where the positions are in a ``table`` or ``reference`` that is a
        table (as for `~astrofmtools.catalog.crossmatch`). A HATS catalogue
        has its own (its right ascension and declination columns).
    output : str or `~pathlib.Path`, optional
        A folder to write the result to as a HATS catalogue (which
        `read_hats` reads as the table this function would have returned),
        instead of returning it.
    overwrite : bool, optional
        Replace an existing ``output``.

    Returns
    -------
    matched : `~astropy.table.QTable` or dict
        Without ``output``, the table `~astrofmtools.catalog.crossmatch`
        gives for the same rows: the same columns, rows in the same order,
        the same ``separation``, ``n_matches`` and ``ref_index`` (0-based
        row of the reference; for a reference HATS catalogue not written by
        `write_hats`, which has no row numbers, ``ref_healpix_29``, its
        ``_healpix_29`` index, instead). Its ``meta['crossmatch']`` has the
        same keys, plus ``engine: 'lsdb'``. With ``output``, the metadata
        of the catalogue written (the same ``crossmatch`` entry).

    Raises
    ------
    astrofmtools.InputError
        As `~astrofmtools.catalog.crossmatch`, and when the reference is a
        HATS catalogue whose margin cache is narrower than ``max_sep``
        (pairs across partition edges would be lost), for ``sky=`` given
        for a HATS catalogue, and an existing ``output`` without
        ``overwrite``.
    astrofmtools.MissingFileError
        For an input that does not exist.

    Notes
    -----
    The pairs' row indices and separations (24 bytes a pair) are held in
    memory for the selection, and given to every partition of the second
    pass; the catalogues' columns never are, except in the returned table.
    Rows of a HATS catalogue not written by `write_hats` are told apart by
    their ``_healpix_29`` index, which two sources closer than about
    0.4 milliarcseconds share. Dask runs the partitions: with its default
    threaded scheduler, or a `dask.distributed.Client` when one is active.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import astropy.units as u
    >>> from astropy.coordinates import SkyCoord
    >>> from astropy.table import QTable
    >>> from astrofmtools.catalog import crossmatch, crossmatch_hats, write_hats
    >>> rng = np.random.default_rng(1)
    >>> sky = SkyCoord(rng.uniform(150, 151, 300), rng.uniform(2, 3, 300), unit="deg")
    >>> table = QTable({"id": np.arange(300), "sky_centroid": sky})
    >>> reference = QTable({"name": [f"R{k}" for k in range(300)],
    ...                     "sky_centroid": sky.directional_offset_by(0 * u.deg, 1 * u.arcsec)})
    >>> path = os.path.join(tempfile.mkdtemp(), "reference.hats")
    >>> write_hats(reference, path)
    >>> matched = crossmatch_hats(table, path, max_sep=2 * u.arcsec)
    >>> len(matched), matched.colnames[-4:]
    (300, ['sky_centroid_ref', 'separation', 'n_matches', 'ref_index'])
    >>> in_memory = crossmatch(table, reference, max_sep=2 * u.arcsec)
    >>> bool(np.all(matched["ref_index"] == in_memory["ref_index"]))
    True
    """
    from .matching import _extra_names, _max_sep, _mode, _output_names, _select_pairs

    mode_name = _mode(mode)
    max_sep = _max_sep(max_sep)
    if output is not None:
        output = check_output_path(output, overwrite=overwrite, kind="folder")
    lsdb = _lsdb()
    sep_arcsec = float(max_sep.to_value(u.arcsec))
    # a table as the reference gets a margin of at least 10 arcsec: narrower ones take lsdb
    # longer to make (a finer HEALPix order), wider ones only add rows
    right, rspec, ref_name = _open(lsdb, reference, "reference", ref_sky, ref_frame,
                                   max(1.05 * sep_arcsec, 10.0))
    if reference_name is not None:
        ref_name = str(reference_name)
    _check_margin(right, ref_name, sep_arcsec)
    left, lspec, table_name = _open(lsdb, table, "table", sky, frame, None)

    lnames = [c["name"] for c in lspec["columns"]]
    rnames = [c["name"] for c in rspec["columns"]]
    names = _output_names(types.SimpleNamespace(colnames=lnames),
                          types.SimpleNamespace(colnames=rnames), ref_columns, suffix, ref_name)
    index_base = "ref_index" if rspec["row"] else "ref_healpix_29"
    extra = _extra_names(set(lnames) | set(names.values()), suffix,
                         bases=("separation", "n_matches", index_base))
    lkey, rkey = lspec["row"], rspec["row"]
    how = "left" if keep_unmatched else "inner"
    all_pairs, chosen_pairs = _algorithms()

    # pass 1: every pair within max_sep, from the positions (and row numbers) only
    with _quiet():
        lmin = left[_unique([*lspec["position"], *([lkey] if lkey else [])])]
        rmin = right[_unique([*rspec["position"], *([rkey] if rkey else [])])]
        found = _join(lmin, rmin, all_pairs(sep_arcsec, lkey, rkey), how)
        found = found[["_astrofm_l", "_astrofm_r", "_astrofm_sep"]].compute(progress_bar=False)
    found = found[found["_astrofm_r"].notna().to_numpy()]
    lk, rk, sep = (found[c].to_numpy(dtype=t) for c, t in
                   (("_astrofm_l", np.int64), ("_astrofm_r", np.int64),
                    ("_astrofm_sep", np.float64)))
    lk, rk, sep = _unique_pairs(lk, rk, sep)

    # the selection of crossmatch, on dense indices in the order of the row numbers
    lkeys, rows = np.unique(lk, return_inverse=True)
    rkeys, refs = np.unique(rk, return_inverse=True)
    counts = np.bincount(rows, minlength=len(lkeys))
    rows, refs, seps = _select_pairs(rows, refs, sep, mode_name)
    order = np.lexsort((rkeys[refs], seps, lkeys[rows]))
    rows, refs, seps = rows[order], refs[order], seps[order]
    n_pairs = len(rows)
    n_matched_rows, n_matched_refs = len(np.unique(rows)), len(np.unique(refs))

    # pass 2: the chosen pairs' rows, every column
    out_spec, keep, rename = _joined_spec(lspec, rspec, names, extra, ref_name, sep_arcsec,
                                          mode_name)
    rstored = _stored({"columns": [c for c in rspec["columns"] if c["name"] in names]})
    rfull = right[_unique([*rspec["position"], *rstored, *([rkey] if rkey else [])])]
    with _quiet():
        joined = _join(left, rfull, chosen_pairs(lkeys[rows], rkeys[refs], seps, counts[rows],
                                                 lkey, rkey, sep_arcsec), how)
        joined = joined[[c for c in joined.columns if c in keep]].rename(rename)
        if keep_unmatched and mode_name == "best":  # rows that lost their candidates: counts
            joined = joined.map_partitions(_fill_counts, lkeys, counts, lkey,
                                           rename["_astrofm_n"], meta=joined.meta)

    n_table, n_ref = _total_rows(left), _total_rows(right)
    out_spec["meta"] = copy.deepcopy(lspec.get("meta", {}))
    key, k = "crossmatch", 1
    while key in out_spec["meta"]:
        k += 1
        key = f"crossmatch_{k}"
    sky_cols, sky_frame = lspec["sky"]
    ref_sky_cols, ref_frame_used = rspec["sky"]
    out_spec["meta"][key] = provenance(
        stage="crossmatch", engine="lsdb", mode=mode_name, max_sep_arcsec=sep_arcsec,
        reference=ref_name, table=table_name, keep_unmatched=bool(keep_unmatched),
        sky=sky_cols, ref_sky=ref_sky_cols, sky_frame=sky_frame, ref_frame=ref_frame_used,
        suffix=suffix,
        columns={**{name: new for name, new in names.items() if name != new},
                 **{b: n for b, n in extra.items() if b != n}},
        n_table=n_table, n_reference=n_ref, n_matched_rows=n_matched_rows,
        n_matched_references=n_matched_refs, n_pairs=n_pairs)
    if output is None:
        with _quiet():
            frame = joined.compute(progress_bar=False)
        _check_rows(int(frame[rename["_astrofm_ref"]].notna().sum()), n_pairs)
        return _decode(frame, out_spec)
    with atomic_folder(output, overwrite=overwrite) as tmp:
        name = _catalog_name(output)
        with _quiet():
            joined.write_catalog(tmp, catalog_name=name, overwrite=True, progress_bar=False,
                                 error_if_empty=False,
                                 addl_hats_properties={"astrofmtools_table": SIDECAR})
            written = lsdb.read_hats(tmp).hc_structure.catalog_info.total_rows or 0
        if not keep_unmatched:
            _check_rows(written, n_pairs)
        _write_sidecar(tmp, out_spec)
    return out_spec["meta"]


# ----------------------------------------------------------------------------
# lsdb

def _lsdb():
    """lsdb, imported quietly, or an error that says how to install it."""
    try:
        with _quiet():
            import lsdb
    except ImportError as exc:
        raise InputError(f"HATS catalogues need the lsdb and hats packages ({_INSTALL}): "
                         f"{exc}") from None
    return lsdb


@contextlib.contextmanager
def _quiet():
    """Silence the warnings lsdb, hats and nested-pandas give about their own pandas use."""
    import pandas as pd

    with warnings.catch_warnings():
        pandas4 = getattr(pd.errors, "Pandas4Warning", None)
        if pandas4 is not None:
            warnings.filterwarnings("ignore", category=pandas4)
        warnings.filterwarnings("ignore", message=".*chained_assignment")
        yield


@contextlib.contextmanager
def _reading(path):
    """Errors of lsdb reading ``path`` as InputErrors naming it."""
    try:
        with _quiet():
            yield
    except (InputError, MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - lsdb, pyarrow and fsspec raise many types
        raise InputError(f"Cannot read {str(path)!r} as a HATS catalogue: "
                         f"{type(exc).__name__}: {exc}") from exc


def _hats_path(path):
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"HATS catalogue {str(path)!r} does not exist.")
    if not is_hats(path):
        what = "a folder" if path.is_dir() else "a file"
        raise InputError(f"{str(path)!r} is not a HATS catalogue: it is {what} without the "
                         "collection.properties, or hats.properties and dataset/, of one.")
    return path


def _from_arrow(lsdb, arrow, spec, name, margin_arcsec, partition_rows):
    """An in-memory lsdb catalogue of an encoded table."""
    import pandas as pd

    frame = arrow.to_pandas(types_mapper=pd.ArrowDtype)
    ra, dec = spec["position"]
    return lsdb.from_dataframe(frame, ra_column=ra, dec_column=dec, catalog_name=name,
                               margin_threshold=margin_arcsec, partition_rows=partition_rows)


def _open(lsdb, source, what, sky, frame, margin_arcsec):
    """(lsdb catalogue, spec, name) of a HATS folder, lsdb catalogue, table or table file."""
    if isinstance(source, (str, Path)) and Path(source).exists() and is_hats(source):
        path = Path(source)
        _no_sky(sky, frame, str(path), what)
        with _reading(path):
            catalog = lsdb.read_hats(path)
            if not isinstance(catalog, lsdb.Catalog):
                raise InputError(f"{str(path)!r} is a HATS {type(catalog).__name__}, not a "
                                 "catalogue of sources.")
        return catalog, _spec_of(catalog, path), str(path)
    if isinstance(source, lsdb.Catalog):
        _no_sky(sky, frame, f"lsdb catalogue {source.name!r}", what)
        return source, _spec_of(source, None), str(source.name)
    if isinstance(source, (str, Path)):
        from .tables import read_table
        name, source = str(source), read_table(source)
    elif isinstance(source, Table):
        name = what
    else:
        raise InputError(f"The {what} must be a HATS folder, an lsdb Catalog, an astropy "
                         f"Table or a table file; got {type(source).__name__}.")
    arrow, spec = _encode(source, sky, frame, name)
    with _quiet():
        catalog = _from_arrow(lsdb, arrow, spec, what, margin_arcsec, None)
    return catalog, spec, name


def _no_sky(sky, frame, name, what):
    if sky is not None or frame is not None:
        option = "sky=/frame=" if what == "table" else "ref_sky=/ref_frame="
        raise InputError(f"{option} apply to tables; the HATS catalogue {name} has its "
                         "positions in its own right ascension and declination columns.")


def _check_margin(catalog, name, sep_arcsec):
    margin = getattr(catalog, "margin", None)
    width = None if margin is None else margin.hc_structure.catalog_info.margin_threshold
    if width is None or width < sep_arcsec:
        has = "no margin cache" if width is None else f"a margin cache of {width:g} arcsec"
        raise InputError(
            f"The HATS catalogue {name} has {has}: matching within {sep_arcsec:g} arcsec needs "
            "one at least that wide, or sources near partition edges would lose their "
            f"matches. Write it again with write_hats(..., margin_arcsec={np.ceil(sep_arcsec):g})"
            " or pass it as the table to match (the table needs no margin).")


def _join(left, right, algorithm, how):
    """lsdb's cross-match with an algorithm; no rows (not an error) for catalogues apart."""
    try:
        return left.crossmatch(right, algorithm=algorithm, how=how, suffixes=("", _RIGHT),
                               suffix_method="all_columns")
    except RuntimeError as exc:
        if how != "inner" or "do not overlap" not in str(exc):
            raise
    joined = left.crossmatch(right, algorithm=algorithm, how="left", suffixes=("", _RIGHT),
                             suffix_method="all_columns")
    return joined.map_partitions(_no_rows, meta=joined.meta)


def _no_rows(frame):
    return frame.iloc[:0]


def _total_rows(catalog):
    rows = catalog.hc_structure.catalog_info.total_rows
    return None if rows is None else int(rows)


def _check_rows(got, expected):
    """The second pass must give back every chosen pair (an lsdb change could break that)."""
    if got != expected:
        raise RuntimeError(f"crossmatch_hats: the join gave {got} matched rows instead of "
                           f"{expected}; please report this (the two passes saw different "
                           "partitions).")


def _unique(names):
    return list(dict.fromkeys(names))


def _unique_pairs(lk, rk, sep):
    """The pairs without repeats (a pair found twice, through two margins, counts once)."""
    if lk.size == 0:
        return lk, rk, sep
    order = np.lexsort((rk, lk))
    lk, rk, sep = lk[order], rk[order], sep[order]
    first = np.r_[True, (lk[1:] != lk[:-1]) | (rk[1:] != rk[:-1])]
    return lk[first], rk[first], sep[first]


def _fill_counts(frame, keys, counts, key_column, count_column):
    """``n_matches`` of the unmatched rows that have candidates (lost to closer rows)."""
    import pandas as pd
    import pyarrow as pa

    values = frame[count_column]
    missing = values.isna().to_numpy()
    if not missing.any():
        return frame
    wanted = _keys(frame, key_column)[missing]
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    filled = np.array(values.to_numpy(dtype=np.int64, na_value=0))
    if len(keys):
        filled[missing] = np.where(keys[at] == wanted, counts[at], 0)
    frame = frame.copy()
    frame[count_column] = pd.Series(filled, index=frame.index, dtype=pd.ArrowDtype(pa.int64()))
    return frame


def _keys(frame, column):
    """Row numbers of a partition: a column, or the ``_healpix_29`` index."""
    values = frame.index if column is None else frame[column]
    return np.asarray(values.to_numpy(), dtype=np.int64)


@functools.cache
def _algorithms():
    """The two lsdb cross-match algorithms (classes made once lsdb is imported)."""
    import pandas as pd
    import pyarrow as pa
    from astropy.coordinates import search_around_sky
    from lsdb.core.crossmatch.abstract_crossmatch_algorithm import AbstractCrossmatchAlgorithm

    i64, f64 = pd.ArrowDtype(pa.int64()), pd.ArrowDtype(pa.float64())

    def positions(frame, info):
        return SkyCoord(frame[info.ra_column].to_numpy(dtype=float),
                        frame[info.dec_column].to_numpy(dtype=float), unit="deg", frame="icrs")

    class AllPairs(AbstractCrossmatchAlgorithm):
        """Every pair within the radius, as astropy's search_around_sky finds them."""

        extra_columns = pd.DataFrame({"_astrofm_l": pd.Series(dtype=i64),
                                      "_astrofm_r": pd.Series(dtype=i64),
                                      "_astrofm_sep": pd.Series(dtype=f64)})

        def __init__(self, radius_arcsec, left_key, right_key):
            super().__init__()
            self.radius_arcsec = radius_arcsec
            self.left_key, self.right_key = left_key, right_key

        def perform_crossmatch(self, args):
            left, right = args.left_df, args.right_df
            i, j, sep, _ = search_around_sky(positions(left, args.left_catalog_info),
                                             positions(right, args.right_catalog_info),
                                             self.radius_arcsec * u.arcsec)
            sep = sep.to_value(u.arcsec)
            inside = sep <= self.radius_arcsec  # as crossmatch cuts them
            i, j, sep = i[inside], j[inside], sep[inside]
            return i, j, pd.DataFrame({
                "_astrofm_l": pd.Series(_keys(left, self.left_key)[i], dtype=i64),
                "_astrofm_r": pd.Series(_keys(right, self.right_key)[j], dtype=i64),
                "_astrofm_sep": pd.Series(sep, dtype=f64)})

    class ChosenPairs(AbstractCrossmatchAlgorithm):
        """The pairs chosen in advance: (left row, right row, separation, count) arrays."""

        extra_columns = pd.DataFrame({"_astrofm_sep": pd.Series(dtype=f64),
                                      "_astrofm_n": pd.Series(dtype=i64),
                                      "_astrofm_ref": pd.Series(dtype=i64)})

        def __init__(self, left_rows, right_rows, seps, counts, left_key, right_key,
                     radius_arcsec):
            super().__init__()
            # sorted by left row (then separation, right row)
            self.left_rows, self.right_rows = left_rows, right_rows
            self.seps, self.counts = seps, counts
            self.left_key, self.right_key = left_key, right_key
            self.radius_arcsec = radius_arcsec

        def perform_crossmatch(self, args):
            lk = _keys(args.left_df, self.left_key)
            rk = _keys(args.right_df, self.right_key)
            lo = np.searchsorted(self.left_rows, lk, "left")
            n = np.searchsorted(self.left_rows, lk, "right") - lo
            i = np.repeat(np.arange(len(lk)), n)
            pair = np.arange(int(n.sum())) + np.repeat(lo - (np.cumsum(n) - n), n)
            order = np.argsort(rk, kind="stable")
            wanted = self.right_rows[pair]
            at = np.minimum(np.searchsorted(rk[order], wanted), max(len(rk) - 1, 0))
            if len(wanted) and (len(rk) == 0 or np.any(rk[order][at] != wanted)):
                raise RuntimeError("crossmatch_hats: a chosen reference row is missing from "
                                   "its partition in the second pass; please report this.")
            j = order[at] if len(wanted) else np.zeros(0, dtype=np.int64)
            return i, j, pd.DataFrame({
                "_astrofm_sep": pd.Series(self.seps[pair], dtype=f64),
                "_astrofm_n": pd.Series(self.counts[pair], dtype=i64),
                "_astrofm_ref": pd.Series(wanted, dtype=i64)})

    return AllPairs, ChosenPairs


# ----------------------------------------------------------------------------
# table <-> Parquet columns + spec (the sidecar's content)

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
