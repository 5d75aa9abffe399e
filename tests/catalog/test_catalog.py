# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Regions export/import and table I/O (astrofmtools.catalog)."""

import os
from pathlib import Path

import numpy as np
import pytest
import astropy.units as u
import regions as rg
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import QTable, Table
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS

from astrofmtools import InputError
from astrofmtools.catalog import (TABLE_FORMATS, read_regions, read_table, regions_to_table,
                                  table_to_regions, write_regions, write_table)
from astrofmtools.datasets import example_image_path
from astrofmtools.exceptions import MissingFileError
from astrofmtools.io import load_image
from astrofmtools.utils import provenance

PIXEL_SCALE = 1.8  # arcsec per pixel of the shipped FIRST image


@pytest.fixture(scope="module")
def first_wcs():
    return load_image(example_image_path()).wcs


def rotated_wcs(angle_deg=30.0, scale_arcsec=1.5):
    """A TAN WCS whose pixel axes are rotated on the sky."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [100.5, 80.5]
    wcs.wcs.cdelt = [-scale_arcsec / 3600, scale_arcsec / 3600]
    c, s = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    wcs.wcs.pc = [[c, -s], [s, c]]
    return wcs


def source_table(n=40, seed=1, wcs=None, shape=(300, 300)):
    """A table shaped like find_sources output: positions, bbox, axes, labels."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(10, shape[1] - 10, n)
    y = rng.uniform(10, shape[0] - 10, n)
    a = rng.uniform(1.0, 4.0, n)
    b = a * rng.uniform(0.3, 1.0, n)
    t = QTable()
    t["id"] = np.arange(1, n + 1)
    t["x"] = x * u.pix
    t["y"] = y * u.pix
    t["bbox_xmin"] = np.floor(x - 2 * a).astype(int)
    t["bbox_xmax"] = np.ceil(x + 2 * a).astype(int)
    t["bbox_ymin"] = np.floor(y - 2 * a).astype(int)
    t["bbox_ymax"] = np.ceil(y + 2 * a).astype(int)
    t["semimajor"] = a * u.pix
    t["semiminor"] = b * u.pix
    t["orientation"] = rng.uniform(-90, 90, n) * u.deg
    t["label"] = rng.choice(["compact", "FRI", "FRII"], n)
    t["score"] = rng.uniform(0, 1, n)
    if wcs is not None:
        t["sky_centroid"] = wcs.pixel_to_world(x, y).icrs
        t["ra"] = t["sky_centroid"].ra.to(u.deg)
        t["dec"] = t["sky_centroid"].dec.to(u.deg)
    t.meta.update(provenance(stage="test"))
    return t


# ----------------------------------------------------------------------------
# pixel regions


def test_ds9_pixel_origin_is_one_based():
    """0-based PixCoord(0, 0) is DS9's image (1, 1); reading undoes it."""
    table = QTable({"x": [0.0, 9.0], "y": [0.0, 4.0]})
    write_regions(table, "origin.reg", radius=2)
    lines = Path("origin.reg").read_text().splitlines()
    assert "image" in lines
    assert "circle(1.00000000,1.00000000,2.00000000)" in lines
    assert "circle(10.00000000,5.00000000,2.00000000)" in lines
    back = read_regions("origin.reg")
    assert np.allclose(back["x"].value, [0, 9]) and np.allclose(back["y"].value, [0, 4])
    # and regions itself parses the same (0-based) pixel centres
    parsed = rg.Regions.read("origin.reg", format="ds9")
    assert parsed[0].center.xy == (0.0, 0.0)


@pytest.mark.parametrize("shape", ["circle", "box", "ellipse"])
def test_pixel_round_trip(shape):
    table = source_table(n=50)
    write_regions(table, f"p_{shape}.reg", shape=shape)
    back = read_regions(f"p_{shape}.reg")
    assert len(back) == 50
    assert set(back["shape"]) == {shape}
    if shape == "box":  # boxes are the bounding boxes, centred on them
        xc = 0.5 * (table["bbox_xmin"] + table["bbox_xmax"])
        yc = 0.5 * (table["bbox_ymin"] + table["bbox_ymax"])
        assert np.max(np.abs(back["x"].value - xc)) < 1e-7
        assert np.max(np.abs(back["y"].value - yc)) < 1e-7
        assert np.array_equal(back["width"].value,
                              table["bbox_xmax"] - table["bbox_xmin"] + 1)
        assert np.array_equal(back["height"].value,
                              table["bbox_ymax"] - table["bbox_ymin"] + 1)
    else:
        assert np.max(np.abs(back["x"] - table["x"]).value) < 1e-7
        assert np.max(np.abs(back["y"] - table["y"]).value) < 1e-7
    if shape == "circle":
        assert np.allclose(back["radius"].value, 2.5 * table["semimajor"].value, atol=1e-7)
    if shape == "ellipse":
        assert np.allclose(back["width"].value, 5 * table["semimajor"].value, atol=1e-7)
        assert np.allclose(back["height"].value, 5 * table["semiminor"].value, atol=1e-7)
        assert np.allclose(back["angle"].value, table["orientation"].value, atol=1e-7)


