# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Source tables in ECSV, FITS, VOTable and CSV, with units, column
descriptions, metadata and sky positions kept, readable by astropy and by
TOPCAT/STILTS.

astropy writes the tables. What it does not do for us is done here:

- FITS headers hold no nested metadata (our ``meta['versions']`` is a
  dict): such values are stored as JSON strings and decoded on reading.
  Column descriptions go in ``TCOMMn`` cards (astropy keeps them only in
  a comment block of its own), and a table's ``ra`` and ``dec``, equal to
  its ``sky_centroid``, are not written a second time: `read_table`
  rebuilds them (a ``RADEC`` header keyword says so).
- astropy's VOTable writer takes no `~astropy.coordinates.SkyCoord`
  column and drops ``table.meta``: a ``sky_centroid`` column is written as
  ``ra`` and ``dec`` (degrees, ICRS, with the UCDs TOPCAT looks for) and
  the metadata as ``INFO`` elements (JSON for values that are not
  strings, marked ``xtype="json"``); `read_table` rebuilds both.
- astropy's ECSV serialisation of ``Quantity`` and ``SkyCoord`` columns
  uses ``!astropy...`` YAML tags that other ECSV readers (STILTS 3.4,
  hence TOPCAT) refuse. ``Quantity`` columns are written as plain columns
  with a unit (astropy reads them back as Quantities). ``SkyCoord``
  columns are written as ``ra``/``dec`` so that STILTS and TOPCAT open
  the file (``portable=False`` keeps astropy's serialisation);
  `read_table` rebuilds ``sky_centroid`` either way.
- Metadata values that are astropy objects (a `~astropy.units.Unit`, a
  `~astropy.units.Quantity`) are written as strings, numpy scalars and
  arrays as numbers and lists, in every format.
"""

import json
import re
import warnings
from pathlib import Path

import numpy as np
import astropy.units as u
from astropy.coordinates import SkyCoord
from astropy.io.fits.verify import VerifyWarning
from astropy.table import QTable, Table
from astropy.table.column import BaseColumn

from ..exceptions import InputError, MissingFileError
from ..schema import add_sky_columns  # noqa: F401 - re-exported (it moved to the schema)
from ..utils import atomic_output

__all__ = ["TABLE_FORMATS", "table_format", "write_table", "read_table", "add_sky_columns"]

#: Table formats: name -> (astropy format, file extensions).
TABLE_FORMATS = {
    "ecsv": ("ascii.ecsv", (".ecsv",)),
    "fits": ("fits", (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")),
    "votable": ("votable", (".vot", ".xml", ".votable")),
    "csv": ("ascii.csv", (".csv",)),
    "hats": (None, (".hats",)),  # a folder, through lsdb: astrofmtools.catalog.hats
}

_RA_UCD = "pos.eq.ra;meta.main"
_DEC_UCD = "pos.eq.dec;meta.main"


def table_format(path, format=None):
    """
    The table format of a file: given, or guessed from its extension.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The file.
    format : str, optional
        ``'ecsv'``, ``'fits'``, ``'votable'``, ``'csv'`` or ``'hats'``
        (a folder ending in ``.hats``, or any folder holding a HATS
        catalogue).

    Returns
    -------
    format : str
        One of the keys of `TABLE_FORMATS`.

    Raises
    ------
    astrofmtools.InputError
        For an unknown format or extension (the message lists the known
        ones).

    Examples
    --------
    >>> from astrofmtools.catalog import table_format
    >>> table_format("sources.fits.gz"), table_format("sources.xml")
    ('fits', 'votable')
    """
    known = ", ".join(f"{name} ({' '.join(ext)})" for name, (_, ext) in TABLE_FORMATS.items())
    if format is not None:
        key = str(format).lower()
        key = {"vot": "votable", "ascii.ecsv": "ecsv", "ascii.csv": "csv"}.get(key, key)
        if key not in TABLE_FORMATS:
            raise InputError(f"Unsupported table format {format!r}; supported: {known}.")
        return key
    name = Path(path).name.lower()
    for key, (_, extensions) in TABLE_FORMATS.items():
        if any(name.endswith(ext) for ext in extensions):
            return key
    from .hats import is_hats
    if is_hats(path):
        return "hats"
    raise InputError(f"Cannot tell the table format of {str(path)!r} from its extension; "
                     f"pass format= or use one of: {known}.")


def write_table(table, path, format=None, overwrite=False, portable=True):
    """
    Write a table (ECSV, FITS, VOTable or CSV), atomically.

    Units, column descriptions and metadata survive in ECSV, FITS and
    VOTable, and so does ``sky_centroid``: FITS (and ECSV with
    ``portable=False``) hold it as astropy's serialised ``SkyCoord``
    (``sky_centroid.ra``, ``sky_centroid.dec``), and FITS holds no second
    pair: a table's ``ra`` and ``dec`` equal to it are left out and
    rebuilt by `read_table`. ECSV, VOTable and CSV hold ``ra`` and ``dec``
    (degrees, ICRS; the table's own when it has them), from which
    `read_table` rebuilds ``sky_centroid``. Any other ``SkyCoord``
    column ``c`` is then written as ``c_ra`` and ``c_dec``. FITS units
    are ``TUNITn`` cards and column descriptions ``TCOMMn`` cards (which
    TOPCAT shows), read back as descriptions.
    CSV keeps values only (no units, no metadata). FITS, VOTable, CSV and
    portable ECSV files open in TOPCAT and STILTS as well as astropy. A
    ``.hats`` path (or ``format='hats'``) writes a HATS catalogue folder
    with `~astrofmtools.catalog.write_hats` (needs lsdb).

    Parameters
    ----------
    table : `~astropy.table.Table` or `~astropy.table.QTable`
        The table. It is not modified.
    path : str or `~pathlib.Path`
        The output file.
    format : {'ecsv', 'fits', 'votable', 'csv', 'hats'}, optional
        By default from the extension: ``.ecsv``; ``.fits``, ``.fit``,
        ``.fts`` (optionally ``.gz``); ``.vot``, ``.xml``, ``.votable``;
        ``.csv``; ``.hats``.
    overwrite : bool, optional
        Replace an existing file.
    portable : bool, optional
        For ECSV (default True): write ``SkyCoord`` columns as ``ra``/``dec``
        instead of astropy's serialisation, whose YAML tags STILTS and
        TOPCAT cannot read. `read_table` rebuilds ``sky_centroid``; astropy's own
        ``QTable.read`` then gives ``ra`` and ``dec`` only.

    Raises
    ------
    astrofmtools.InputError
        For an unknown format, an existing file without ``overwrite``, or a
        table the format cannot hold (the message says why).

    Examples
    --------
    >>> import os, tempfile
    >>> import astropy.units as u
    >>> from astropy.coordinates import SkyCoord
    >>> from astropy.table import QTable
    >>> from astrofmtools.catalog import read_table, write_table
    >>> table = QTable({"id": [1, 2], "x": [10.5, 20.0] * u.pix,
    ...                 "sky_centroid": SkyCoord([150.0, 150.01], [2.0, 2.01], unit="deg")})
    >>> folder = tempfile.mkdtemp()
    >>> for name in ("sources.ecsv", "sources.fits", "sources.vot"):
    ...     write_table(table, os.path.join(folder, name))
    ...     back = read_table(os.path.join(folder, name))
    ...     print(name, back.colnames, back["sky_centroid"][1].ra.deg)
    sources.ecsv ['id', 'x', 'sky_centroid', 'ra', 'dec'] 150.01
    sources.fits ['id', 'x', 'sky_centroid'] 150.01
    sources.vot ['id', 'x', 'sky_centroid', 'ra', 'dec'] 150.01
    """
    fmt = table_format(path, format)
    astropy_format = TABLE_FORMATS[fmt][0]
    if fmt == "hats":
        from .hats import write_hats
        return write_hats(table, path, overwrite=overwrite)
    if not isinstance(table, Table):
        raise InputError(f"write_table needs an astropy Table; got {type(table).__name__}.")
    out = QTable(table, copy=False)
    out.meta = _portable_meta(table.meta)
    path = Path(path)
    with atomic_output(path, overwrite=overwrite) as tmp:
        try:
            if fmt == "votable":
                _write_votable(out, tmp)
            elif fmt == "ecsv":
                if portable:
                    out = _split_skycoords(out, fmt)
                # Table makes Quantity columns plain Columns with a unit (no YAML tags)
                Table(out, copy=False).write(tmp, format=astropy_format)
            elif fmt == "fits":
                out.meta = _fits_meta(out.meta)
                _write_fits(out, tmp)
            else:  # csv
                out = _split_skycoords(out, fmt)
                multi = [name for name in out.colnames if getattr(out[name], "ndim", 1) > 1]
                if multi:
                    raise InputError(f"CSV cannot hold the multi-dimensional column(s) {multi}; "
                                     f"write {str(path)!r} as ECSV, FITS or VOTable instead.")
                Table(out).write(tmp, format=astropy_format)
        except InputError:
            raise
        except (ValueError, TypeError, UnicodeError, KeyError) as exc:
            raise InputError(f"Cannot write the table as {fmt} to {str(path)!r}: {exc}") from exc


def read_table(path, format=None, **kwargs):
    """
    Read a table (ECSV, FITS, VOTable, CSV or HATS) into a `~astropy.table.QTable`.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The file, or a HATS catalogue folder (read by
        `~astrofmtools.catalog.read_hats`).
    format : {'ecsv', 'fits', 'votable', 'csv', 'hats'}, optional
        By default from the extension (see `write_table`), or ``'hats'``
        for a folder holding a HATS catalogue.
    **kwargs
        Passed to astropy's reader (``hdu=`` for FITS, for instance), or to
        `~astrofmtools.catalog.read_hats` (``columns=``).

    Returns
    -------
    table : `~astropy.table.QTable`
        The table, with units as Quantities. When it has ``ra`` and
        ``dec`` columns (degrees, or plain numbers taken as degrees) but no
        ``sky_centroid``, a ``sky_centroid`` (ICRS) column is added before
        them. Meta written by `write_table` comes back as it was: FITS
        header keywords are turned to lower case and JSON values (in FITS
        and VOTable) decoded.

    Raises
    ------
    astrofmtools.MissingFileError
        For a file that does not exist.
    astrofmtools.InputError
        For an unknown extension or format, or content that is not a
        table in that format.

    Examples
    --------
    >>> import os, tempfile
    >>> from astropy.table import QTable
    >>> from astrofmtools.catalog import read_table, write_table
    >>> path = os.path.join(tempfile.mkdtemp(), "radec.csv")
    >>> write_table(QTable({"ra": [150.0], "dec": [2.0]}), path)
    >>> t = read_table(path)
    >>> t["sky_centroid"].to_string("hmsdms", precision=0)
    ['10h00m00s +02d00m00s']
    """
    if not isinstance(path, str) and not hasattr(path, "__fspath__"):
        raise InputError(f"read_table takes a file name (str or Path) or a HATS folder, not "
                         f"{type(path).__name__}; a table already in memory needs no reading.")
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"Table file {str(path)!r} does not exist.")
    fmt = table_format(path, format)
    if fmt == "hats":
        from .hats import read_hats
        return read_hats(path, **kwargs)
    try:
        if fmt == "votable":
            table = _read_votable(path, **kwargs)
        else:
            table = QTable.read(path, format=TABLE_FORMATS[fmt][0], **kwargs)
            if fmt == "fits":
                _restore_fits_columns(table, path, kwargs.get("hdu"))
                table.meta = _unfits_meta(table.meta)
    except Exception as exc:  # astropy raises many types for bad content
        if isinstance(exc, InputError):
            raise
        raise InputError(f"Cannot read {str(path)!r} as a {fmt} table: "
                         f"{type(exc).__name__}: {exc}") from exc
    return _restore_sky(table)


# ----------------------------------------------------------------------------
# helpers

def _portable_meta(value):
    """Metadata as plain Python: astropy objects as strings, numpy as numbers."""
    if isinstance(value, dict):
        return {str(k): _portable_meta(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_portable_meta(v) for v in value]
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and not isinstance(value, u.Quantity):
        return value.tolist()
    if isinstance(value, u.UnitBase):
        return value.to_string()
    return str(value)


def _fits_meta(meta):
    """FITS-safe metadata: nested values as JSON strings."""
    out = {}
    for key, value in meta.items():
        if str(key).upper() in ("COMMENT", "HISTORY"):
            out[key] = value
        elif isinstance(value, (str, bool, int, float, np.integer, np.floating, np.bool_)):
            out[key] = value
        else:
            out[key] = json.dumps(value, default=str)
    return out


def _fits_text(value):
    """A description as FITS header text: printable ASCII on one line."""
    text = re.sub(r"\s+", " ", str(value)).strip()
    return text.encode("ascii", "replace").decode("ascii")


def _radec_of_sky(table):
    """Whether the table's ``ra``, ``dec`` are its ``sky_centroid`` (ICRS, degrees)."""
    names = table.colnames
    if not ("sky_centroid" in names and "ra" in names and "dec" in names
            and isinstance(table["sky_centroid"], SkyCoord)):
        return False
    try:
        icrs = table["sky_centroid"].icrs
        pairs = ((table["ra"], icrs.ra.deg), (table["dec"], icrs.dec.deg))
        return all(np.allclose(u.Quantity(col, u.deg).to_value(u.deg), ref, rtol=0,
                               atol=1e-9, equal_nan=True) for col, ref in pairs)
    except (u.UnitsError, TypeError, ValueError):
        return False


def _write_fits(table, tmp):
    """
    The table as a FITS binary table, with each column's description in TCOMMn.

    astropy writes units as TUNITn; descriptions it keeps only in its own
    serialised-columns comment, which TOPCAT and STILTS do not read. A
    ``sky_centroid`` is written by astropy as ``sky_centroid.ra`` and
    ``sky_centroid.dec``; the table's ``ra`` and ``dec``, when they are the
    same positions, are left out (their descriptions go on those columns)
    and ``RADEC = 'sky_centroid'`` tells `read_table` to rebuild them.
    """
    from astropy.io import fits

    comments = {name: table[name].info.description for name in table.colnames}
    if _radec_of_sky(table):
        table = QTable(table, copy=False)
        comments["sky_centroid.ra"] = comments.pop("ra")
        comments["sky_centroid.dec"] = comments.pop("dec")
        table.remove_columns(["ra", "dec"])
        table.meta["radec"] = "sky_centroid"
    with warnings.catch_warnings():
        # long meta keys become HIERARCH cards, as intended
        warnings.filterwarnings("ignore", message=".*HIERARCH card will be created",
                                category=VerifyWarning)
        table.write(tmp, format="fits")  # mixins (SkyCoord) serialised by astropy
        with fits.open(tmp, mode="update") as hdul:
            header = hdul[1].header
            for i, name in enumerate(hdul[1].columns.names, start=1):
                if comments.get(name):
                    after = f"TUNIT{i}" if f"TUNIT{i}" in header else f"TFORM{i}"
                    header.insert(after, (f"TCOMM{i}", _fits_text(comments[name])),
                                  after=True)


def _restore_fits_columns(table, path, hdu=None):
    """
    Descriptions from the TCOMMn cards (astropy leaves them in ``meta``), and
    the ``ra``, ``dec`` `_write_fits` left out.
    """
    from astropy.io import fits

    with fits.open(path) as hdul:
        if hdu is None:  # astropy reads the first table
            hdu = next((i for i, h in enumerate(hdul)
                        if isinstance(h, (fits.BinTableHDU, fits.TableHDU))), 1)
        header = hdul[hdu].header
        comments = {header.get(f"TTYPE{i}"): header.get(f"TCOMM{i}")
                    for i in range(1, header.get("TFIELDS", 0) + 1)}
    for key in [k for k in table.meta if re.fullmatch(r"TCOMM\d+", str(k).upper())]:
        del table.meta[key]
    for name in table.colnames:
        if comments.get(name) and not table[name].info.description:
            table[name].info.description = comments[name]
    radec = next((k for k in table.meta if str(k).upper() == "RADEC"), None)
    if radec is None or table.meta[radec] != "sky_centroid":
        return
    del table.meta[radec]
    names = table.colnames
    if "sky_centroid" not in names or "ra" in names or "dec" in names:
        return
    icrs = table["sky_centroid"].icrs
    index = names.index("sky_centroid") + 1
    table.add_column(u.Quantity(icrs.ra.deg, u.deg), name="ra", index=index)
    table.add_column(u.Quantity(icrs.dec.deg, u.deg), name="dec", index=index + 1)
    table["ra"].info.description = comments.get("sky_centroid.ra")
    table["dec"].info.description = comments.get("sky_centroid.dec")


def _unfits_meta(meta):
    out = type(meta)()
    for key, value in meta.items():
        name = key if key in ("COMMENT", "HISTORY") else key.lower()
        out[name] = _maybe_json(value)
    return out


def _maybe_json(value):
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _split_skycoords(table, fmt):
    """Replace SkyCoord columns by ra/dec (deg, ICRS) for ECSV, VOTable and CSV."""
    table = QTable(table, copy=False)
    for name in list(table.colnames):
        col = table[name]
        if not isinstance(col, SkyCoord):
            continue
        index = table.colnames.index(name)
        ra_name, dec_name = (("ra", "dec") if name == "sky_centroid"
                             else (f"{name}_ra", f"{name}_dec"))
        icrs = col.icrs
        table.remove_column(name)
        if ra_name in table.colnames and dec_name in table.colnames:
            continue  # the table has them already
        described = col.info.description or name
        table.add_column(u.Quantity(icrs.ra.deg, u.deg), name=ra_name, index=index)
        table[ra_name].info.description = f"right ascension (ICRS) of {described}"
        table.add_column(u.Quantity(icrs.dec.deg, u.deg), name=dec_name, index=index + 1)
        table[dec_name].info.description = f"declination (ICRS) of {described}"
    if fmt == "votable":
        others = [col.info.name for col in table.columns.not_isinstance((BaseColumn,
                                                                         u.Quantity))]
        if others:
            raise InputError(f"VOTable cannot hold the column(s) {others} (astropy mixins); "
                             "write ECSV or FITS instead.")
    return table


def _write_votable(table, tmp):
    from astropy.io.votable import from_table
    from astropy.io.votable.tree import Info

    table = _split_skycoords(table, "votable")
    votable = from_table(Table(table))
    element = votable.get_first_table()
    for field in element.fields:
        if field.name == "ra":
            field.ucd = _RA_UCD
        elif field.name == "dec":
            field.ucd = _DEC_UCD
    config = element._config  # the file's VOTable version, as astropy's own elements get it
    for key, value in table.meta.items():
        # IDs of their own: an INFO named like a column must not take its ID
        ident = "meta_" + re.sub(r"[^A-Za-z0-9_.-]", "_", str(key))
        if isinstance(value, str):
            element.infos.append(Info(ID=ident, name=str(key), value=value, config=config))
        else:  # numbers, lists, dicts: JSON, marked by the INFO's xtype
            element.infos.append(Info(ID=ident, name=str(key),
                                      value=json.dumps(value, default=str), xtype="json",
                                      config=config))
    votable.to_xml(tmp)


def _read_votable(path, **kwargs):
    from astropy.io.votable import parse

    votable = parse(str(path), **kwargs)
    element = votable.get_first_table()
    table = QTable(element.to_table(use_names_over_ids=True))
    meta = {}
    for info in list(votable.resources[0].infos) + list(element.infos):
        value = info.value
        if info.xtype == "json":
            try:
                value = json.loads(value)
            except ValueError:
                pass
        meta[info.name] = value
    table.meta.update(meta)
    return table


def _restore_sky(table):
    """Rebuild the SkyCoord columns `_split_skycoords` wrote as ra/dec pairs."""
    pairs = [("sky_centroid", "ra", "dec")]
    # other SkyCoords only where write_table split them (so a catalogue's own X_ra stays)
    pairs += [(name[:-3], name, name[:-3] + "_dec") for name in table.colnames
              if name.endswith("_ra") and len(name) > 3 and str(
                  table[name].info.description or "").startswith("right ascension (ICRS) of")]
    for sky_name, ra_name, dec_name in pairs:
        names = table.colnames
        if sky_name in names or ra_name not in names or dec_name not in names:
            continue
        ra, dec = table[ra_name], table[dec_name]
        try:
            ra = ra.to_value(u.deg) if isinstance(ra, u.Quantity) else np.asarray(ra, float)
            dec = dec.to_value(u.deg) if isinstance(dec, u.Quantity) else np.asarray(dec, float)
        except (u.UnitsError, TypeError, ValueError):
            continue  # ra/dec that are not angles: leave them alone
        dec = np.ma.filled(np.ma.asarray(dec), np.nan)
        if np.any(np.abs(dec) > 90) or (sky_name == "sky_centroid" and _other_frame(table)):
            continue  # parse_positions reads them (its frame) or names the bad rows
        sky = SkyCoord(np.ma.filled(np.ma.asarray(ra), np.nan), dec, unit="deg", frame="icrs")
        table.add_column(sky, name=sky_name, index=names.index(ra_name))
        if sky_name != "sky_centroid":  # the pair was written for it; ra/dec are kept
            del table[ra_name], table[dec_name]
        table[sky_name].info.description = f"sky position (ICRS), from {ra_name} and {dec_name}"
    return table


def _other_frame(table):
    """Whether the table's meta declares ra/dec in a frame other than ICRS (RADESYS...)."""
    from ..schema.frames import _meta_frame
    try:
        frame = _meta_frame(table.meta)
    except InputError:
        return True  # parse_positions says what is wrong when the positions are used
    return frame is not None and frame.name != "icrs"
