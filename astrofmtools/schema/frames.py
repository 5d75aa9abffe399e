# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Sky frames: astropy frames from their names, and the frames that position
column names (or their UCDs) imply.
"""

import functools

from astropy.coordinates import BaseCoordinateFrame, SkyCoord, frame_transform_graph

from ..exceptions import InputError

__all__ = ["SKY_COLUMN_PAIRS", "parse_frame"]

#: The frame of ecliptic columns (``ELON``/``ELAT``, Gaia's ``ecl_lon``/``ecl_lat``): the
#: mean ecliptic and equinox of J2000, rotated from ICRS as Gaia computes its columns.
_ECLIPTIC = "barycentricmeanecliptic"

#: Longitude/latitude column pairs found by name (any case, except ``l``/``b``), in
#: order of preference, with their frame.
SKY_COLUMN_PAIRS = (
    ("ra", "dec", "icrs"),
    ("RAJ2000", "DEJ2000", "icrs"), ("_RAJ2000", "_DEJ2000", "icrs"),
    ("RAJ2000", "DECJ2000", "icrs"), ("RA_J2000", "DEC_J2000", "icrs"),
    ("RA_ICRS", "DE_ICRS", "icrs"), ("RA_ICRS", "DEC_ICRS", "icrs"),
    ("ra_deg", "dec_deg", "icrs"), ("RAdeg", "DEdeg", "icrs"),
    ("ALPHA_J2000", "DELTA_J2000", "icrs"), ("alpha", "delta", "icrs"),
    ("RAB1950", "DEB1950", "fk4"), ("_RAB1950", "_DEB1950", "fk4"),
    ("GLON", "GLAT", "galactic"), ("_GLON", "_GLAT", "galactic"), ("LII", "BII", "galactic"),
    ("gal_l", "gal_b", "galactic"), ("l", "b", "galactic"),
    ("ELON", "ELAT", _ECLIPTIC), ("ecl_lon", "ecl_lat", _ECLIPTIC),
)
_CASE_SENSITIVE = {("l", "b")}
_UCDS = {("pos.eq.ra", "pos.eq.dec"): "icrs", ("pos.galactic.lon", "pos.galactic.lat"): "galactic",
         ("pos.ecliptic.lon", "pos.ecliptic.lat"): _ECLIPTIC}
#: Other names `parse_frame` takes.
_FRAME_ALIASES = {"ecliptic": _ECLIPTIC, "gal": "galactic", "equatorial": "icrs"}


def parse_frame(frame):
    """
    An astropy frame (without data) from its name, class or an instance.

    Raises
    ------
    astrofmtools.InputError
        For a name astropy does not know (the message lists some it does).

    Examples
    --------
    >>> from astrofmtools.schema import parse_frame
    >>> parse_frame("Galactic").name, parse_frame("fk5").equinox.jyear.item()
    ('galactic', 2000.0)
    >>> parse_frame("ecliptic").name
    'barycentricmeanecliptic'
    """
    if isinstance(frame, SkyCoord):
        frame = frame.frame
    if isinstance(frame, BaseCoordinateFrame):
        return frame.replicate_without_data() if frame.has_data else frame
    if isinstance(frame, type) and issubclass(frame, BaseCoordinateFrame):
        return frame()
    if isinstance(frame, str):
        key = frame.strip().lower()
        cls = frame_transform_graph.lookup_name(_FRAME_ALIASES.get(key, key))
        if cls is not None:
            return cls()
    known = ", ".join(n for n in ("icrs", "fk5", "fk4", "galactic", "ecliptic",
                                  "supergalactic", "barycentrictrueecliptic")
                      if frame_transform_graph.lookup_name(_FRAME_ALIASES.get(n, n)))
    raise InputError(f"Unknown sky frame {frame!r}: give an astropy frame or its name, such "
                     f"as {known}.")


def _family(frame):
    """The names of a frame's longitude and latitude (('ra', 'dec'), ('l', 'b'), ...)."""
    if isinstance(frame, str):
        return _named_family(frame)
    return tuple(frame.representation_component_names)[:2]


@functools.lru_cache(maxsize=None)
def _named_family(frame):
    return _family(parse_frame(frame))


def _same_frame(a, b):
    return a.is_equivalent_frame(b) if type(a) is type(b) else False


def _implied_frame(table, names):
    """The frame a pair of column names (or their UCDs) implies, or None."""
    for lon, lat, frame in SKY_COLUMN_PAIRS:  # any case: named, L/B are Galactic too
        if (names[0].lower(), names[1].lower()) == (lon.lower(), lat.lower()):
            return frame
    ucds = [str((getattr(table[n].info, "meta", None) or {}).get("ucd", "")).lower()
            for n in names]
    for (ucd_lon, ucd_lat), frame in _UCDS.items():
        if ucds[0].startswith(ucd_lon) and ucds[1].startswith(ucd_lat):
            return frame
    return None


def _meta_frame(meta, name="the table"):
    """
    The equatorial frame a table's meta declares with the FITS keywords
    ``RADESYS`` (or ``RADECSYS``) and ``EQUINOX`` (any case), or None.

    As FITS WCS (Calabretta & Greisen 2002, section 3.1) reads them:
    ``RADESYS`` names the system (``ICRS``, ``FK5``, ``FK4``,
    ``FK4-NO-E``), ``EQUINOX`` its equinox (J2000 for FK5, B1950 for FK4
    when absent); ``EQUINOX`` alone means FK4 before 1984, else FK5.
    """
    keys = {str(k).upper(): v for k, v in (meta or {}).items()}
    system = keys.get("RADESYS", keys.get("RADECSYS"))
    equinox = keys.get("EQUINOX")
    if system is None and equinox is None:
        return None
    year = None
    if equinox is not None:
        text = str(equinox).strip().upper()
        try:
            year = float(text[1:] if text[:1] in ("J", "B") else text)
        except ValueError:
            year = float("nan")
        if not 1000 < year < 3000:
            raise InputError(f"The meta of {name} has EQUINOX={equinox!r}, not a year; give "
                             "the frame of its positions (frame=, or --frame).")
    system = str(system).strip().upper() if system is not None else (
        "FK4" if year < 1984 else "FK5")
    if system == "ICRS":
        return parse_frame("icrs")
    if system == "FK5":
        from astropy.coordinates import FK5
        return FK5(equinox=f"J{year if year is not None else 2000.0}")
    if system in ("FK4", "FK4-NO-E"):
        from astropy.coordinates import FK4, FK4NoETerms
        cls = FK4 if system == "FK4" else FK4NoETerms
        return cls(equinox=f"B{year if year is not None else 1950.0}")
    raise InputError(f"The meta of {name} has RADESYS={system!r}, a system whose positions "
                     "cannot be read without more information; give their frame (frame=, or "
                     "--frame) or remove the keyword.")