def test_default_and_fallback_sizes():
    table = QTable({"x": [5.0, 6.0], "y": [5.0, 7.0]})
    back = regions_to_table(table_to_regions(table))  # no size columns: 5 pixels
    assert np.allclose(back["radius"].value, 5.0)
    table["semimajor"] = [2.0, np.nan]  # a NaN size falls back to the default
    back = regions_to_table(table_to_regions(table, scale=3))
    assert np.allclose(back["radius"].value, [6.0, 5.0])
    # ellipse from the bounding box when there are no axes
    table = QTable({"x": [5.0], "y": [5.0], "bbox_xmin": [2], "bbox_xmax": [8],
                    "bbox_ymin": [3], "bbox_ymax": [6]})
    back = regions_to_table(table_to_regions(table, shape="ellipse"))
    assert back["width"][0].value == 7 and back["height"][0].value == 4
    # boxes need only the bounding box, in pixels or (with a WCS) on the sky
    bbox_only = table["bbox_xmin", "bbox_xmax", "bbox_ymin", "bbox_ymax"]
    back = regions_to_table(table_to_regions(bbox_only, shape="box"))
    assert (back["x"][0].value, back["y"][0].value) == (5.0, 4.5)
    wcs = rotated_wcs(0.0)
    back = regions_to_table(table_to_regions(bbox_only, shape="box", wcs=wcs), wcs=wcs)
    assert abs(back["x"][0].value - 5.0) < 1e-9 and abs(back["y"][0].value - 4.5) < 1e-9


def test_missing_columns_are_named():
    table = QTable({"x": [1.0], "y": [2.0]})
    with pytest.raises(InputError, match="bbox_xmin.*semimajor"):
        write_regions(table, "a.reg", shape="box")
    with pytest.raises(InputError, match="semimajor and semiminor"):
        write_regions(table, "a.reg", shape="ellipse")
    assert not Path("a.reg").exists()
    with pytest.raises(InputError, match="'x' and 'y'"):
        write_regions(QTable({"flux": [1.0]}), "a.reg")
    with pytest.raises(InputError, match="text= names column 'name'"):
        write_regions(table, "a.reg", text="name")
    with pytest.raises(InputError, match="shape 'polygon'; supported: circle, box, ellipse"):
        write_regions(table, "a.reg", shape="polygon")
    # a size makes any shape possible
    back = regions_to_table(table_to_regions(table, shape="box", radius=3))
    assert back["width"][0].value == 6 and back["height"][0].value == 6


def test_nonfinite_rows_are_left_out_with_a_warning():
    table = QTable({"x": [1.0, np.nan, 3.0], "y": [2.0, 2.0, 3.0], "id": [1, 2, 3]})
    with pytest.warns(AstropyUserWarning, match="1 of 3 rows"):
        write_regions(table, "nan.reg")
    back = read_regions("nan.reg")
    assert list(back["text"]) == ["1", "3"]


# ----------------------------------------------------------------------------
# sky regions


