# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Cross-matching HATS catalogues larger than memory (`crossmatch_hats`): every
pair within the radius partition by partition (an lsdb cross-match algorithm
calling astropy's `~astropy.coordinates.search_around_sky`), the pairs
chosen over the whole sky as `~astrofmtools.catalog.crossmatch` chooses them,
then the chosen pairs' columns joined in a second pass.
"""

import copy
import functools
import types

import numpy as np
import astropy.units as u
from astropy.coordinates import SkyCoord

from ..exceptions import InputError
from ..utils import atomic_folder, check_output_path, provenance
from .hats import _lsdb, _open, _quiet
from .hats_encoding import (SIDECAR, _RIGHT, _catalog_name, _decode, _joined_spec, _stored,
                            _unique, _write_sidecar)

__all__ = ["crossmatch_hats"]

__doctest_requires__ = {("crossmatch_hats",): ["lsdb"]}


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
