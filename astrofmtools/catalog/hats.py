# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Survey-scale catalogues as HATS (HEALPix-partitioned Parquet), through
`lsdb <https://docs.lsdb.io>`_ and `hats <https://hats.readthedocs.io>`_.

A HATS catalogue is a folder of Parquet files, one per HEALPix pixel, sized
so that each fits in memory, with a *margin cache* (the sources within a
few arcseconds outside each pixel) so that a cross-match never needs two
partitions at once. lsdb writes, reads and cross-matches them partition by
partition with Dask. What it does not do for us is done here:

- Parquet holds values, not astropy's column attributes (``hats_encoding``): units, column
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
  `~astrofmtools.catalog.crossmatch_hats` (``hats_crossmatch``) finds the pairs
  partition by partition (an lsdb
  cross-match algorithm calling astropy's
  `~astropy.coordinates.search_around_sky`, as `crossmatch` does), selects
  them as `crossmatch` does, and joins the chosen pairs' columns in a second
  partition-by-partition pass, so that only the pairs (three numbers each)
  are ever in memory at once.
"""

import contextlib
import warnings
from pathlib import Path

from astropy.table import Table

from ..exceptions import InputError, MissingFileError
from ..utils import atomic_folder
from .hats_encoding import (SIDECAR, _catalog_name, _decode, _encode,  # noqa: F401 (SIDECAR)
                            _select, _spec_of, _stored, _write_sidecar)

__all__ = ["write_hats", "read_hats", "is_hats"]

__doctest_requires__ = {("write_hats", "read_hats"): ["lsdb"]}

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