@pytest.mark.parametrize("fmt", ["ds9", "crtf"])
@pytest.mark.parametrize("shape", ["circle", "box", "ellipse"])
def test_sky_round_trip_first_wcs(first_wcs, fmt, shape):
    """Sky regions written with the FIRST image's WCS come back to the same positions."""
    table = source_table(n=40, wcs=first_wcs)
    path = f"sky_{shape}.{'reg' if fmt == 'ds9' else 'crtf'}"
    write_regions(table, path, format=fmt, shape=shape, wcs=first_wcs)
    parsed = rg.Regions.read(path, format=fmt)  # the regions package itself
    assert len(parsed) == 40 and all(isinstance(r, rg.SkyRegion) for r in parsed)
    back = read_regions(path, wcs=first_wcs)
    if shape == "box":
        xc = 0.5 * (table["bbox_xmin"] + table["bbox_xmax"])
        yc = 0.5 * (table["bbox_ymin"] + table["bbox_ymax"])
        expected = first_wcs.pixel_to_world(xc, yc)
    else:
        expected = table["sky_centroid"]
        xc, yc = table["x"].value, table["y"].value
    sep = back["sky_centroid"].separation(expected).to(u.arcsec)
    assert sep.max() < 1e-4 * u.arcsec  # 8 decimals of a degree: 36 micro-arcsec
    assert np.max(np.abs(back["x"].value - xc)) < 1e-4
    assert np.max(np.abs(back["y"].value - yc)) < 1e-4
    if shape == "ellipse":
        axis = 2 * 2.5 * table["semimajor"].value * PIXEL_SCALE
        assert np.allclose(back["width"].to_value(u.arcsec), axis, rtol=1e-5)
        # north is up in this image: the sky angle is the pixel angle (modulo 180,
        # to within the TAN projection's convergence of meridians off-centre)
        dangle = (back["angle"].value - table["orientation"].value + 90) % 180 - 90
        assert np.max(np.abs(dangle)) < 2e-3
    if shape == "circle":
        assert np.allclose(back["radius"].to_value(u.arcsec),
                           2.5 * table["semimajor"].value * PIXEL_SCALE, rtol=1e-5)


def test_sky_ellipse_on_rotated_wcs():
    """Orientation (from +x) is carried to the sky and back through a rotated WCS."""
    wcs = rotated_wcs(30.0)
    table = source_table(n=20, wcs=wcs, shape=(160, 200))
    write_regions(table, "rot.reg", shape="ellipse", wcs=wcs)
    parsed = rg.Regions.read("rot.reg", format="ds9")
    pix = [r.to_pixel(wcs) for r in parsed]
    dx = np.array([p.center.x for p in pix]) - table["x"].value
    dangle = (np.array([p.angle.to_value(u.deg) for p in pix])
              - table["orientation"].value + 90) % 180 - 90
    width = np.array([p.width for p in pix])
    assert np.max(np.abs(dx)) < 1e-4
    assert np.max(np.abs(dangle)) < 1e-3
    assert np.allclose(width, 5 * table["semimajor"].value, rtol=1e-4)
    # the sky angle differs from the pixel angle by the WCS rotation
    sky_angle = np.array([r.angle.to_value(u.deg) for r in parsed])
    assert np.allclose((sky_angle - table["orientation"].value - 30 + 90) % 180 - 90, 0,
                       atol=5e-3)


@pytest.mark.parametrize("shape", ["circle", "box", "ellipse"])
def test_sky_shapes_match_regions_to_sky(shape):
    """Our vectorised pixel-to-sky conversion equals regions' own, region by region."""
    wcs = rotated_wcs(25.0)
    table = source_table(n=30, shape=(400, 500))
    table["semiminor"][0] = table["semimajor"][0]  # a circular ellipse too
    ours = table_to_regions(table, shape=shape, wcs=wcs)
    theirs = [r.to_sky(wcs) for r in table_to_regions(table, shape=shape)]
    sep = max(a.center.separation(b.center).to_value(u.arcsec) for a, b in zip(ours, theirs))
    assert sep < 1e-9
    names = ["radius"] if shape == "circle" else ["width", "height"]
    for name in names:
        diff = max(abs(getattr(a, name) - getattr(b, name)).to_value(u.arcsec)
                   for a, b in zip(ours, theirs))
        assert diff < 1e-6
    if shape != "circle":
        dangle = [((a.angle - b.angle).to_value(u.deg) + 180) % 360 - 180
                  for a, b in zip(ours, theirs)]
        assert max(np.abs(dangle)) < 1e-4


