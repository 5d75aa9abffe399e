# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
DS9 and CRTF region files from source tables, and back.

The shapes are built with the `regions` package, which also writes and
parses the files. Table positions are 0-based pixels; the conversion to
DS9's 1-based ``image`` coordinates happens inside `regions`.
"""

import re
import warnings
from pathlib import Path

import numpy as np
import astropy.units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import NDData
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from ..exceptions import InputError, MissingFileError
from ..schema import BBOX_COLUMNS, bbox_values, parse_positions
from ..utils import atomic_output, progress, provenance

__all__ = ["REGION_FORMATS", "REGION_SHAPES", "table_to_regions", "write_regions",
           "regions_to_table", "read_regions"]

#: Region file formats that `write_regions` and `read_regions` handle.
REGION_FORMATS = ("ds9", "crtf")

#: Shapes that `write_regions` draws.
REGION_SHAPES = ("circle", "box", "ellipse")

#: Radius (pixels) of circles when the table has no size columns.
DEFAULT_RADIUS = 5.0

# Okabe-Ito colours (colour-blind safe), brightest first: they show on DS9's
# default grey colour map. Classes take them in sorted order.
_PALETTE = ("#56B4E9", "#E69F00", "#009E73", "#F0E442", "#CC79A7", "#D55E00",
            "#0072B2", "#FFFFFF")
_DEFAULT_COLOR = "green"  # DS9's own default

_EXTENSIONS = {".reg": "ds9", ".ds9": "ds9", ".crtf": "crtf", ".crt": "crtf"}


# ----------------------------------------------------------------------------
# table -> regions


def table_to_regions(table, shape="circle", wcs=None, text="auto", label="auto",
                     score="auto", radius=None, scale=2.5, color=None):
    """
    Build a `regions.Regions` list from a source table.

    With a WCS the regions are sky regions (ICRS); without one they are
    pixel regions, except circles drawn around sky positions with an angular
    ``radius``, which need no WCS.

    Parameters
    ----------
    table : `~astropy.table.Table`
        Sources: ``x``, ``y`` (0-based pixel) and/or ``sky_centroid``
        (`~astropy.coordinates.SkyCoord`) or ``ra``, ``dec`` (degrees).
        Sizes, when present, come from ``semimajor``, ``semiminor``
        (pixels, the 1-sigma axes of the light distribution) and
        ``orientation`` (degrees counter-clockwise from +x), or from the
        bounding box ``bbox_xmin``, ``bbox_xmax``, ``bbox_ymin``,
        ``bbox_ymax`` (0-based inclusive pixel indices).
    shape : {'circle', 'box', 'ellipse'}, optional
        ``circle``: radius from ``radius``, else ``scale * semimajor``, else
        half the larger bounding-box side, else `DEFAULT_RADIUS` pixels.
        ``box``: the bounding box itself, else a box of ``2 * scale``
        times the axes rotated by ``orientation``, else a square of side
        ``2 * radius``. ``ellipse``: axes ``2 * scale`` times ``semimajor``
        and ``semiminor`` rotated by ``orientation``, else the ellipse
        inscribed in the bounding box, else a circle of ``radius``.
    wcs : `~astropy.wcs.WCS`, `~astropy.io.fits.Header`, `~astropy.nddata.NDData` or str, optional
        The celestial WCS of the image the table was measured on (an NDData
        or `~astrofmtools.io.SkyImage` gives its own; a string is an image
        file). With it, regions are in sky coordinates and pixel sizes are
        converted to angles at each source. Centres come from the table's
        sky positions when it has them, else from ``x``, ``y`` through the
        WCS.
    text : str or None, optional
        The column written as each region's text. ``'auto'``: the
        ``label`` column (followed by the score, to two decimals, when
        there is one) or else ``id``. None: no text.
    label : str or None, optional
        The class column: each class gets its own colour and a DS9 tag
        (group). ``'auto'``: ``label`` if the table has it.
    score : str or None, optional
        The score column, stored as a ``score=...`` DS9 tag. ``'auto'``:
        ``score`` or else ``probability``. A 2-D column (one probability per
        class) gives each row's maximum.
    radius : float or `~astropy.units.Quantity`, optional
        Size of every region: pixels (a number or ``u.pix``) or an angle.
        It takes precedence over the size columns.
    scale : float, optional
        Multiplies ``semimajor`` and ``semiminor`` (2.5 encloses most of
        a source's light, as `~astrofmtools.visualization.plot_sources`
        draws them).
    color : str or dict, optional
        One colour for every region, or a dict from class to colour
        (classes left out take the default palette). By default each class
        takes a colour-blind safe colour in sorted order, or all are green
        when there is no class column.

    Returns
    -------
    regions : `regions.Regions`
        One region per row with finite position, in table order. Each
        region's ``meta`` holds ``text`` and ``label`` (the text, which
        CRTF writes) and ``tag`` (the class and ``score=...``); its
        ``visual`` holds ``color``.

    Raises
    ------
    astrofmtools.InputError
        For an unknown shape, missing position or size columns (the message
        names the columns needed) or a named column the table lacks.

    Warns
    -----
    astropy.utils.exceptions.AstropyUserWarning
        When rows with non-finite positions are left out.

    Examples
    --------
    >>> from astropy.table import QTable
    >>> from astrofmtools.catalog import table_to_regions
    >>> table = QTable({"x": [10.0, 20.0], "y": [5.0, 8.0], "label": ["FRI", "FRII"],
    ...                 "score": [0.91, 0.55]})
    >>> regs = table_to_regions(table, radius=3)
    >>> print(regs.serialize(format="ds9"))  # doctest: +NORMALIZE_WHITESPACE
    # Region file format: DS9 astropy/regions
    image
    circle(11.00000000,6.00000000,3.00000000) # text={FRI 0.91} tag={FRI} tag={score=0.910}
      color=#56B4E9
    circle(21.00000000,9.00000000,3.00000000) # text={FRII 0.55} tag={FRII}
      tag={score=0.550} color=#E69F00
    """
    import regions as rg

    shape = _check_choice(shape, REGION_SHAPES, "shape")
    wcs = _as_wcs(wcs)
    radius = _parse_radius(radius)
    n = len(table)
    label_col = _resolve_column(table, label, ("label",), "label")
    score_col = _resolve_column(table, score, ("score", "probability"), "score")
    text_col = _resolve_column(table, text, (label_col or "", "label", "id"), "text")

    sky = _sky_positions(table)
    pix = _pixel_positions(table)
    bbox = _bbox(table)

    # Decide the coordinates the regions are written in.
    bbox_box = shape == "box" and bbox is not None and radius is None  # centred on the bbox
    if wcs is not None:
        mode = "sky"
        if pix is None and sky is not None:
            pix = np.array(wcs.world_to_pixel(sky), dtype=float)
    elif sky is not None and shape == "circle" and radius is not None and radius[0] == "sky":
        mode = "skycircle"
    elif pix is not None or bbox_box:
        mode = "pixel"
    elif sky is not None:
        raise InputError(
            f"{shape} regions for a table with only sky positions ('sky_centroid' or "
            "'ra'/'dec') need wcs= (the image's WCS) or, for circles, an angular "
            "radius such as radius=5 * u.arcsec.")
    else:
        raise InputError("The table needs source positions: columns 'x' and 'y' (0-based "
                         f"pixel) or 'sky_centroid' or 'ra' and 'dec'; it has {table.colnames}.")
    if mode == "sky" and pix is None and not bbox_box:
        raise InputError("The table needs source positions: columns 'x' and 'y' (0-based "
                         f"pixel) or 'sky_centroid' or 'ra' and 'dec'; it has {table.colnames}.")

    # Sizes in pixels (or the angular circle radius).
    centre_override = None
    if mode == "skycircle":
        params = {"radius": np.full(n, radius[1].to_value(u.arcsec))}
    else:
        params, centre_override = _pixel_shapes(table, shape, radius, scale, wcs, bbox)
    if centre_override is not None:
        pix = centre_override

    # Which rows can be drawn.
    if mode == "skycircle":
        good = np.isfinite(sky.ra.deg) & np.isfinite(sky.dec.deg)
    else:
        good = np.all(np.isfinite(pix), axis=0)
        if mode == "sky" and sky is not None and centre_override is None:
            good &= np.isfinite(sky.ra.deg) & np.isfinite(sky.dec.deg)
    if not np.all(good):
        warnings.warn(f"{np.count_nonzero(~good)} of {n} rows have no finite position "
                      "and are left out of the regions.", AstropyUserWarning)

    texts = _texts(table, text_col, label_col, score_col, auto=(text == "auto"))
    labels = _strings(table, label_col) if label_col else None
    scores = _scores(table, score_col) if score_col else None
    colors = _colors(labels, color, n)

    rows = np.flatnonzero(good)
    if mode == "sky":
        # all rows at once: the regions package converts one region at a time
        centres, sky_params = _pixel_to_sky_shapes(pix[:, rows], wcs, shape, params, rows)
        if shape == "circle" and radius is not None and radius[0] == "sky":
            sky_params["radius"][:] = radius[1].to_value(u.arcsec)  # the angle asked for
        if sky is not None and centre_override is None:
            centres = sky[rows]  # the table's own positions, exactly
    elif mode == "skycircle":
        centres, sky_params = sky[rows], {"radius": params["radius"][rows]}

    out = []
    for k, i in enumerate(progress(rows, desc="regions", unit="region", leave=False)):
        meta = {}
        if texts is not None and texts[i]:
            meta["text"] = meta["label"] = texts[i]
        tags = []
        if labels is not None:
            tags.append(labels[i])
        if scores is not None and np.isfinite(scores[i]):
            tags.append(f"score={scores[i]:.3f}")
        if tags:
            meta["tag"] = tags
        kwargs = {"meta": rg.RegionMeta(meta), "visual": rg.RegionVisual(color=colors[i])}
        if mode in ("sky", "skycircle"):
            centre = centres[k]
            if shape == "circle":
                region = rg.CircleSkyRegion(centre, sky_params["radius"][k] * u.arcsec, **kwargs)
            else:
                cls = rg.RectangleSkyRegion if shape == "box" else rg.EllipseSkyRegion
                region = cls(centre, sky_params["width"][k] * u.arcsec,
                             sky_params["height"][k] * u.arcsec,
                             angle=sky_params["angle"][k] * u.deg, **kwargs)
        else:
            centre = rg.PixCoord(pix[0][i], pix[1][i])
            if shape == "circle":
                region = rg.CirclePixelRegion(centre, params["radius"][i], **kwargs)
            else:
                cls = rg.RectanglePixelRegion if shape == "box" else rg.EllipsePixelRegion
                region = cls(centre, params["width"][i], params["height"][i],
                             angle=params["angle"][i] * u.deg, **kwargs)
        out.append(region)
    return rg.Regions(out)


def write_regions(table, path, format="ds9", shape="circle", wcs=None, text="auto",
                  label="auto", score="auto", radius=None, scale=2.5, color=None,
                  precision=8, overwrite=False):
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
    text, label, score, radius, scale, color
        As in `table_to_regions`.
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
                            score=score, radius=radius, scale=scale, color=color)
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
    else:
        kwargs = {"precision": int(precision)}
    path = Path(path)
    with atomic_output(path, overwrite=overwrite) as tmp:
        regs.write(tmp, format=fmt, **kwargs)


# ----------------------------------------------------------------------------
# regions -> table


def regions_to_table(regions, wcs=None):
    """
    Tabulate regions: shape, centre, size, text, class and score.

    Parameters
    ----------
    regions : `regions.Regions` or list of `regions.Region`
        The regions.
    wcs : `~astropy.wcs.WCS`, `~astropy.io.fits.Header`, `~astropy.nddata.NDData` or str, optional
        A WCS to give sky regions pixel positions and pixel regions sky
        positions (it is needed when pixel and sky regions are mixed).

    Returns
    -------
    table : `~astropy.table.QTable`
        One row per region, with columns

        - ``shape``: ``circle``, ``box``, ``ellipse``, ``point``,
          ``polygon``... (`regions` names, rectangles called ``box``).
        - ``x``, ``y``: centre, 0-based pixel (pixel regions, or with
          ``wcs``). Polygons give the mean of their vertices.
        - ``sky_centroid``, ``ra``, ``dec``: centre, ICRS (sky regions, or
          with ``wcs``).
        - ``radius``, ``width``, ``height``: circle radius and full box or
          ellipse axes, in pixels for pixel regions and arcsec for sky
          regions (NaN where the shape has none).
        - ``angle``: rotation of the box or ellipse (deg), counter-clockwise
          from the x axis (pixel) or from the RA axis (sky), as DS9 counts.
        - ``text``: the region's text; ``label`` and ``score``: the class
          and score read from DS9 tags (empty and NaN when absent);
          ``color``.

    Examples
    --------
    >>> import regions as rg
    >>> from astrofmtools.catalog import regions_to_table
    >>> regs = rg.Regions([rg.CirclePixelRegion(rg.PixCoord(3, 4), 2.5, meta={"text": "a"})])
    >>> t = regions_to_table(regs)
    >>> str(t["shape"][0]), t["x"][0], t["radius"][0], str(t["text"][0])
    ('circle', <Quantity 3. pix>, <Quantity 2.5 pix>, 'a')
    """
    import regions as rg

    wcs = _as_wcs(wcs)
    regions = list(regions)
    kinds = {isinstance(r, rg.SkyRegion) for r in regions}
    if len(kinds) > 1 and wcs is None:
        raise InputError("The regions mix pixel and sky coordinates; pass wcs= to put "
                         "them in one table.")
    all_sky = kinds == {True}
    mixed = len(kinds) > 1
    n = len(regions)
    shapes, texts, labels, colors = [], [], [], []
    xs, ys = np.full(n, np.nan), np.full(n, np.nan)
    ras, decs = np.full(n, np.nan), np.full(n, np.nan)
    radius, width, height, angle = (np.full(n, np.nan) for _ in range(4))
    scores = np.full(n, np.nan)
    size_unit = u.arcsec if all_sky else u.pix
    frames = {}  # sky frame -> (frame, rows)
    for i, region in enumerate(regions):
        shapes.append(_shape_name(region))
        is_sky = isinstance(region, rg.SkyRegion)
        sizes = region.to_pixel(wcs) if (mixed and is_sky) else region
        for name, store in (("radius", radius), ("width", width), ("height", height)):
            value = getattr(sizes, name, None) if name in sizes._params else None
            if value is not None:
                store[i] = (value.to_value(u.arcsec) if isinstance(value, u.Quantity)
                            else float(value))
        if "angle" in sizes._params:
            angle[i] = u.Quantity(sizes.angle, u.deg).to_value(u.deg)
        centre = _centre(region)
        if is_sky:  # converted below, all at once, frame by frame
            frame = centre.frame
            key = (frame.name, str(getattr(frame, "equinox", "")))
            frames.setdefault(key, (frame.replicate_without_data(), []))[1].append(i)
            ras[i], decs[i] = _lonlat(centre)
        else:
            xs[i], ys[i] = centre
        meta = region.meta
        texts.append(str(meta.get("text", meta.get("label", ""))))
        label, score = _parse_tags(meta.get("tag", []))
        labels.append(label)
        scores[i] = score
        colors.append(str(region.visual.get("color", region.visual.get("edgecolor", ""))))

    for frame, rows in frames.values():
        icrs = SkyCoord(ras[rows], decs[rows], unit="deg", frame=frame).icrs
        ras[rows], decs[rows] = icrs.ra.deg, icrs.dec.deg
        if wcs is not None:
            xs[rows], ys[rows] = wcs.world_to_pixel(icrs)
    pixel_rows = np.array([not isinstance(r, rg.SkyRegion) for r in regions], dtype=bool)
    if wcs is not None and pixel_rows.any():
        world = wcs.pixel_to_world(xs[pixel_rows], ys[pixel_rows]).icrs
        ras[pixel_rows], decs[pixel_rows] = world.ra.deg, world.dec.deg

    table = QTable(meta=provenance(stage="read_regions"))
    table["shape"] = _str_column(shapes)
    table["shape"].info.description = "region shape (rectangles are called 'box')"
    has_pix = (not all_sky) or wcs is not None or n == 0
    has_sky = all_sky or wcs is not None
    if has_pix:
        table["x"] = xs * u.pix
        table["x"].info.description = "region centre x, 0-based pixel"
        table["y"] = ys * u.pix
        table["y"].info.description = "region centre y, 0-based pixel"
    if has_sky:
        table["sky_centroid"] = SkyCoord(ras, decs, unit="deg", frame="icrs")
        table["sky_centroid"].info.description = "region centre (ICRS)"
        table["ra"] = ras * u.deg
        table["ra"].info.description = "region centre right ascension (ICRS)"
        table["dec"] = decs * u.deg
        table["dec"].info.description = "region centre declination (ICRS)"
    where = "arcsec (sky regions)" if all_sky else "pixels"
    table["radius"] = radius * size_unit
    table["radius"].info.description = f"circle radius, {where}"
    table["width"] = width * size_unit
    table["width"].info.description = f"full box width or ellipse axis, {where}"
    table["height"] = height * size_unit
    table["height"].info.description = f"full box height or ellipse axis, {where}"
    table["angle"] = angle * u.deg
    table["angle"].info.description = ("rotation, counter-clockwise from the x axis "
                                       "(pixel) or RA axis (sky), as DS9 counts")
    table["text"] = _str_column(texts)
    table["text"].info.description = "region text"
    table["label"] = _str_column(labels)
    table["label"].info.description = "class, from the region's DS9 tag"
    table["score"] = scores
    table["score"].info.description = "score, from the region's 'score=' DS9 tag"
    table["color"] = _str_column(colors)
    table["color"].info.description = "region colour"
    return table


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


# ----------------------------------------------------------------------------
# helpers


def _check_choice(value, choices, what):
    key = str(value).lower() if value is not None else None
    if key not in choices:
        raise InputError(f"Unsupported {what} {value!r}; supported: {', '.join(choices)}.")
    return key


def _as_wcs(wcs):
    """A 2-D celestial WCS from a WCS, header, NDData, image file, or None."""
    if wcs is None:
        return None
    if isinstance(wcs, WCS):
        out = wcs
    elif isinstance(wcs, fits.Header):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=Warning)  # FITSFixedWarning and kin
            out = WCS(wcs)
    elif isinstance(wcs, NDData):
        out = wcs.wcs
    elif isinstance(wcs, (str, Path)):
        from ..io import load_image
        out = load_image(wcs).wcs
    else:
        raise InputError(f"wcs= must be a WCS, a FITS header, an image or an image file; "
                         f"got {type(wcs).__name__}.")
    if out is None:
        raise InputError("The image given as wcs= has no celestial WCS.")
    if not isinstance(out, WCS):
        raise InputError(f"wcs= must be an astropy WCS; got {type(out).__name__}.")
    if out.naxis != 2 or not out.has_celestial:
        if not out.has_celestial:
            raise InputError("wcs= has no celestial (sky) axes.")
        out = out.celestial
    return out


def _parse_radius(radius):
    if radius is None:
        return None
    if isinstance(radius, u.Quantity):
        if radius.unit.physical_type == "angle":
            return ("sky", radius)
        if radius.unit in (u.pix, u.dimensionless_unscaled):
            return ("pix", float(radius.value))
        raise InputError(f"radius must be in pixels or an angle; got unit {radius.unit}.")
    try:
        return ("pix", float(radius))
    except (TypeError, ValueError):
        raise InputError(f"radius must be a number of pixels or an angle; got {radius!r}.")


def _resolve_column(table, name, defaults, what):
    if name is None:
        return None
    if name == "auto":
        for col in defaults:
            if col and col in table.colnames:
                return col
        return None
    if name not in table.colnames:
        raise InputError(f"{what}= names column {name!r}, which the table lacks; its "
                         f"columns are {table.colnames}.")
    return name


def _values(col):
    """A float array from a column (Quantity, Column, masked), masked -> NaN."""
    name = getattr(getattr(col, "info", None), "name", "")
    if isinstance(col, u.Quantity):
        col = col.value
    arr = np.ma.asarray(col)
    if arr.dtype.kind not in "fiub":
        raise InputError(f"Column {name!r} is not numeric.")
    return np.ma.filled(arr.astype(float), np.nan)


def _sky_positions(table):
    """ICRS positions (NaN where invalid), or None."""
    pos = parse_positions(table, kind="sky", required=False)
    return None if pos is None else pos.sky


def _angle_values(col):
    if isinstance(col, u.Quantity):
        return col.to_value(u.deg)
    return _values(col)  # plain numbers: degrees


def _pixel_positions(table):
    pos = parse_positions(table, kind="pixel", required=False)
    return None if pos is None else np.array([pos.x, pos.y])


def _pix_values(table, name, wcs=None):
    col = table[name]
    if isinstance(col, u.Quantity) and col.unit.physical_type == "angle":
        if wcs is None:
            raise InputError(f"Column {name!r} is an angle ({col.unit}); pass wcs= to "
                             "convert it to pixels.")
        scale = np.sqrt(np.prod(proj_plane_pixel_scales(wcs))) * u.deg
        return (col / scale).to_value(u.dimensionless_unscaled)
    if isinstance(col, u.Quantity) and col.unit not in (u.pix, u.dimensionless_unscaled):
        raise InputError(f"Column {name!r} must be in pixels; it is in {col.unit}.")
    return _values(col)


def _bbox(table):
    """(xmin, xmax, ymin, ymax) float arrays of the bounding boxes, or None."""
    values = bbox_values(table, required=False)
    return None if values is None else tuple(values[c] for c in BBOX_COLUMNS)


def _pixel_shapes(table, shape, radius, scale, wcs, bbox):
    """Pixel sizes (and, for boxes drawn from the bbox, their centres)."""
    n = len(table)
    names = table.colnames
    has_axes = "semimajor" in names and "semiminor" in names
    if radius is not None:
        r = radius[1]
        if radius[0] == "sky":
            if wcs is None:
                raise InputError("An angular radius needs wcs= for box or ellipse regions.")
            r = (radius[1] / (np.sqrt(np.prod(proj_plane_pixel_scales(wcs))) * u.deg)
                 ).to_value(u.dimensionless_unscaled)
        r = np.full(n, float(r))
        if shape == "circle":
            return {"radius": r}, None
        return {"width": 2 * r, "height": 2 * r, "angle": np.zeros(n)}, None

    def axes():
        a = scale * _pix_values(table, "semimajor", wcs)
        b = scale * _pix_values(table, "semiminor", wcs)
        theta = (_angle_values(table["orientation"]) if "orientation" in names
                 else np.zeros(n))
        return a, b, np.nan_to_num(theta)

    if shape == "circle":
        if "semimajor" in names:
            r = scale * _pix_values(table, "semimajor", wcs)
        elif bbox is not None:
            x0, x1, y0, y1 = bbox
            r = 0.5 * np.maximum(x1 - x0 + 1, y1 - y0 + 1)
        else:
            r = np.full(n, DEFAULT_RADIUS)
        return {"radius": _clean(r, DEFAULT_RADIUS)}, None
    if shape == "box":
        if bbox is not None:
            x0, x1, y0, y1 = bbox
            width, height = x1 - x0 + 1, y1 - y0 + 1
            centre = np.array([0.5 * (x0 + x1), 0.5 * (y0 + y1)])
            return ({"width": _clean(width, 1.0), "height": _clean(height, 1.0),
                     "angle": np.zeros(n)}, centre)
        if has_axes:
            a, b, theta = axes()
            return ({"width": _clean(2 * a, 2 * DEFAULT_RADIUS),
                     "height": _clean(2 * b, 2 * DEFAULT_RADIUS), "angle": theta}, None)
        raise InputError(
            "box regions need the bounding-box columns bbox_xmin, bbox_xmax, bbox_ymin, "
            "bbox_ymax, or semimajor and semiminor (with orientation), or a size via "
            f"radius=; the table has {names}.")
    # ellipse
    if has_axes:
        a, b, theta = axes()
        return ({"width": _clean(2 * a, 2 * DEFAULT_RADIUS),
                 "height": _clean(2 * b, 2 * DEFAULT_RADIUS), "angle": theta}, None)
    if bbox is not None:
        x0, x1, y0, y1 = bbox
        width, height = x1 - x0 + 1, y1 - y0 + 1
        return ({"width": _clean(width, 1.0), "height": _clean(height, 1.0),
                 "angle": np.zeros(n)}, None)
    raise InputError(
        "ellipse regions need the columns semimajor and semiminor (pixels, with "
        "orientation in degrees), or the bounding-box columns bbox_xmin, bbox_xmax, "
        f"bbox_ymin, bbox_ymax, or a size via radius=; the table has {names}.")


def _pixel_to_sky_shapes(pix, wcs, shape, params, rows):
    """
    Sky centres (ICRS) and sizes of pixel shapes, for many shapes at once.

    The same computation as the ``to_sky`` methods of the `regions` pixel
    shapes (regions 0.12), vectorised: the local Jacobian of the WCS from
    1-pixel steps, the circle radius scaled by the geometric mean of the x
    and y pixel scales, and box and ellipse axes from the singular value
    decomposition of the Jacobian times the pixel semi-axes. Sizes come
    out in arcsec, angles in degrees counter-clockwise from the RA axis.
    """
    x, y = pix
    sky0 = wcs.pixel_to_world(x, y)
    sky_x = wcs.pixel_to_world(x + 1, y)
    sky_y = wcs.pixel_to_world(x, y + 1)
    sep_x = sky0.separation(sky_x).arcsec
    sep_y = sky0.separation(sky_y).arcsec
    centres = sky0.icrs
    if shape == "circle":
        return centres, {"radius": params["radius"][rows] * np.sqrt(sep_x * sep_y)}
    pa_x = sky0.position_angle(sky_x).rad
    pa_y = sky0.position_angle(sky_y).rad
    # forward Jacobian d(xi, eta)/d(x, y), arcsec per pixel, xi to the East
    forward = np.empty((len(x), 2, 2))
    forward[:, 0, 0], forward[:, 1, 0] = sep_x * np.sin(pa_x), sep_x * np.cos(pa_x)
    forward[:, 0, 1], forward[:, 1, 1] = sep_y * np.sin(pa_y), sep_y * np.cos(pa_y)
    width, height = params["width"][rows], params["height"][rows]
    theta = np.radians(params["angle"][rows])
    semi = np.empty_like(forward)  # columns: the width and height semi-axes, in pixels
    semi[:, 0, 0], semi[:, 1, 0] = 0.5 * width * np.cos(theta), 0.5 * width * np.sin(theta)
    semi[:, 0, 1], semi[:, 1, 1] = -0.5 * height * np.sin(theta), 0.5 * height * np.cos(theta)
    m_sky = forward @ semi
    u_mat, s_vals, _ = np.linalg.svd(m_sky)
    width_col = m_sky[:, :, 0]
    major_is_width = (np.abs(np.einsum("ni,ni->n", u_mat[:, :, 0], width_col))
                      >= np.abs(np.einsum("ni,ni->n", u_mat[:, :, 1], width_col)))
    sky_width = 2 * np.where(major_is_width, s_vals[:, 0], s_vals[:, 1])
    sky_height = 2 * np.where(major_is_width, s_vals[:, 1], s_vals[:, 0])
    direction = np.where(major_is_width[:, None], u_mat[:, :, 0], u_mat[:, :, 1])
    flip = np.einsum("ni,ni->n", direction, width_col) < 0
    direction[flip] *= -1
    circular = np.isclose(width, height)
    norm = np.linalg.norm(width_col, axis=1)
    use_width = circular & (norm > 0)
    direction[use_width] = width_col[use_width] / norm[use_width, None]
    pa = np.degrees(np.arctan2(direction[:, 0], direction[:, 1]))  # East of North
    angle = (pa + 90.0) % 360.0  # regions measures from the RA axis
    return centres, {"width": sky_width, "height": sky_height, "angle": angle}


def _clean(size, fallback):
    """Sizes with NaN or non-positive values replaced by a fallback."""
    size = np.asarray(size, dtype=float)
    return np.where(np.isfinite(size) & (size > 0), size, fallback)


_UNSAFE = re.compile(r"[{}\[\]'\",#;]")


def _safe_text(value):
    """Text that DS9 braces and CRTF quotes both hold."""
    return _UNSAFE.sub(" ", str(value)).strip()


def _strings(table, name):
    col = table[name]
    if getattr(col, "ndim", 1) != 1:
        raise InputError(f"Column {name!r} must hold one value per row.")
    if isinstance(col, u.Quantity):
        return [_format_number(v) for v in col.value]
    values = np.ma.asarray(col)
    out = []
    for v, masked in zip(values.data, np.ma.getmaskarray(values)):
        out.append("" if masked else _safe_text(_format_number(v)))
    return out


def _format_number(v):
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}"
    return str(v)


def _scores(table, name):
    col = table[name]
    arr = _values(col)
    if arr.ndim == 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
            arr = np.nanmax(arr, axis=1)
    elif arr.ndim != 1:
        raise InputError(f"Column {name!r} must be 1-D (a score) or 2-D (probabilities).")
    return arr


def _texts(table, text_col, label_col, score_col, auto):
    if text_col is None:
        return None
    texts = _strings(table, text_col)
    if auto and text_col in (label_col, "label") and score_col is not None:
        scores = _scores(table, score_col)
        texts = [f"{t} {s:.2f}" if np.isfinite(s) else t for t, s in zip(texts, scores)]
    return texts


def _colors(labels, color, n):
    if isinstance(color, str):
        return [color] * n
    if labels is None:
        return [_DEFAULT_COLOR] * n
    classes = sorted(set(labels))
    palette = {c: _PALETTE[i % len(_PALETTE)] for i, c in enumerate(classes)}
    if isinstance(color, dict):
        palette.update({str(k): v for k, v in color.items()})
    elif color is not None:
        raise InputError(f"color must be a colour name or a dict class -> colour; "
                         f"got {type(color).__name__}.")
    return [palette[lab] for lab in labels]


def _shape_name(region):
    name = type(region).__name__
    for suffix in ("SkyRegion", "PixelRegion"):
        name = name.replace(suffix, "")
    name = name.lower()
    return "box" if name == "rectangle" else name


def _centre(region):
    """The centre of a region: (x, y) floats for pixel regions, else a SkyCoord."""
    import regions as rg
    for attr in ("center", "vertices", "start"):
        if attr not in region._params:
            continue
        value = getattr(region, attr)
        if attr == "start":  # lines: the midpoint
            end = region.end
            if isinstance(value, rg.PixCoord):
                return (0.5 * (value.x + end.x), 0.5 * (value.y + end.y))
            return _sky_mean(SkyCoord([value.icrs, end.icrs]))
        if isinstance(value, rg.PixCoord):
            return (float(np.mean(value.x)), float(np.mean(value.y)))
        if attr == "vertices":  # polygons: the mean of the vertices
            return _sky_mean(value)
        return value
    return (np.nan, np.nan)


def _lonlat(coord):
    """Longitude and latitude (deg) of a scalar SkyCoord in its own frame."""
    data = coord.data
    if not hasattr(data, "lon"):
        data = coord.spherical
    return data.lon.to_value(u.deg), data.lat.to_value(u.deg)


def _sky_mean(coords):
    from astropy.coordinates import UnitSphericalRepresentation
    mean = coords.icrs.cartesian.mean()
    return SkyCoord(mean.represent_as(UnitSphericalRepresentation), frame="icrs")


def _parse_tags(tags):
    label, score = "", np.nan
    if isinstance(tags, str):
        tags = [tags]
    for tag in tags:
        tag = str(tag)
        if tag.startswith("score="):
            try:
                score = float(tag[6:])
            except ValueError:
                pass
        elif not label and "=" not in tag:
            label = tag
    return label, score


def _str_column(values):
    return np.array(values, dtype=str) if values else np.array([], dtype="U1")
