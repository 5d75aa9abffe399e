# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Sky cross-matching of two catalogues.

`crossmatch` pairs the rows of a table (a source list, a predictions
table) with the sources of a reference catalogue that lie within a
maximum separation. The pairs come from astropy's KD-tree search
(`~astropy.coordinates.search_around_sky`); the mode says which are kept:

``"nearest"``
    Each row gets its nearest reference source, if that lies within
    ``max_sep`` (what `~astropy.coordinates.SkyCoord.match_to_catalog_sky`
    gives, cut at ``max_sep``). A reference source may serve several rows.
``"best"`` (alias ``"one-to-one"``)
    Each row gets at most one reference source and each reference source
    serves at most one row: the pairs are taken greedily from the closest,
    skipping pairs whose row or reference source is already used.
``"all"``
    Every pair within ``max_sep``: a row appears once per reference
    source around it.

What is done here is finding the positions in the tables, the selection
of the pairs (vectorised) and the assembly of the output table.
"""

import copy
from pathlib import Path

import numpy as np
import astropy.units as u
from astropy.coordinates import Angle, search_around_sky
from astropy.table import Column, MaskedColumn, QTable, Table
from astropy.utils.masked import Masked

from ..exceptions import InputError
from ..schema import parse_positions
from ..utils import provenance

__all__ = ["CROSSMATCH_MODES", "crossmatch"]

#: Cross-match modes: name -> what each row of the table gets.
CROSSMATCH_MODES = {
    "nearest": "its nearest reference source within max_sep (a reference source may serve "
               "several rows)",
    "best": "its best reference source within max_sep, each reference source used at most "
            "once (greedy by separation)",
    "all": "every reference source within max_sep (one output row per pair)",
}
_MODE_ALIASES = {"one-to-one": "best", "one_to_one": "best", "1to1": "best"}

_MAX_ROUNDS = 30  # vectorised rounds of the one-to-one selection before a plain loop


def crossmatch(table, reference, max_sep=5 * u.arcsec, mode="best", keep_unmatched=False,
               suffix="_ref", sky=None, ref_sky=None, ref_columns=None, reference_name=None,
               frame=None, ref_frame=None):
    """
    Match the rows of a table with the sources of a reference catalogue on the sky.

    Parameters
    ----------
    table : `~astropy.table.Table`, `~astropy.table.QTable`, str or `~pathlib.Path`
        The table to match (a source list, a predictions table), or a file
        that `~astrofmtools.catalog.read_table` reads (ECSV, FITS, VOTable,
        CSV).
    reference : `~astropy.table.Table`, `~astropy.table.QTable`, str or `~pathlib.Path`
        The reference catalogue, or a file.
    max_sep : `~astropy.units.Quantity`, float or str, optional
        Largest separation of a match: an angle, a number of arcseconds,
        or a string such as ``"5arcsec"``, ``'5"'``, ``"0.5arcmin"``
        (default 5 arcsec).
    mode : {'best', 'nearest', 'all'}, optional
        ``'best'`` (alias ``'one-to-one'``, the default): at most one
        reference source per row and one row per reference source, the
        closest pairs first. ``'nearest'``: each row's nearest reference
        source (a reference source may serve several rows). ``'all'``:
        every pair within ``max_sep``, one output row per pair.
    keep_unmatched : bool, optional
        Keep the rows without a match, with masked reference columns
        (default: drop them).
    suffix : str, optional
        Appended to the names of reference columns that the table also has
        (``flux`` -> ``flux_ref``), and to ``separation``, ``n_matches``
        and ``ref_index`` when those names are taken (default ``'_ref'``).
    sky, ref_sky : str or (str, str), optional
        Where the positions are in ``table`` and ``reference``: a
        `~astropy.coordinates.SkyCoord` column, or longitude and latitude
        columns (``("RAJ2000", "DEJ2000")``, ``"RAJ2000,DEJ2000"``,
        ``"l,b"``). By default a ``sky_centroid`` column, else any
        ``SkyCoord`` column, else the first pair found of ``ra``/``dec``,
        ``RAJ2000``/``DEJ2000``, ``RA_ICRS``/``DE_ICRS``, ``ALPHA_J2000``/
        ``DELTA_J2000`` and similar names (any case), ``GLON``/``GLAT`` or
        ``l``/``b`` (Galactic), else the columns whose UCDs are
        ``pos.eq.ra``/``pos.eq.dec`` or ``pos.galactic.lon``/``lat``
        (`astrofmtools.schema.parse_positions` reads them). Columns are in
        degrees unless they have an angular unit; string columns are read
        as sexagesimal (hours for right ascension).
    frame, ref_frame : str or `~astropy.coordinates.BaseCoordinateFrame`, optional
        The frame of the longitude/latitude columns of ``table`` and
        ``reference``. By default the one their names imply: ``l``/``b``
        and ``GLON``/``GLAT`` (named or found) are Galactic, ``ELON``/``ELAT``
        ecliptic, right ascension/declination (``RAJ2000`` included) and
        other names are ICRS, or in the frame the table's meta declares
        (``RADESYS``, ``EQUINOX``). ``sky="l,b:galactic"`` names a frame
        with the columns. A ``SkyCoord`` column has its own.
    ref_columns : list of str, optional
        The reference columns to copy into the output (default: all).
    reference_name : str, optional
        The name of the reference recorded in ``meta`` (default: its file
        name, or ``'reference'``).

    Returns
    -------
    matched : `~astropy.table.QTable`
        Every column of ``table``, then the reference columns (renamed with
        ``suffix`` on name clashes, the reference's sky column included),
        then:

        - ``separation``: angular separation of the pair (arcsec);
        - ``n_matches``: number of reference sources within ``max_sep`` of
          the row (more than 1 flags a crowded or ambiguous match);
        - ``ref_index``: 0-based row index of the matched source in the
          reference.

        Rows are in the order of ``table`` (in ``'all'`` mode, a row's
        pairs by increasing separation). Unmatched rows, kept with
        ``keep_unmatched=True``, have masked reference columns,
        ``separation`` and ``ref_index``, and ``n_matches`` 0; rows without
        a valid position (NaN or masked) are unmatched. No match at all
        gives an empty table with every column. ``meta`` is the table's,
        with a ``crossmatch`` entry (``crossmatch_2`` and so on when the
        table was matched before) holding the mode, ``max_sep_arcsec``,
        the reference's and the table's names, the columns the positions
        came from and their frames (``sky_frame``, ``ref_frame``), the
        numbers of rows and matches, the date and package versions.

    Raises
    ------
    astrofmtools.InputError
        When a table has no sky position (the message names the table or
        file and the columns looked for), for an unknown mode, a
        ``max_sep`` that is not a positive angle, a missing column, or
        reference columns that stay clashing after ``suffix``.
    astrofmtools.MissingFileError
        For a file that does not exist.

    Notes
    -----
    Every mode starts from the pairs within ``max_sep`` that
    `~astropy.coordinates.search_around_sky` finds (KD-trees of unit
    vectors), so time and memory grow with the number of sources and of
    pairs; ``'nearest'`` keeps each row's closest pair, which is what
    `~astropy.coordinates.SkyCoord.match_to_catalog_sky` gives cut at
    ``max_sep``.

    ``'best'`` takes the pairs from the closest (ties broken by row, then
    reference index, so the result does not depend on anything else) and
    accepts a pair when neither its row nor its reference source is taken.
    The rows of well separated sources, the usual case, get exactly their
    nearest reference source; in a crowded group the closest pair wins, as
    in TOPCAT's symmetric best match. It is not the assignment of least
    total separation (which `scipy.optimize.linear_sum_assignment` would
    give), which may pair a source with a farther neighbour to shorten
    another pair. The greedy selection is run as rounds of vectorised numpy
    operations: each round accepts every pair that is the closest remaining
    one of both its row and its reference source, which gives the same
    pairs as taking them one by one.

    Examples
    --------
    >>> import numpy as np
    >>> import astropy.units as u
    >>> from astropy.coordinates import SkyCoord
    >>> from astropy.table import QTable
    >>> from astrofmtools.catalog import crossmatch
    >>> table = QTable({"id": [1, 2, 3],
    ...                 "sky_centroid": SkyCoord([150.0, 150.1, 150.2], [2.0, 2.0, 2.0],
    ...                                          unit="deg")})
    >>> reference = QTable({"id": [10, 20],
    ...                     "RAJ2000": [150.0 + 1 / 3600, 150.2 + 9 / 3600],
    ...                     "DEJ2000": [2.0, 2.0]})
    >>> matched = crossmatch(table, reference, max_sep=3 * u.arcsec, keep_unmatched=True)
    >>> matched["separation"].info.format = ".3f"
    >>> print(matched["id", "id_ref", "separation", "n_matches", "ref_index"])
     id id_ref separation n_matches ref_index
                 arcsec
    --- ------ ---------- --------- ---------
      1     10      0.999         1         0
      2     --        ———         0        --
      3     --        ———         0        --
    """
    mode_name = _mode(mode)
    max_sep = _max_sep(max_sep)
    table, table_name = _as_table(table, "table")
    reference, ref_name = _as_table(reference, "reference")
    if reference_name is not None:
        ref_name = str(reference_name)
    coords, good, sky_used, sky_frame = _sky_positions(table, sky, frame, table_name, "sky")
    ref_coords, ref_good, ref_sky_used, ref_frame_used = _sky_positions(
        reference, ref_sky, ref_frame, ref_name, "ref_sky")
    n_table, n_ref = len(table), len(reference)
    names = _output_names(table, reference, ref_columns, suffix, ref_name)
    extra = _extra_names(set(table.colnames) | set(names.values()), suffix)

    # pairs (row of table, row of reference, separation in arcsec) and matches per row
    rows, refs, seps, counts = _match(coords, ref_coords, max_sep, mode_name)
    good_rows, good_refs = np.flatnonzero(good), np.flatnonzero(ref_good)
    rows, refs = good_rows[rows], good_refs[refs]
    n_matches = np.zeros(n_table, dtype=np.int64)
    n_matches[good_rows] = counts

    n_matched_rows = int(np.count_nonzero(np.bincount(rows, minlength=n_table)))
    n_matched_refs = int(np.count_nonzero(np.bincount(refs, minlength=n_ref)))
    n_pairs = len(rows)
    if mode_name != "all":  # one pair at most per row: place them, no sorting needed
        if keep_unmatched:
            full_refs, full_seps = np.full(n_table, -1), np.full(n_table, np.nan)
            full_refs[rows], full_seps[rows] = refs, seps
            rows, refs, seps = np.arange(n_table), full_refs, full_seps
        elif np.any(np.diff(rows) < 0):
            order = np.argsort(rows, kind="stable")
            rows, refs, seps = rows[order], refs[order], seps[order]
    else:  # a row's pairs together, by separation then reference index; unmatched rows last
        if keep_unmatched:
            missing = np.flatnonzero(n_matches == 0)
            rows = np.concatenate([rows, missing])
            refs = np.concatenate([refs, np.full(len(missing), -1)])
            seps = np.concatenate([seps, np.full(len(missing), np.inf)])
        order = np.lexsort((refs, seps, rows))
        rows, refs, seps = rows[order], refs[order], seps[order]
        seps[refs < 0] = np.nan
    unmatched = refs < 0

    out = QTable(table[rows], copy=False)
    for name, new in names.items():
        out[new] = _take(reference[name], refs, unmatched)
    sep_col = u.Quantity(seps, u.arcsec)
    if unmatched.any():
        sep_col = Masked(sep_col, mask=unmatched)
    out[extra["separation"]] = sep_col
    out[extra["n_matches"]] = n_matches[rows]
    index_col = Column(refs)
    if unmatched.any():
        index_col = MaskedColumn(np.where(unmatched, 0, refs), mask=unmatched)
    out[extra["ref_index"]] = index_col
    sep_text = f"{max_sep.to_value(u.arcsec):g} arcsec"
    out[extra["separation"]].info.description = (
        f"angular separation from the matched source of {ref_name}")
    out[extra["n_matches"]].info.description = (
        f"number of sources of {ref_name} within {sep_text} of this row")
    out[extra["ref_index"]].info.description = (
        f"0-based row index of the matched source in {ref_name}")

    out.meta = copy.deepcopy(dict(table.meta))
    key, k = "crossmatch", 1
    while key in out.meta:
        k += 1
        key = f"crossmatch_{k}"
    out.meta[key] = provenance(
        stage="crossmatch", mode=mode_name, max_sep_arcsec=float(max_sep.to_value(u.arcsec)),
        reference=ref_name, table=table_name, keep_unmatched=bool(keep_unmatched),
        sky=sky_used, ref_sky=ref_sky_used, sky_frame=sky_frame, ref_frame=ref_frame_used,
        suffix=suffix,
        columns={**{name: new for name, new in names.items() if name != new},
                 **{b: n for b, n in extra.items() if b != n}},
        n_table=n_table, n_reference=n_ref, n_matched_rows=n_matched_rows,
        n_matched_references=n_matched_refs, n_pairs=n_pairs)
    return out


# ----------------------------------------------------------------------------
# inputs

def _mode(mode):
    key = str(mode).lower()
    key = _MODE_ALIASES.get(key, key)
    if key not in CROSSMATCH_MODES:
        raise InputError(f"Unknown cross-match mode {mode!r}; use one of "
                         f"{', '.join(CROSSMATCH_MODES)} (or 'one-to-one' for 'best').")
    return key


def _max_sep(value):
    """A positive angle from a Quantity, a number of arcsec or a string."""
    original = value
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text) * u.arcsec
        except ValueError:
            try:
                value = u.Quantity(text)
                if value.unit.physical_type != "angle":
                    raise ValueError
            except (ValueError, TypeError):
                try:
                    value = Angle(text)  # 5" and 0.5' too
                except (ValueError, TypeError, u.UnitsError):
                    value = None
    elif not isinstance(value, u.Quantity):
        try:
            value = float(value) * u.arcsec
        except (TypeError, ValueError):
            value = None
    if (not isinstance(value, u.Quantity) or not value.isscalar
            or value.unit.physical_type != "angle"):
        raise InputError(f"max_sep must be an angle (e.g. 5 arcsec, '5arcsec', '5\"', "
                         f"'0.5arcmin', or a number of arcsec), not {original!r}.")
    value = Angle(value).to(u.arcsec)
    if not (np.isfinite(value.value) and 0 < value < 180 * u.deg):
        raise InputError(f"max_sep must be positive and below 180 deg, not {original!r}.")
    return value


def _as_table(value, what):
    """A QTable and its name (the file name for a path)."""
    if isinstance(value, (str, Path)):
        from .tables import read_table
        return read_table(value), str(value)
    if not isinstance(value, Table):
        raise InputError(f"The {what} must be an astropy Table or a file name; got "
                         f"{type(value).__name__}.")
    return QTable(value, copy=False), what


def _sky_positions(table, spec, frame, table_name, argument):
    """ICRS SkyCoord of the rows with valid positions, their mask, the columns and frame."""
    option = "--" + argument.replace("_", "-")
    pos = parse_positions(table, spec, frame, kind="sky", name=table_name, argument=argument,
                          hint=f"({option} on the command line; {option.replace('sky', 'frame')}"
                               " for their frame)")
    used = pos.columns[0] if len(pos.columns) == 1 else list(pos.columns)
    return pos.sky[pos.valid], pos.valid, used, pos.frame


# ----------------------------------------------------------------------------
# matching

def _match(coords, ref_coords, max_sep, mode):
    """
    Pairs as (rows, refs, separations in arcsec) indexing ``coords`` and
    ``ref_coords``, and the number of reference sources within max_sep of
    each of ``coords``.
    """
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    counts = np.zeros(len(coords), dtype=np.int64)
    if len(coords) == 0 or len(ref_coords) == 0:
        return (*empty, counts)
    # astropy's KD-tree search: pairs with a chord below that of max_sep, and their
    # separations (Vincenty); the cut on the separation makes the two agree at the limit
    rows, refs, sep2d, _ = search_around_sky(coords, ref_coords, max_sep)
    sep = sep2d.to_value(u.arcsec)
    inside = sep <= max_sep.to_value(u.arcsec)
    rows, refs, sep = rows[inside].astype(np.int64), refs[inside].astype(np.int64), sep[inside]
    counts = np.bincount(rows, minlength=len(coords)).astype(np.int64)
    return (*_select_pairs(rows, refs, sep, mode), counts)


def _select_pairs(rows, refs, sep, mode):
    """The pairs (rows, refs, sep) that ``mode`` keeps out of all the pairs within max_sep."""
    if mode == "nearest":  # each row's closest pair (ties: the lower reference index)
        order = np.lexsort((refs, sep, rows))
        sorted_rows = rows[order]
        first = order[np.r_[True, sorted_rows[1:] != sorted_rows[:-1]]] if rows.size else order
        return rows[first], refs[first], sep[first]
    if mode == "best":
        keep = _one_to_one(rows, refs, sep)
        return rows[keep], refs[keep], sep[keep]
    return rows, refs, sep


def _first_of_each(values):
    """True at the first occurrence of each distinct value."""
    first = np.zeros(len(values), dtype=bool)
    first[np.unique(values, return_index=True)[1]] = True
    return first


def _one_to_one(rows, refs, sep):
    """
    Indices of the pairs that greedy one-to-one matching by separation keeps.

    A pair whose row and reference source are in no other pair (most of
    them) is kept at once. The others are ordered by (separation, row,
    ref); a round accepts every remaining pair that comes first among the
    remaining pairs of both its row and its reference source, and removes
    the pairs that share a row or a reference source with an accepted one.
    This keeps the same pairs as taking them one by one in order (each
    accepted pair is one the sequential greedy accepts too), without a
    Python loop over pairs. After ``_MAX_ROUNDS`` rounds (long chains of
    ever closer pairs) the rest is taken one by one.
    """
    if rows.size == 0:
        return np.zeros(0, dtype=np.int64)
    keep = (np.bincount(rows)[rows] == 1) & (np.bincount(refs)[refs] == 1)
    contested = np.flatnonzero(~keep)
    order = contested[np.lexsort((refs[contested], rows[contested], sep[contested]))]
    r_rows, r_refs = rows[order], refs[order]
    used_row = np.zeros(int(rows.max()) + 1, dtype=bool)
    used_ref = np.zeros(int(refs.max()) + 1, dtype=bool)
    alive = np.arange(len(order))
    rounds = 0
    while alive.size:
        a_rows, a_refs = r_rows[alive], r_refs[alive]
        if rounds == _MAX_ROUNDS:
            for k, i, j in zip(alive.tolist(), a_rows.tolist(), a_refs.tolist()):
                if not (used_row[i] or used_ref[j]):
                    keep[order[k]] = used_row[i] = used_ref[j] = True
            break
        win = _first_of_each(a_rows) & _first_of_each(a_refs)
        keep[order[alive[win]]] = True
        used_row[a_rows[win]] = True
        used_ref[a_refs[win]] = True
        alive = alive[~(used_row[a_rows] | used_ref[a_refs])]
        rounds += 1
    return np.flatnonzero(keep)


# ----------------------------------------------------------------------------
# output

def _output_names(table, reference, ref_columns, suffix, ref_name):
    """Reference column name -> output name (suffixed where the table has the name)."""
    if ref_columns is None:
        names = list(reference.colnames)
    else:
        names = [ref_columns] if isinstance(ref_columns, str) else list(ref_columns)
        missing = [n for n in names if n not in reference.colnames]
        if missing:
            raise InputError(f"{ref_name} has no column(s) {missing} (ref_columns=); its "
                             f"columns are: {', '.join(reference.colnames)}.")
    taken = set(table.colnames)
    out, owner = {}, {}
    for name in names:
        new = name + suffix if name in taken else name
        if new in taken:
            raise InputError(f"Column {name!r} of {ref_name} would be called {new!r}, which "
                             "the table has too; pass another suffix= or ref_columns=.")
        if new in owner:
            raise InputError(f"Columns {owner[new]!r} and {name!r} of {ref_name} would both "
                             f"be called {new!r}; pass another suffix= or ref_columns=.")
        owner[new] = name
        out[name] = new
    return out


def _extra_names(taken, suffix, bases=("separation", "n_matches", "ref_index")):
    """Names of the ``separation``, ``n_matches`` and ``ref_index`` columns (suffixed if taken)."""
    extra = {}
    for base in bases:
        new = base if base not in taken else base + suffix
        if new in taken:
            raise InputError(f"Cannot add the column {base!r}: {base!r} and {new!r} are both "
                             f"taken in the matched table; pass another suffix= than "
                             f"{suffix!r}.")
        extra[base] = new
    return extra


def _take(col, index, missing):
    """Rows ``index`` of a column, masked where ``missing`` (astropy's hstack recipe)."""
    if not missing.any():
        return col[index]
    if len(col) == 0:  # nothing to take from: one row of the right kind, to be masked
        col = type(col).info.new_like([col], 1, "silent", col.info.name)
    taken = col[np.where(missing, 0, index)]
    if isinstance(taken, Column) and not isinstance(taken, MaskedColumn):
        taken = MaskedColumn(taken, copy=False)
    if isinstance(taken, u.Quantity) and not isinstance(taken, Masked):
        description = taken.info.description
        taken = Masked(taken, copy=False)
        taken.info.description = description
    try:
        taken[missing] = taken.info.mask_val
    except Exception as exc:  # noqa: BLE001 - columns that cannot be masked
        raise InputError(f"Cannot keep unmatched rows: the reference column "
                         f"{col.info.name!r} ({type(col).__name__}) cannot be masked; "
                         "use keep_unmatched=False or leave it out with ref_columns=.") from exc
    return taken