def test_sky_circles_without_wcs():
    sky = SkyCoord([150.0, 150.01], [2.0, 2.02], unit="deg")
    table = QTable({"sky_centroid": sky, "id": [7, 8]})
    with pytest.raises(InputError, match="radius=5"):
        write_regions(table, "s.reg")
    write_regions(table, "s.reg", radius=6 * u.arcsec)
    write_regions(table, "s.crtf", format="crtf", radius=6 * u.arcsec)
    for path in ("s.reg", "s.crtf"):
        back = read_regions(path)
        assert back["sky_centroid"].separation(sky).max() < 1e-4 * u.arcsec
        assert np.allclose(back["radius"].to_value(u.arcsec), 6.0, rtol=1e-5)
        assert list(back["text"]) == ["7", "8"]
    # ra/dec columns in degrees work the same way
    table = QTable({"ra": [150.0] * u.deg, "dec": [2.0] * u.deg})
    regs = table_to_regions(table, radius=2 * u.arcsec)
    assert isinstance(regs[0], rg.CircleSkyRegion)


def test_crtf_pixel_regions_refused():
    table = QTable({"x": [1.0], "y": [2.0]})
    with pytest.raises(InputError, match="CRTF.*wcs="):
        write_regions(table, "p.crtf", format="crtf")
    assert not Path("p.crtf").exists()


def test_wcs_from_file_header_and_image(first_wcs):
    table = source_table(n=5, wcs=first_wcs)
    header = fits.getheader(example_image_path())
    results = []
    for wcs in (first_wcs, example_image_path(), load_image(example_image_path()), header):
        results.append(regions_to_table(table_to_regions(table, wcs=wcs))["ra"])
    for ra in results[1:]:
        assert np.allclose(ra.value, results[0].value, atol=1e-12)
    with pytest.raises(InputError, match="wcs= must be"):
        table_to_regions(table, wcs=3)


# ----------------------------------------------------------------------------
# text, labels, scores, colours


def test_labels_scores_and_colours(first_wcs):
    table = source_table(n=30, wcs=first_wcs)
    write_regions(table, "lab.reg", wcs=first_wcs)
    text = Path("lab.reg").read_text()
    assert "tag={FRI}" in text and "tag={score=" in text
    back = read_regions("lab.reg")
    assert list(back["label"]) == list(table["label"])
    assert np.max(np.abs(back["score"] - table["score"])) <= 5e-4  # 3 decimals
    expected_text = [f"{lab} {s:.2f}" for lab, s in zip(table["label"], table["score"])]
    assert list(back["text"]) == expected_text
    # one colour per class, the same whatever the row order
    colours = dict(zip(back["label"], back["color"]))
    assert len(set(colours.values())) == 3
    for label, colour in zip(back["label"], back["color"]):
        assert colours[label] == colour
    shuffled = table[np.random.default_rng(3).permutation(len(table))]
    regs = table_to_regions(shuffled, wcs=first_wcs)
    assert {str(r.meta["tag"][0]): r.visual["color"] for r in regs} == colours
    # the text column can be chosen, or left out
    write_regions(table, "id.reg", wcs=first_wcs, text="id", overwrite=True)
    assert list(read_regions("id.reg")["text"]) == [str(i) for i in table["id"]]
    write_regions(table, "none.reg", wcs=first_wcs, text=None, label=None, score=None)
    assert "text=" not in Path("none.reg").read_text()
    # CRTF carries the text as its label
    write_regions(table, "lab.crtf", format="crtf", wcs=first_wcs)
    assert list(read_regions("lab.crtf")["text"]) == expected_text


def test_probability_matrix_and_awkward_text():
    table = QTable({"x": [1.0, 2.0], "y": [1.0, 2.0],
                    "label": ["a{b}", "c,d"],
                    "probability": np.array([[0.2, 0.8], [0.6, 0.4]])})
    write_regions(table, "prob.reg", color={"c d": "red"})
    back = read_regions("prob.reg")
    assert np.allclose(back["score"], [0.8, 0.6])
    assert list(back["label"]) == ["a b", "c d"]  # braces and commas made safe
    assert back["color"][1] == "red"


# ----------------------------------------------------------------------------
# bad input and atomic output


def test_unsupported_format_lists_supported():
    table = QTable({"x": [1.0], "y": [2.0]})
    with pytest.raises(InputError, match="Unsupported region format 'fits'; supported: ds9, crtf"):
        write_regions(table, "a.fits", format="fits")
    Path("a.reg").write_text("circle(1,1,1)\n")
    with pytest.raises(InputError, match="supported: ds9, crtf"):
        read_regions("a.reg", format="stc")


