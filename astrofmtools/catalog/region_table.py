# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Regions back to a table: shape, centre, size, text, class and score (`regions_to_table`)."""

import numpy as np
import astropy.units as u
from astropy.coordinates import SkyCoord
from astropy.table import QTable

from ..exceptions import InputError
from ..utils import provenance
from .region_inputs import _as_wcs

__all__ = ["regions_to_table"]


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
