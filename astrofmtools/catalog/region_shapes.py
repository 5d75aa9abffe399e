# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Region shapes from source tables: circles, boxes and ellipses, in pixel
or sky coordinates, built with the `regions` package (`table_to_regions`).

Table positions are 0-based pixels; the conversion to DS9's 1-based
``image`` coordinates happens inside `regions`.
"""

import warnings

import numpy as np
import astropy.units as u
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs.utils import proj_plane_pixel_scales

from ..exceptions import InputError
from ..schema import BBOX_COLUMNS, bbox_values, parse_positions
from ..utils import progress
from .region_inputs import _as_wcs, _check_choice, _parse_radius, _resolve_column, _values
from .region_style import (REGION_TEXT_LIMIT, _colors, _column_colors, _scores, _strings,
                           _texts)

__all__ = ["REGION_SHAPES", "REGION_TEXT_LIMIT", "table_to_regions"]

#: Shapes that `write_regions` draws.
REGION_SHAPES = ("circle", "box", "ellipse")

#: Radius (pixels) of circles when the table has no size columns.
DEFAULT_RADIUS = 5.0


def table_to_regions(table, shape="circle", wcs=None, text="auto", label="auto",
                     score="auto", radius=None, scale=2.5, color=None, color_by=None,
                     cmap="viridis"):
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
    text : str, bool or None, optional
        The column written as each region's text. ``'auto'``: the
        ``label`` column (followed by the score, to two decimals, when
        there is one) or else ``id``, and only when there are at most
        `REGION_TEXT_LIMIT` (100) rows: thousands of labels hide a crowded
        field. True: that automatic text whatever the number of rows; a
        column name: that column, always. False or None: no text.
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
    color_by : str, optional
        The column the colours follow, instead of the class column: a
        column of strings (classes) takes the palette (and ``color`` as a
        dict), a numeric column (a score, a flux) the colour map ``cmap``
        from its smallest to its largest finite value (NaN: grey).
    cmap : str, optional
        The matplotlib colour map of a numeric ``color_by``.

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
    if text is True or (isinstance(text, str) and text == "auto"
                        and len(table) <= REGION_TEXT_LIMIT):
        text_col, auto_text = _resolve_column(table, "auto", (label_col or "", "label", "id"),
                                              "text"), True
    elif text is None or text is False or (isinstance(text, str) and text == "auto"):
        text_col, auto_text = None, False
    else:
        text_col, auto_text = _resolve_column(table, text, (), "text"), False

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

    texts = _texts(table, text_col, label_col, score_col, auto=auto_text)
    labels = _strings(table, label_col) if label_col else None
    scores = _scores(table, score_col) if score_col else None
    if color_by is not None:
        colors = _column_colors(table, color_by, color, cmap)
    else:
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