def test_existing_output_refused_and_atomic(monkeypatch):
    table = QTable({"x": [1.0], "y": [2.0]})
    Path("exists.reg").write_text("keep me")
    with pytest.raises(InputError, match="exists.*overwrite"):
        write_regions(table, "exists.reg")
    assert Path("exists.reg").read_text() == "keep me"

    def broken(*args, **kwargs):
        Path(args[1]).write_text("partial")
        raise OSError("disk full")

    # (a context, not monkeypatch.undo(), which would also undo the chdir to tmp_path)
    with monkeypatch.context() as m:
        m.setattr(rg.Regions, "write", broken)
        with pytest.raises(OSError, match="disk full"):
            write_regions(table, "exists.reg", overwrite=True)
        assert Path("exists.reg").read_text() == "keep me"
        assert os.listdir(".") == ["exists.reg"]  # no temporary file left behind
    write_regions(table, "exists.reg", overwrite=True)
    assert "circle(2.00000000,3.00000000,5.00000000)" in Path("exists.reg").read_text()


def test_read_regions_errors():
    with pytest.raises(MissingFileError, match="nothere.reg"):
        read_regions("nothere.reg")
    Path("bad.reg").write_text("# Region file format: DS9\nimage\ncircle(1,2\n")
    with pytest.raises(InputError, match="bad.reg"):
        read_regions("bad.reg")
    Path("mixed.reg").write_text("image; circle(1,2,3)\nicrs; circle(150,2,0.001)\n")
    with pytest.raises(InputError, match="mix pixel and sky"):
        read_regions("mixed.reg")


def test_read_foreign_ds9_file(first_wcs):
    """A DS9 file as DS9 saves it: fk5, sexagesimal, a polygon and a point."""
    Path("ds9.reg").write_text(
        "# Region file format: DS9 version 4.1\n"
        'global color=green dashlist=8 3 width=1 font="helvetica 10 normal roman"\n'
        "fk5\n"
        'circle(14:24:03.418,+0:29:57.95,5.4") # text={core} tag={FRI}\n'
        "polygon(216.01,0.49,216.02,0.49,216.02,0.50,216.01,0.50)\n"
        "point(216.014,0.499) # point=x\n")
    back = read_regions("ds9.reg", wcs=first_wcs)
    assert list(back["shape"]) == ["circle", "polygon", "point"]
    assert back["text"][0] == "core" and back["label"][0] == "FRI"
    assert back["radius"][0].to_value(u.arcsec) == pytest.approx(5.4)
    centre = SkyCoord("14:24:03.418 +0:29:57.95", unit=(u.hourangle, u.deg), frame="fk5")
    assert back["sky_centroid"][0].separation(centre) < 1e-6 * u.arcsec
    assert back["sky_centroid"][1].separation(
        SkyCoord(216.015, 0.495, unit="deg", frame="fk5")) < 0.1 * u.arcsec
    assert np.isfinite(back["x"]).all()


def test_empty_table_writes_empty_file():
    table = QTable({"x": np.zeros(0), "y": np.zeros(0)})
    write_regions(table, "empty.reg")
    back = read_regions("empty.reg")
    assert len(back) == 0 and "x" in back.colnames


# ----------------------------------------------------------------------------
# table I/O


@pytest.mark.parametrize("name", ["t.ecsv", "portable.ecsv", "t.fits", "t.fits.gz", "t.vot",
                                  "t.xml"])
def test_table_round_trip(first_wcs, name):
    table = source_table(n=25, wcs=first_wcs)
    del table["ra"], table["dec"]
    table["probabilities"] = np.random.default_rng(0).dirichlet([1, 1, 1], 25)
    table["x"].info.description = "centroid x, 0-based pixel"
    table.meta["snr"] = 5.0
    table.meta["unit"] = u.Jy / u.beam  # astropy objects in meta are written as text
    table.meta["fwhm"] = np.float64(5.4)
    colnames = list(table.colnames)
    write_table(table, name, portable=name.startswith("portable"))
    assert table.colnames == colnames and isinstance(table.meta["unit"], u.UnitBase)
    back = read_table(name)
    assert isinstance(back, QTable) and len(back) == 25
    assert isinstance(back["sky_centroid"], SkyCoord)
    assert back["sky_centroid"].separation(table["sky_centroid"]).max() < 1e-9 * u.arcsec
    assert back["x"].unit == u.pix and back["orientation"].unit == u.deg
    assert np.array_equal(back["x"].value, table["x"].value)
    assert np.array_equal(back["bbox_xmin"], table["bbox_xmin"])
    assert list(back["label"]) == list(table["label"])
    assert np.array_equal(back["probabilities"], table["probabilities"])
    assert back["x"].info.description == "centroid x, 0-based pixel"
    assert back.meta["versions"] == table.meta["versions"]  # a dict, in every format
    assert back.meta["snr"] == 5.0 and back.meta["stage"] == "test"
    assert back.meta["unit"] == "Jy / beam" and back.meta["fwhm"] == 5.4
    if name.endswith((".vot", ".xml")) or name.startswith("portable"):  # SkyCoord as ra/dec
        assert back["ra"].unit == u.deg
        assert back.colnames.index("sky_centroid") == table.colnames.index("sky_centroid")
    if name.startswith("portable"):  # no astropy-only YAML tags: STILTS/TOPCAT read it
        assert "!astropy" not in Path(name).read_text()
    if name == "t.ecsv":  # plain astropy reads the SkyCoord; Quantities need no tags
        assert isinstance(QTable.read(name)["sky_centroid"], SkyCoord)
        assert "!astropy.units.Unit {unit: pix}" not in Path(name).read_text()


