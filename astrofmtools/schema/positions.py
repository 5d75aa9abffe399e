# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Where a table keeps its positions, and in which frame: the one parser of
positions that every stage uses.

`parse_positions` finds pixel positions (``x``, ``y``) or sky positions in
a table, or reads the columns it is told, and returns them as a
`Positions`: 0-based pixels, or an ICRS `~astropy.coordinates.SkyCoord`,
with the rows that have none marked invalid.

Frames
------
- A `~astropy.coordinates.SkyCoord` column carries its own frame.
- ``l``/``b`` (lower case only: ``B`` and ``L`` are often a magnitude and
  a luminosity), ``GLON``/``GLAT``, ``LII``/``BII`` and ``gal_l``/``gal_b``
  are Galactic, and so are columns whose UCDs are ``pos.galactic.lon`` and
  ``pos.galactic.lat``.
- ``ELON``/``ELAT`` and ``ecl_lon``/``ecl_lat`` (Gaia), and columns whose
  UCDs are ``pos.ecliptic.lon`` and ``pos.ecliptic.lat``, are ecliptic
  (`~astropy.coordinates.BarycentricMeanEcliptic`, equinox J2000).
- ``RAB1950``/``DEB1950`` are FK4 (B1950).
- Every other right ascension/declination pair (``ra``/``dec``, ``RA``/``DEC``,
  ``RAJ2000``/``DEJ2000``, ``_RAJ2000``/``_DEJ2000``, ``RA_ICRS``/``DE_ICRS``,
  ``ALPHA_J2000``/``DELTA_J2000``, ...) is taken as ICRS, the ``J2000``
  names included: catalogues label ICRS positions at epoch J2000 that way
  (VizieR's ``RAJ2000`` of Gaia-era catalogues, SExtractor's
  ``ALPHA_J2000`` from a WCS in ICRS), and FK5 (J2000) differs from ICRS
  by less than 0.03 arcsec, far below the separations a cross-match uses.
  Pass ``frame="fk5"`` when the difference matters. A table whose meta
  declares its system with the FITS keywords ``RADESYS`` and ``EQUINOX``
  (as a FITS table's header does) has its right ascension/declination
  columns read in that frame: ``RADESYS = 'FK5'`` is FK5 (J2000 unless
  ``EQUINOX`` says otherwise), ``EQUINOX = 1950`` alone FK4 (B1950).
- Columns named by the caller (``"l,b"``, ``("RAJ2000", "DEJ2000")``) take
  the frame their names imply, in any case (``l,b`` and ``L,B`` are
  Galactic); other names are ICRS unless ``frame`` says otherwise. A frame
  may follow the names: ``"lon,lat:galactic"`` or ``"lon,lat,galactic"``.

Values are in the column's unit, degrees when it has none; string columns
are read as sexagesimal angles (hours for right ascension) or decimal
degrees.

`astropy.coordinates.SkyCoord.guess_from_table` was considered: it needs
the frame given in advance, does not recognise ``RAJ2000`` (its docstring
says so) or ``GLON``, and reads ``ra_err`` as a second ``ra`` column, so it
is not used.
"""

import dataclasses

import numpy as np
import astropy.units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table

from ..exceptions import InputError
from .columns import COLUMNS
from .frames import _family, _meta_frame, _same_frame, parse_frame
from .position_columns import _find, _named, _nothing_found, _split_spec
from .position_values import _angle_values, _filled, _pixel_values

__all__ = ["POSITION_KINDS", "Positions", "parse_positions", "add_sky_columns"]

#: What `parse_positions` looks for: ``'sky'``, ``'pixel'``, or ``'any'`` (pixel first).
POSITION_KINDS = ("sky", "pixel", "any")


@dataclasses.dataclass(frozen=True, eq=False)
class Positions:
    """
    The positions of a table's rows, as `parse_positions` found them.

    Attributes
    ----------
    kind : {'sky', 'pixel'}
        Which they are.
    columns : tuple of str
        The columns they came from (one SkyCoord column, or two).
    frame : str or None
        The frame the sky columns are in (``'icrs'``, ``'galactic'``,
        ``'fk5'``...), None for pixels.
    sky : `~astropy.coordinates.SkyCoord` or None
        ICRS, one per row (NaN for invalid rows), for sky positions.
    x, y : `~numpy.ndarray` or None
        0-based pixels, float64 (NaN for invalid rows), for pixel positions.
    valid : `~numpy.ndarray`
        True for the rows with a finite position.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.table import QTable
    >>> from astrofmtools.schema import parse_positions
    >>> pos = parse_positions(QTable({"x": [1.0, np.nan], "y": [2.0, 3.0]}))
    >>> pos.kind, pos.columns, pos.valid.tolist()
    ('pixel', ('x', 'y'), [True, False])
    """

    kind: str
    columns: tuple
    frame: object
    sky: object
    x: object
    y: object
    valid: np.ndarray

    def describe(self):
        """
        Where the positions came from, in words.

        Examples
        --------
        >>> from astropy.table import QTable
        >>> from astrofmtools.schema import parse_positions
        >>> parse_positions(QTable({"l": [0.0], "b": [0.0]}), kind="sky").describe()
        "columns 'l', 'b' (galactic)"
        """
        what = (f"column {self.columns[0]!r}" if len(self.columns) == 1 else
                f"columns {', '.join(map(repr, self.columns))}")
        return f"{what} ({self.frame if self.kind == 'sky' else '0-based pixels'})"

    def pixels(self, wcs):
        """
        0-based pixel positions ``(x, y)``: the table's own, or the sky
        positions through ``wcs`` (NaN for invalid rows).
        """
        if self.kind == "pixel":
            return self.x, self.y
        x, y = np.full(len(self.valid), np.nan), np.full(len(self.valid), np.nan)
        if self.valid.any():
            px, py = wcs.world_to_pixel(self.sky[self.valid])
            x[self.valid], y[self.valid] = np.ravel(px), np.ravel(py)
        return x, y


def parse_positions(table, columns=None, frame=None, *, kind="any", name="the table",
                    argument="columns", hint=None, required=True):
    """
    The positions of a table's rows: pixels or sky, with their frame.

    Parameters
    ----------
    table : `~astropy.table.Table`
        The table.
    columns : str or sequence of str, optional
        The columns to read: one `~astropy.coordinates.SkyCoord` column,
        two columns (``"l,b"`` or ``("RAJ2000", "DEJ2000")``: longitude and
        latitude, or x and y for pixels), or longitude, latitude and a
        frame name (``"l,b,galactic"``, ``"l,b:galactic"``). Found in any
        case. By default the table's own, found by name: ``x``/``y``; a
        SkyCoord column (``sky_centroid`` first); the pairs of
        `SKY_COLUMN_PAIRS`; columns with ``pos.eq.ra``/``pos.eq.dec``,
        ``pos.galactic.lon``/``lat`` or ``pos.ecliptic.lon``/``lat`` UCDs.
    frame : str or `~astropy.coordinates.BaseCoordinateFrame`, optional
        The frame of longitude/latitude columns (``'icrs'``, ``'fk5'``,
        ``'galactic'``, an astropy frame). By default the one their names
        imply (see the module's notes: ``l``/``b``, ``GLON``/``GLAT`` are
        Galactic, ``ELON``/``ELAT`` ecliptic, right ascension/declination
        ICRS, or the frame the table's meta declares with ``RADESYS`` and
        ``EQUINOX``). With columns found
        by name, only pairs of that frame's kind are looked for (Galactic
        names for ``'galactic'``, right ascension/declination for
        equatorial frames). A SkyCoord column keeps its own frame.
    kind : {'any', 'sky', 'pixel'}, optional
        What to look for: ``'any'`` takes pixels when the table has ``x``
        and ``y``, else sky positions; two named columns are then sky
        positions when their names, units (angles) or UCDs say so, else
        pixels.
    name : str, optional
        How to call the table in error messages (e.g. its file name).
    argument : str, optional
        The argument that names the columns, for error messages: a keyword
        (``'sky'``, shown ``sky=``) or a command-line option (``'--sky'``,
        shown as it is).
    hint : str, optional
        Added to the message when nothing is found.
    required : bool, optional
        Raise when the table has no positions; else return None.

    Returns
    -------
    positions : `Positions` or None
        ``kind``, ``columns``, ``frame``, ``sky`` (ICRS) or ``x``, ``y``,
        and ``valid`` (rows with finite positions; masked and NaN values
        are invalid, not errors).

    Raises
    ------
    astrofmtools.InputError
        When the table has no positions (with ``required``; the message
        lists what was looked for and the table's columns), a named column
        is missing, a column is not numbers or angles, a pixel column is an
        angle, an unknown frame, or a latitude outside -90..90 degrees (the
        message names the table, the column and the rows).

    Examples
    --------
    Galactic ``l``/``b`` columns: the Galactic centre in ICRS.

    >>> from astropy.table import QTable
    >>> from astrofmtools.schema import parse_positions
    >>> pos = parse_positions(QTable({"l": [0.0], "b": [0.0]}), kind="sky")
    >>> pos.frame, pos.columns, pos.sky.to_string("decimal", precision=3)
    ('galactic', ('l', 'b'), ['266.405 -28.936'])

    Columns named by the caller, and pixels:

    >>> t = QTable({"RAJ2000": ["10 00 00.0"], "DEJ2000": ["+02 00 00"], "x": [5.0],
    ...             "y": [7.5]})
    >>> parse_positions(t, "RAJ2000,DEJ2000", kind="sky").sky.ra.deg
    array([150.])
    >>> pos = parse_positions(t)
    >>> pos.kind, pos.x, pos.y
    ('pixel', array([5.]), array([7.5]))
    """
    if not isinstance(table, Table):
        raise InputError(f"{name} must be an astropy Table, not {type(table).__name__}.")
    if kind not in POSITION_KINDS:
        raise InputError(f"kind must be one of {', '.join(POSITION_KINDS)}, not {kind!r}.")
    given = parse_frame(frame) if frame is not None else None
    spec = _split_spec(columns, argument)
    if spec is not None and len(spec) == 3:
        third = parse_frame(spec[2])
        if given is not None and not _same_frame(given, third):
            raise InputError(f"{argument}={columns!r} names the frame {third.name}, but "
                             f"frame= is {given.name}; give one.")
        given, spec = third, spec[:2]
    if spec is None:
        found = _find(table, kind, given)
        if found is None:
            if not required:
                return None
            raise InputError(_nothing_found(table, kind, given, name, argument, hint))
    else:
        found = _named(table, spec, kind, given, name, argument)
    where, names, frame = found
    if given is None and where == "sky" and len(names) == 2 and frame.name == "icrs":
        declared = _meta_frame(table.meta, name)  # RADESYS/EQUINOX: FK5, FK4...
        frame = frame if declared is None else declared
    if where == "pixel":
        x = _pixel_values(table, names[0], name)
        y = _pixel_values(table, names[1], name)
        return Positions("pixel", tuple(names), None, None, x, y,
                         np.isfinite(x) & np.isfinite(y))
    if len(names) == 1:
        return _from_skycoord(table, names[0], name)
    return _from_lonlat(table, names, frame, name)


def add_sky_columns(table, wcs, x, y):
    """
    Add the ICRS sky position of 0-based pixel positions as ``sky_centroid``
    (a `~astropy.coordinates.SkyCoord`) and ``ra``, ``dec`` (degrees).

    Parameters
    ----------
    table : `~astropy.table.QTable`
        Gets the three columns (an empty table gets empty ones), described
        as the column registry describes them.
    wcs : `~astropy.wcs.WCS`
        The image's celestial WCS (any frame; converted to ICRS).
    x, y : array-like
        0-based pixel positions, one per row.

    Examples
    --------
    >>> from astropy.table import QTable
    >>> from astrofmtools.schema import add_sky_columns
    >>> from astrofmtools.io import load_image
    >>> from astrofmtools.datasets import example_image_path
    >>> image = load_image(example_image_path())
    >>> table = QTable({"x": [149.5], "y": [149.5]})
    >>> add_sky_columns(table, image.wcs, table["x"], table["y"])
    >>> print(f"{table['ra'][0]:.4f} {table['dec'][0]:.4f}")
    216.0140 deg 0.4994 deg
    """
    x = np.asarray(x, dtype=float)
    if len(x):
        sky = wcs.pixel_to_world(x, np.asarray(y, dtype=float)).icrs
        sky = SkyCoord(sky.ra, sky.dec, frame="icrs")
    else:
        sky = SkyCoord(np.zeros(0) * u.deg, np.zeros(0) * u.deg, frame="icrs")
    table["sky_centroid"] = sky
    table["ra"] = sky.ra.to(u.deg)
    table["dec"] = sky.dec.to(u.deg)
    for col in ("sky_centroid", "ra", "dec"):
        table[col].info.description = COLUMNS[col].description


# ----------------------------------------------------------------------------
# ICRS positions from sky columns

def _from_skycoord(table, col_name, name):
    sky = table[col_name]
    frame = sky.frame.name
    try:
        icrs = sky if frame == "icrs" else sky.icrs
    except Exception as exc:  # noqa: BLE001 - frames that need more attributes
        raise InputError(f"Cannot convert the SkyCoord column {col_name!r} of {name} "
                         f"({frame}) to ICRS: {exc}") from None
    ra = _filled(icrs.ra.to_value(u.deg))
    dec = _filled(icrs.dec.to_value(u.deg))
    valid = np.isfinite(ra) & np.isfinite(dec)
    out = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs")
    return Positions("sky", (col_name,), frame, out, None, None, valid)


def _from_lonlat(table, names, frame, name):
    hours = _family(frame) == ("ra", "dec")
    lon = _angle_values(table, names[0], name, hours=hours)
    lat = _angle_values(table, names[1], name, hours=False)
    bad = np.flatnonzero(np.isfinite(lat) & (np.abs(lat) > 90))
    if bad.size:
        rows = ", ".join(f"row {r} has {lat[r]:g} deg" for r in bad[:5])
        more = f" ({bad.size - 5} more rows too)" if bad.size > 5 else ""
        raise InputError(f"Column {names[1]!r} of {name}, read as {frame.name} latitude, holds "
                         f"values outside -90..90 deg: {rows} (0-based){more}. Are these the "
                         "right columns, longitude first?")
    valid = np.isfinite(lon) & np.isfinite(lat)
    if frame.name == "icrs":
        ra, dec = lon, lat
    else:
        ra, dec = np.full(len(lon), np.nan), np.full(len(lat), np.nan)
        if valid.any():
            try:
                icrs = SkyCoord(lon[valid] * u.deg, lat[valid] * u.deg, frame=frame).icrs
            except Exception as exc:  # noqa: BLE001 - frames that need more attributes
                raise InputError(f"Cannot convert columns {names[0]!r}, {names[1]!r} of "
                                 f"{name} from {frame.name} to ICRS: {exc}") from None
            ra[valid], dec[valid] = icrs.ra.deg, icrs.dec.deg
    sky = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs")
    return Positions("sky", tuple(names), frame.name, sky, None, None, valid)
