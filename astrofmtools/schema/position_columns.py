# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Finding the position columns of a table: pixels, a SkyCoord column, known
longitude/latitude pairs, UCDs, or the columns the caller names.
"""

from astropy.coordinates import SkyCoord

from ..exceptions import InputError
from .frames import (_CASE_SENSITIVE, _UCDS, SKY_COLUMN_PAIRS, _family, _implied_frame,
                     parse_frame)

__all__ = []


def _said(argument, value=None):
    """How a message names the argument: ``xy=`` / ``sky='c'`` for a keyword of a
    function, ``--xy`` / ``--sky c`` for a command-line option (an ``argument`` that
    starts with ``-``)."""
    if str(argument).startswith("-"):
        return argument if value is None else f"{argument} {value}"
    return f"{argument}=" if value is None else f"{argument}={value!r}"


def _split_spec(columns, argument):
    """None, or a tuple of 1 to 3 stripped names."""
    if columns is None:
        return None
    if isinstance(columns, str):
        names, colon, frame = columns.rpartition(":")  # "l,b:galactic"
        text = names if colon and "," in names and frame.strip() else columns
        spec = tuple(part.strip() for part in text.split(","))
        if text is names:
            spec = spec + (frame.strip(),) if len(spec) == 2 else ()
    else:
        try:
            spec = tuple(columns)
        except TypeError:
            spec = ()
        if not all(isinstance(c, str) for c in spec[:2]):
            spec = ()
    if not 1 <= len(spec) <= 3 or not all(spec[:2]):
        raise InputError(f"{_said(argument)} must name a SkyCoord column or two columns "
                         f"(longitude, latitude or x, y), optionally with a frame; got "
                         f"{columns!r}.")
    return spec


def _column(table, name):
    """The table's column called ``name``, in any case (exact case first), or None."""
    if name in table.colnames:
        return name
    lower = {n.lower(): n for n in reversed(table.colnames)}
    return lower.get(str(name).lower())


def _is_sky(table, name):
    return isinstance(table[name], SkyCoord)


def _pairs(table, given):
    """Known (lon, lat, frame) pairs the table has, in order of preference."""
    family = _family(given) if given is not None else None
    for lon, lat, frame in SKY_COLUMN_PAIRS:
        if family is not None and _family(frame) != family:
            continue
        if (lon, lat) in _CASE_SENSITIVE:
            names = (lon if lon in table.colnames else None,
                     lat if lat in table.colnames else None)
        else:
            names = (_column(table, lon), _column(table, lat))
        if None not in names and not any(_is_sky(table, n) for n in names):
            yield names[0], names[1], frame


def _ucd_pair(table, given):
    """(lon, lat, frame) of columns marked by UCDs (VizieR and TAP VOTables), or None."""
    family = _family(given) if given is not None else None
    for (ucd_lon, ucd_lat), frame in _UCDS.items():
        if family is not None and _family(frame) != family:
            continue
        found = {}
        for col_name in table.colnames:
            meta = getattr(table[col_name].info, "meta", None) or {}
            ucd = str(meta.get("ucd", "")).lower()
            for key in (ucd_lon, ucd_lat):
                if ucd.startswith(key) and (ucd[len(key):len(key) + 1] in ("", ";")):
                    main = "meta.main" in ucd
                    if key not in found or (main and not found[key][1]):
                        found[key] = (col_name, main)
        if ucd_lon in found and ucd_lat in found:
            return found[ucd_lon][0], found[ucd_lat][0], frame
    return None


def _find(table, kind, given):
    """(where, names, frame) of the table's own positions, or None."""
    names = table.colnames
    if kind in ("pixel", "any") and "x" in names and "y" in names:
        return "pixel", ("x", "y"), None
    if kind == "pixel":
        return None
    if "sky_centroid" in names and _is_sky(table, "sky_centroid"):
        return "sky", ("sky_centroid",), None
    for col_name in names:
        if _is_sky(table, col_name):
            return "sky", (col_name,), None
    for lon, lat, frame in _pairs(table, given):
        return "sky", (lon, lat), given if given is not None else parse_frame(frame)
    found = _ucd_pair(table, given)
    if found is not None:
        return "sky", found[:2], given if given is not None else parse_frame(found[2])
    return None


def _named(table, spec, kind, given, name, argument):
    """(where, names, frame) of the columns the caller named."""
    names = []
    for col in spec:
        found = _column(table, col)
        if found is None:
            raise InputError(f"{name} has no column {col!r} ({_said(argument)}); its columns "
                             f"are: {_shown(table)}.")
        names.append(found)
    if len(names) == 1:
        if kind == "pixel" or not _is_sky(table, names[0]):
            need = ("two columns (x, y)" if kind == "pixel" else
                    "a SkyCoord column or two columns (longitude, latitude)")
            raise InputError(f"{name} has no SkyCoord column {spec[0]!r} "
                             f"({_said(argument)}); give {need}.")
        return "sky", tuple(names), None
    for col in names:
        if _is_sky(table, col):
            raise InputError(f"Column {col!r} of {name} is a SkyCoord column; name it alone "
                             f"({_said(argument, col)}).")
    if kind == "pixel":
        return "pixel", tuple(names), None
    implied = _implied_frame(table, names)
    if kind == "any" and given is None and implied is None and not any(
            _is_angle(table[n]) for n in names):
        return "pixel", tuple(names), None
    frame = given if given is not None else parse_frame(implied or "icrs")
    return "sky", tuple(names), frame


def _is_angle(col):
    unit = getattr(col, "unit", None)
    return unit is not None and unit.physical_type == "angle"


def _shown(table, most=25):
    names = table.colnames
    return (", ".join(names[:most]) + (", ..." if len(names) > most else "")) or "(none)"


def _nothing_found(table, kind, given, name, argument, hint):
    pairs = ", ".join(f"{lon!r}/{lat!r}" for lon, lat, frame in SKY_COLUMN_PAIRS
                      if given is None or _family(frame) == _family(given))
    sky = (f"a SkyCoord column ('sky_centroid' first), longitude/latitude columns "
           f"({pairs or 'none of that frame'}; any case, but 'l'/'b' in lower case) and "
           "pos.eq.ra/pos.eq.dec, pos.galactic.lon/lat or pos.ecliptic.lon/lat UCDs")
    looked = {"pixel": "columns 'x' and 'y' (0-based pixel)",
              "sky": sky,
              "any": f"columns 'x' and 'y' (0-based pixel), {sky}"}[kind]
    what = {"pixel": "pixel positions", "sky": "sky positions", "any": "source positions"}[kind]
    return (f"{name} has no {what}: looked for {looked}; its columns are: {_shown(table)}. "
            f"Name them with {_said(argument)}{f' {hint}' if hint else ''}.")