def test_fits_table_opens_with_plain_astropy(first_wcs):
    """Other FITS readers see ordinary columns and header keywords."""
    table = source_table(n=5, wcs=first_wcs)
    table.meta["long_keyword_name"] = "x"
    write_table(table, "plain.fits")
    with fits.open("plain.fits") as hdul:
        header = hdul[1].header
        names = hdul[1].columns.names
    assert header["STAGE"] == "test" and header["LONG_KEYWORD_NAME"] == "x"
    assert "sky_centroid.ra" in names and "x" in names
    assert read_table("plain.fits").meta["long_keyword_name"] == "x"


def test_votable_fields_have_ucds(first_wcs):
    table = source_table(n=5, wcs=first_wcs)
    write_table(table, "ucd.vot")
    from astropy.io.votable import parse
    fields = {f.name: f for f in parse("ucd.vot").get_first_table().fields}
    assert fields["ra"].ucd == "pos.eq.ra;meta.main" and fields["ra"].unit == u.deg
    assert "sky_centroid" not in fields  # the table's own ra/dec are kept
    # a SkyCoord with another name is written as <name>_ra, <name>_dec and read back
    table = QTable({"pos": SkyCoord([1.0], [2.0], unit="deg")})
    write_table(table, "pos.vot")
    from astropy.io.votable import parse_single_table
    fields = [f.name for f in parse_single_table("pos.vot").fields]
    assert fields == ["pos_ra", "pos_dec"]
    back = read_table("pos.vot")
    assert back.colnames == ["pos"] and back["pos"].separation(table["pos"]).arcsec[0] < 1e-6


def test_csv_table(first_wcs):
    table = source_table(n=5, wcs=first_wcs)
    del table["sky_centroid"]
    write_table(table, "t.csv")
    back = read_table("t.csv")
    assert np.allclose(back["x"], table["x"].value)
    assert back["sky_centroid"].separation(
        first_wcs.pixel_to_world(table["x"].value, table["y"].value)).max() < 1e-6 * u.arcsec
    table["probabilities"] = np.ones((5, 2))
    with pytest.raises(InputError, match="CSV cannot hold.*probabilities"):
        write_table(table, "t2.csv")
    assert not Path("t2.csv").exists()


def test_table_bad_input():
    table = QTable({"a": [1, 2]})
    with pytest.raises(InputError, match="Cannot tell the table format of 't.txt'.*ecsv"):
        write_table(table, "t.txt")
    with pytest.raises(InputError, match="Unsupported table format 'hdf5'"):
        write_table(table, "t.h5", format="hdf5")
    write_table(table, "t.ecsv")
    with pytest.raises(InputError, match="exists"):
        write_table(table, "t.ecsv")
    write_table(Table({"a": [3]}), "t.ecsv", overwrite=True)
    assert list(read_table("t.ecsv")["a"]) == [3]
    with pytest.raises(MissingFileError, match="missing.fits"):
        read_table("missing.fits")
    Path("junk.fits").write_bytes(b"not a fits file at all" * 10)
    with pytest.raises(InputError, match="Cannot read 'junk.fits' as a fits table"):
        read_table("junk.fits")
    Path("junk.vot").write_text("<xml>nothing</xml>")
    with pytest.raises(InputError, match="junk.vot"):
        read_table("junk.vot")
    assert sorted(TABLE_FORMATS) == ["csv", "ecsv", "fits", "hats", "votable"]
