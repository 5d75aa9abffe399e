# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The column registry: the name, unit and description of every column the
stages write, so that a column means the same in every table.

A stage that writes a column the registry lacks registers it (one line,
`register_column`); `describe_columns` gives a table the registered
descriptions and units. Stages may describe a column more precisely in
their own tables (``find_sources`` says how its ``x`` is measured); the
registry holds what the name means everywhere.
"""

import dataclasses

import astropy.units as u
from astropy.table import Table
from astropy.table.column import BaseColumn

from ..exceptions import InputError
from ..utils.registry import Registry

__all__ = ["ColumnSpec", "COLUMNS", "BBOX_COLUMNS", "register_column", "column_spec",
           "describe_columns"]

#: The bounding-box columns: 0-based pixel indices of the first and last column and
#: row of a box, inclusive (floats allowed: sub-pixel boxes).
BBOX_COLUMNS = ("bbox_xmin", "bbox_xmax", "bbox_ymin", "bbox_ymax")


@dataclasses.dataclass(frozen=True)
class ColumnSpec:
    """
    What a table column means: its name, unit and description.

    Attributes
    ----------
    name : str
        The column name.
    unit : `~astropy.units.UnitBase` or None
        The unit its values are in (None: no unit, or one that depends on
        the data, such as a flux in the image's unit).
    description : str
        One line, as written to the column's ``description``.

    Examples
    --------
    >>> from astrofmtools.schema import column_spec
    >>> spec = column_spec("ra")
    >>> spec.name, spec.unit
    ('ra', Unit("deg"))
    """

    name: str
    unit: object
    description: str


#: The registered columns: name -> `ColumnSpec`. Add to it with `register_column`.
COLUMNS = Registry("column")


def register_column(name, unit=None, description="", *, overwrite=False):
    """
    Register a table column: its name, unit and description.

    Parameters
    ----------
    name : str
        The column name.
    unit : `~astropy.units.UnitBase` or str, optional
        Its unit; None when it has none or when it depends on the data.
    description : str, optional
        One line describing it.
    overwrite : bool, optional
        Replace a different registration of the same name.

    Returns
    -------
    spec : `ColumnSpec`
        The registered column.

    Raises
    ------
    astrofmtools.InputError
        For an empty name, a unit astropy does not know, or a name
        registered already with another unit or description (without
        ``overwrite``).

    Examples
    --------
    >>> import astropy.units as u
    >>> from astrofmtools.schema import COLUMNS, register_column
    >>> register_column("int_flux", u.mJy, "Integrated flux density")
    ColumnSpec(name='int_flux', unit=Unit("mJy"), description='Integrated flux density')
    >>> COLUMNS["int_flux"].unit
    Unit("mJy")
    """
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"A column name must be a non-empty string, not {name!r}.")
    if unit is not None:
        try:
            unit = u.Unit(unit)
        except (ValueError, TypeError):
            raise InputError(f"Column {name!r}: {unit!r} is not a unit astropy knows.") from None
    spec = ColumnSpec(name, unit, str(description))
    old = COLUMNS.get(name)
    if old is not None and old != spec and not overwrite:
        raise InputError(f"Column {name!r} is registered already (unit {old.unit}, "
                         f"{old.description!r}); pass overwrite=True to replace it.")
    return COLUMNS.add(name, spec, overwrite=True)


def column_spec(name):
    """
    The registered `ColumnSpec` of a column name.

    Raises
    ------
    astrofmtools.InputError
        For a name that is not registered (the message lists the known ones).

    Examples
    --------
    >>> from astrofmtools.schema import column_spec
    >>> column_spec("dec").unit, column_spec("dec").description
    (Unit("deg"), 'Declination (ICRS)')
    """
    return COLUMNS.lookup(name)


def describe_columns(table, descriptions=None, *, units=True, overwrite=False,
                     name="the table"):
    """
    Give a table's columns their registered descriptions and units, in place.

    Parameters
    ----------
    table : `~astropy.table.Table` or `~astropy.table.QTable`
        The table; columns the registry does not know are left alone.
    descriptions : dict, optional
        Descriptions of this table's own (name -> text), set whatever the
        columns had; they take precedence over the registry's.
    units : bool, optional
        Put numeric columns with a registered unit in that unit: a column
        without a unit gets it, a column with a unit is converted. In a
        `~astropy.table.QTable` they become Quantities.
    overwrite : bool, optional
        Replace the descriptions the columns have already (by default only
        empty ones are filled from the registry).
    name : str, optional
        How to call the table in error messages.

    Returns
    -------
    table : `~astropy.table.Table`
        The same table.

    Raises
    ------
    astrofmtools.InputError
        For a column whose unit cannot be converted to the registered one
        (the message names the table and the column).

    Examples
    --------
    >>> from astropy.table import QTable
    >>> from astrofmtools.schema import describe_columns
    >>> t = describe_columns(QTable({"ra": [150.0], "dec": [2.0], "mine": [1]}))
    >>> t["ra"], t["dec"].info.description
    (<Quantity [150.] deg>, 'Declination (ICRS)')
    """
    if not isinstance(table, Table):
        raise InputError(f"{name} must be an astropy Table, not {type(table).__name__}.")
    descriptions = dict(descriptions or {})
    for col_name in table.colnames:
        spec = COLUMNS.get(col_name)
        col = table[col_name]
        if units and spec is not None and spec.unit is not None:
            col = _with_unit(table, col_name, spec.unit, name)
        if col_name in descriptions:
            col.info.description = descriptions[col_name]
        elif spec is not None and spec.description and (overwrite or not col.info.description):
            col.info.description = spec.description
    return table


def _with_unit(table, col_name, unit, name):
    """The column in ``unit`` (set in the table); other kinds of columns as they are."""
    col = table[col_name]
    description = col.info.description
    try:
        if isinstance(col, u.Quantity):
            new = col.to(unit)
        elif isinstance(col, BaseColumn) and col.dtype.kind in "fiu":
            new = col.copy()
            if new.unit is None:
                new.unit = unit
            else:
                new.convert_unit_to(unit)
            # a QTable turns a Column with a unit into a Quantity (masked ones too)
        else:
            return col
    except u.UnitsError:
        raise InputError(f"Column {col_name!r} of {name} is in {col.unit}, which cannot be "
                         f"converted to its registered unit {unit}.") from None
    table.replace_column(col_name, new)
    table[col_name].info.description = description
    return table[col_name]


# --------------------------------------------------------------- registered
_PIX = u.pix
for _name, _unit, _description in (
    ("id", None, "Row number, 1..N"),
    ("x", _PIX, "Position x (0-based pixel; pixel centres at integers)"),
    ("y", _PIX, "Position y (0-based pixel; pixel centres at integers)"),
    ("sky_centroid", None, "Sky position (ICRS)"),
    ("ra", u.deg, "Right ascension (ICRS)"),
    ("dec", u.deg, "Declination (ICRS)"),
    ("bbox_xmin", None, "Box: first column (0-based pixel, inclusive)"),
    ("bbox_xmax", None, "Box: last column (0-based pixel, inclusive)"),
    ("bbox_ymin", None, "Box: first row (0-based pixel, inclusive)"),
    ("bbox_ymax", None, "Box: last row (0-based pixel, inclusive)"),
    ("area", _PIX ** 2, "Number of pixels in the source"),
    ("flux", None, "Flux (the image's unit; for images in X/beam, divided by the beam area)"),
    ("peak", None, "Highest pixel value of the source (the image's unit)"),
    ("snr", None, "Signal-to-noise ratio: peak over the local noise rms"),
    ("semimajor", _PIX, "Semi-major axis, 1-sigma of the light distribution (pixels)"),
    ("semiminor", _PIX, "Semi-minor axis, 1-sigma of the light distribution (pixels)"),
    ("orientation", u.deg, "Angle of the major axis from +x, counter-clockwise"),
    ("pa", u.deg, "Position angle of the major axis on the sky, east of north"),
    ("label", None, "Class: a name, or a class number"),
    ("label_id", None, "Class number (1..K; 0 is the background)"),
    ("probability", None, "Probability of each class (or of the label)"),
    ("score", None, "Confidence of a detection or prediction (higher is surer)"),
    ("image", None, "The image the row belongs to"),
    ("tile", None, "Index (0-based, row-major) of the tile the row was kept from"),
    ("separation", u.arcsec, "Angular separation from the matched source"),
    ("n_matches", None, "Number of reference sources within the match radius"),
    ("ref_index", None, "0-based row index of the matched source in the reference"),
):
    register_column(_name, _unit, _description)
del _name, _unit, _description
