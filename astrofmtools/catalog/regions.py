# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
DS9 and CRTF region files from source tables, and back (`write_regions`,
`read_regions`).

The shapes are built with the `regions` package (`table_to_regions`), which
also writes and parses the files; `regions_to_table` tabulates them. Table
positions are 0-based pixels; the conversion to DS9's 1-based ``image``
coordinates happens inside `regions`.
"""

from pathlib import Path

from ..exceptions import InputError, MissingFileError
from ..utils import atomic_output, provenance
from .region_inputs import _check_choice
from .region_shapes import table_to_regions
from .region_table import regions_to_table

__all__ = ["REGION_FORMATS", "write_regions", "read_regions"]

#: Region file formats that `write_regions` and `read_regions` handle.
REGION_FORMATS = ("ds9", "crtf")

_EXTENSIONS = {".reg": "ds9", ".ds9": "ds9", ".crtf": "crtf", ".crt": "crtf"}


def write_regions(table, path, format="ds9", shape="circle", wcs=None, text="auto",
                  label="auto", score="auto", radius=None, scale=2.5, color=None,
                  color_by=None, cmap="viridis", precision=8, overwrite=False):
    """
    Write a source table as a DS9 or CRTF region file.

    The regions are built by `table_to_regions` (see there for how
    positions, sizes, text and colours are chosen) and written by
    `regions.Regions.write`, through a temporary file renamed into place.

    Parameters
    ----------
    table : `~astropy.table.Table`
        Sources with ``x``, ``y`` (0-based pixel) and/or ``sky_centroid`` or
        ``ra``, ``dec``; optional size, ``label``, ``id`` and ``score``
        columns.
    path : str or `~pathlib.Path`
        The region file to write.
    format : {'ds9', 'crtf'}, optional
        DS9 (also read by CARTA, Aladin, JS9) or CASA's CRTF (CASA,
        CARTA). CRTF files hold sky regions only, so they need ``wcs`` or
        sky positions with an angular ``radius``.
    shape : {'circle', 'box', 'ellipse'}, optional
        The shape drawn around each source.
    wcs : `~astropy.wcs.WCS`, `~astropy.io.fits.Header`, `~astropy.nddata.NDData` or str, optional
        The image's WCS: regions are written in sky (ICRS) coordinates.
        Without it, DS9 regions are in ``image`` (pixel) coordinates,
        which DS9 counts from 1: a source at 0-based ``x = 0`` is written
        at 1.
    text : str, bool or None, optional
        ``'auto'``: each region's text (class and score, or id) only when
        there are at most `REGION_TEXT_LIMIT` (100) regions; True: always;
        False or None: never; a column name: that column. As in
        `table_to_regions`.
    label, score, radius, scale, color, color_by, cmap
        As in `table_to_regions`: ``color_by`` names the column the
        colours follow (classes: a palette; numbers: the colour map
        ``cmap``).
    precision : int, optional
        Decimal places of the numbers in the file (8 decimal places of a
        degree are 36 micro-arcseconds).
    overwrite : bool, optional
        Replace an existing file.

    Raises
    ------
    astrofmtools.InputError
        For an unsupported format (the message lists the supported ones),
        an existing file without ``overwrite``, pixel regions in CRTF, or a
        table without the columns the shape needs.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from astropy.table import QTable
    >>> from astrofmtools.catalog import read_regions, write_regions
    >>> from astrofmtools.datasets import example_image_path
    >>> table = QTable({"x": [149.0, 120.5], "y": [160.0, 140.0], "id": [1, 2]})
    >>> path = Path(tempfile.mkdtemp()) / "sources.reg"
    >>> write_regions(table, path, wcs=example_image_path(), radius=4)
    >>> print(path.read_text())  # radius 4 pixels = 7.2 arcsec
    # Region file format: DS9 astropy/regions
    global color=green
    icrs
    circle(216.01424370,0.50467979,0.00200000) # text={1}
    circle(216.02849423,0.49467978,0.00200000) # text={2}
    <BLANKLINE>
    >>> back = read_regions(path, wcs=example_image_path())
    >>> back["x"].round(3), back["y"].round(3)  # 0-based pixels again
    (<Quantity [149. , 120.5] pix>, <Quantity [160., 140.] pix>)
    """
    fmt = _check_choice(format, REGION_FORMATS, "region format")
    regs = table_to_regions(table, shape=shape, wcs=wcs, text=text, label=label,
                            score=score, radius=radius, scale=scale, color=color,
                            color_by=color_by, cmap=cmap)
    kwargs = {}
    if fmt == "crtf":
        import regions as rg
        pixel = [r for r in regs if isinstance(r, rg.PixelRegion)]
        if pixel:
            raise InputError(
                "CRTF region files hold sky coordinates only (the regions package writes "
                "no CRTF pixel regions): pass wcs= (the image's WCS or file), or write "
                "format='ds9'.")
        # sizes in degrees: the regions CRTF reader does not parse arcsec (")
        kwargs = {"coordsys": "icrs", "fmt": f".{int(precision)}f", "radunit": "deg"}
        # CASA takes hex colours without DS9's '#' (it refuses color=#56b4e9)
        for region in regs:
            colour = region.visual.get("color")
            if isinstance(colour, str) and colour.startswith("#"):
                region.visual["color"] = colour[1:]
    else:
        kwargs = {"precision": int(precision)}
    path = Path(path)
    with atomic_output(path, overwrite=overwrite) as tmp:
        regs.write(tmp, format=fmt, **kwargs)


def read_regions(path, format=None, wcs=None):
    """
    Read a DS9 or CRTF region file into a table.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The region file.
    format : {'ds9', 'crtf'}, optional
        The file's format; by default from its extension (``.reg`` and
        ``.ds9``: DS9, ``.crtf``: CRTF) or its first line.
    wcs : `~astropy.wcs.WCS`, `~astropy.io.fits.Header`, `~astropy.nddata.NDData` or str, optional
        Adds pixel positions to sky regions (and sky positions to pixel
        regions).

    Returns
    -------
    table : `~astropy.table.QTable`
        As `regions_to_table` describes: shape, ``x``/``y`` (0-based
        pixel) and/or ``sky_centroid``/``ra``/``dec``, sizes, ``text``,
        ``label``, ``score``, ``color``.

    Raises
    ------
    astrofmtools.InputError
        For a missing or unparsable file or an unsupported format.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from astropy.table import QTable
    >>> from astrofmtools.catalog import read_regions, write_regions
    >>> path = Path(tempfile.mkdtemp()) / "pixels.reg"
    >>> table = QTable({"x": [0.0, 10.0], "y": [0.0, 5.0], "semimajor": [2.0, 1.0],
    ...                 "semiminor": [1.0, 1.0], "orientation": [30.0, 0.0]})
    >>> write_regions(table, path, shape="ellipse")
    >>> path.read_text().splitlines()[3]  # DS9 counts pixels from 1; semi-axes 2.5 x
    'ellipse(1.00000000,1.00000000,5.00000000,2.50000000,30.00000000)'
    >>> back = read_regions(path)
    >>> back["x"], back["width"], back["angle"]
    (<Quantity [ 0., 10.] pix>, <Quantity [10.,  5.] pix>, <Quantity [30.,  0.] deg>)
    """
    import regions as rg

    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"Region file {str(path)!r} does not exist.")
    if format is None:
        fmt = _EXTENSIONS.get(path.suffix.lower())
        if fmt is None:
            with open(path, errors="replace") as fh:
                head = fh.read(200).lstrip()
            fmt = "crtf" if head.upper().startswith("#CRTF") else "ds9"
    else:
        fmt = _check_choice(format, REGION_FORMATS, "region format")
    try:
        regs = rg.Regions.read(str(path), format=fmt)
    except Exception as exc:  # the parsers raise several types
        raise InputError(f"Cannot read {str(path)!r} as a {fmt.upper()} region file: "
                         f"{exc}") from exc
    table = regions_to_table(regs, wcs=wcs)
    table.meta.update(provenance(stage="read_regions", input=str(path), format=fmt))
    return table
