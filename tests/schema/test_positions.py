"""The one position parser (frames, units, errors), and what uses it: the cross-match CLI."""

import numpy as np
import pytest
import astropy.units as u
from astropy.coordinates import FK5, SkyCoord
from astropy.table import MaskedColumn, QTable, Table
from astropy.wcs import WCS

from astrofmtools import InputError
from astrofmtools.catalog import read_table, write_table
from astrofmtools.cli import main
from astrofmtools.schema import (BBOX_COLUMNS, COLUMNS, as_labels, boxes_from_table,
                                 boxes_to_columns, describe_columns, parse_frame,
                                 parse_positions, register_column)

#: The Galactic centre (l = 0, b = 0) in ICRS.
CENTRE_RA, CENTRE_DEC = 266.40499, -28.93617


def assert_centre(sky):
    np.testing.assert_allclose(sky.ra.deg, CENTRE_RA, atol=1e-4)
    np.testing.assert_allclose(sky.dec.deg, CENTRE_DEC, atol=1e-4)
    assert sky.frame.name == "icrs"


# ----------------------------------------------------------------------------
# frames

@pytest.mark.parametrize("lon, lat", [("l", "b"), ("GLON", "GLAT"), ("glon", "glat"),
                                      ("LII", "BII")])
def test_galactic_columns_found_by_name(lon, lat):
    table = QTable({"id": [1, 2], lon: [0.0, 0.0] * u.deg, lat: [0.0, 0.0] * u.deg})
    pos = parse_positions(table, kind="sky")
    assert pos.kind == "sky" and pos.frame == "galactic" and pos.columns == (lon, lat)
    assert_centre(pos.sky)
    assert pos.valid.tolist() == [True, True]


def test_named_l_b_are_galactic_unless_a_frame_is_given():
    table = Table({"l": [0.0], "b": [0.0], "ra": [10.0], "dec": [20.0]})
    # found by name, ra/dec come first; named, l,b are Galactic (in any case)
    assert parse_positions(table, kind="sky").columns == ("ra", "dec")
    for spec in ("l,b", ("l", "b"), "L, B"):
        pos = parse_positions(table, spec, kind="sky")
        assert pos.frame == "galactic"
        assert_centre(pos.sky)
    icrs = parse_positions(table, "l,b", frame="icrs", kind="sky")
    assert icrs.frame == "icrs" and icrs.sky.ra.deg[0] == 0 and icrs.sky.dec.deg[0] == 0
    # a frame given picks the pairs of that frame among those found by name
    assert parse_positions(table, frame="galactic", kind="sky").columns == ("l", "b")
    # (lon, lat, frame) as one spec
    assert parse_positions(table, ("ra", "dec", "galactic"), kind="sky").frame == "galactic"


def test_upper_case_L_B_are_not_taken_for_galactic_by_name():
    """A catalogue's B (magnitude) and L (luminosity) are not Galactic coordinates."""
    table = Table({"B": [12.3], "L": [1e10]})
    assert parse_positions(table, kind="sky", required=False) is None


def test_j2000_names_are_icrs_and_fk5_on_request():
    sky = SkyCoord([150.0, 10.0], [2.0, -30.0], unit="deg")
    for ra, dec in (("RAJ2000", "DEJ2000"), ("_RAJ2000", "_DEJ2000"), ("ALPHA_J2000",
                                                                       "DELTA_J2000")):
        table = Table({ra: sky.ra.deg, dec: sky.dec.deg})
        pos = parse_positions(table, kind="sky")
        assert pos.frame == "icrs" and pos.columns == (ra, dec)
        np.testing.assert_allclose(pos.sky.ra.deg, sky.ra.deg)
    fk5 = parse_positions(table, frame="fk5", kind="sky")
    assert fk5.frame == "fk5"
    offset = fk5.sky.separation(pos.sky).to_value(u.mas)
    assert np.all((offset > 1) & (offset < 30))  # the FK5 / ICRS frame tie
    expected = SkyCoord(sky.ra, sky.dec, frame=FK5(equinox="J2000")).icrs
    np.testing.assert_allclose(fk5.sky.separation(expected).to_value(u.mas), 0, atol=1e-6)


def test_sexagesimal_strings_and_units():
    table = Table({"RAJ2000": ["10 00 00.0", "17 45 37.2", ""],
                   "DEJ2000": ["+02 00 00", "-28 56 10", "+01 00 00"]})
    pos = parse_positions(table, kind="sky")
    np.testing.assert_allclose(pos.sky.ra.deg[:2], [150.0, 266.405], atol=1e-9)
    np.testing.assert_allclose(pos.sky.dec.deg[:2], [2.0, -28.93611111], atol=1e-6)
    assert pos.valid.tolist() == [True, True, False]
    # units: radians, hours; a plain column in degrees
    table = QTable({"ra": [np.pi] * u.rad, "dec": [0.5] * u.deg})
    assert parse_positions(table, kind="sky").sky.ra.deg[0] == pytest.approx(180)
    table = Table({"ra": [12.0], "dec": [0.5]})
    table["ra"].unit = u.hourangle
    assert parse_positions(table, kind="sky").sky.ra.deg[0] == pytest.approx(180)


def test_skycoord_column_keeps_its_frame():
    table = QTable({"pos": SkyCoord([0.0, 1.0], [0.0, 0.0], unit="deg", frame="galactic"),
                    "ra": [1.0, 2.0], "dec": [3.0, 4.0]})
    pos = parse_positions(table, kind="sky")
    assert pos.columns == ("pos",) and pos.frame == "galactic"
    assert_centre(pos.sky[0])
    assert parse_positions(table, "pos", kind="sky").columns == ("pos",)
    # sky_centroid is preferred to other SkyCoord columns
    table["sky_centroid"] = SkyCoord([1.0, 2.0], [3.0, 4.0], unit="deg")
    assert parse_positions(table, kind="sky").columns == ("sky_centroid",)


def test_ucds_name_the_columns_and_their_frame():
    table = Table({"lon": [0.0], "lat": [0.0]})
    table["lon"].meta["ucd"] = "pos.galactic.lon"
    table["lat"].meta["ucd"] = "pos.galactic.lat"
    pos = parse_positions(table, kind="sky")
    assert pos.columns == ("lon", "lat") and pos.frame == "galactic"
    assert_centre(pos.sky)
    # named columns take the frame of their UCDs too
    assert parse_positions(table, "lon,lat", kind="sky").frame == "galactic"


def test_masked_and_nan_rows_are_invalid_not_errors():
    table = Table({"GLON": MaskedColumn([0.0, 1.0, np.nan], mask=[False, True, False]),
                   "GLAT": [0.0, 0.0, 0.0]})
    pos = parse_positions(table, kind="sky")
    assert pos.valid.tolist() == [True, False, False]
    assert_centre(pos.sky[0])
    assert np.isnan(pos.sky.ra.deg[1:]).all()


# ----------------------------------------------------------------------------
# pixels

def test_pixels_first_for_any_and_through_a_wcs():
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [51.0, 51.0]
    wcs.wcs.cdelt = [-1 / 3600, 1 / 3600]
    sky = wcs.pixel_to_world([10.0, 20.0], [30.0, 40.0])
    table = QTable({"x": [10.0, 20.0] * u.pix, "y": MaskedColumn([30.0, 40.0],
                                                                 mask=[False, True]),
                    "sky_centroid": sky})
    pos = parse_positions(table)
    assert pos.kind == "pixel" and pos.columns == ("x", "y") and pos.frame is None
    np.testing.assert_array_equal(pos.x, [10.0, 20.0])
    assert pos.valid.tolist() == [True, False]
    assert pos.describe() == "columns 'x', 'y' (0-based pixels)"
    # the sky positions go back to the same pixels through the WCS
    on_sky = parse_positions(table, kind="sky")
    x, y = on_sky.pixels(wcs)
    np.testing.assert_allclose(x, [10.0, 20.0], atol=1e-8)
    np.testing.assert_allclose(y, [30.0, 40.0], atol=1e-8)
    # named pixel columns
    table["px"], table["py"] = [1.0, 2.0], [3.0, 4.0]
    assert parse_positions(table, "px,py", kind="pixel").x.tolist() == [1.0, 2.0]


# ----------------------------------------------------------------------------
# errors name the table, the column and the row

def test_latitude_out_of_range_names_table_column_and_row():
    table = QTable({"ra": [10.0, 20.0, 30.0] * u.deg, "dec": [10.0, 20.0, 100.0] * u.deg})
    with pytest.raises(InputError, match=r"Column 'dec' of cat\.ecsv.*row 2 has 100 deg"):
        parse_positions(table, kind="sky", name="cat.ecsv")


def test_other_errors():
    table = Table({"ra": [1.0], "dec": [2.0], "flux": [3.0], "x": [1.0] * u.deg,
                   "y": [2.0] * u.deg, "name": ["a"]})
    with pytest.raises(InputError, match=r"cat\.fits has no column 'RA_X' \(sky=\)"):
        parse_positions(table, "RA_X,dec", kind="sky", name="cat.fits", argument="sky")
    with pytest.raises(InputError, match="no SkyCoord column 'flux'"):
        parse_positions(table, "flux", kind="sky")
    with pytest.raises(InputError, match="Unknown sky frame 'galactc'"):
        parse_positions(table, frame="galactc", kind="sky")
    with pytest.raises(InputError, match="Column 'x' of the table is an angle"):
        parse_positions(table, kind="pixel")
    with pytest.raises(InputError, match="Column 'flux' of T has unit mJy, not an angle"):
        t = QTable({"flux": [1.0] * u.mJy, "dec": [1.0]})
        parse_positions(t, "flux,dec", kind="sky", name="T")
    with pytest.raises(InputError, match=r"column 'name' of T.*row 0 \(0-based\) holds 'a'"):
        parse_positions(table, "name,dec", kind="sky", name="T")
    with pytest.raises(InputError, match=r"T has no sky positions.*'GLON'/'GLAT'.*its columns "
                                         r"are: flux\. Name them with sky= \(hint\)\."):
        parse_positions(Table({"flux": [1.0]}), kind="sky", name="T", argument="sky",
                        hint="(hint)")
    assert parse_frame(FK5(equinox="J2000")).name == "fk5"


# ----------------------------------------------------------------------------
# columns, boxes, labels

def test_registry_and_describe_columns():
    assert {"id", "x", "y", "sky_centroid", "ra", "dec", "flux", "peak", "snr", "label",
            "probability", "score", *BBOX_COLUMNS} <= set(COLUMNS)
    register_column("test_schema_flux", "mJy", "A flux for this test")
    table = Table({"test_schema_flux": [1.0], "ra": [12.0], "x": [3.0]})
    table["ra"].unit = u.hourangle
    table["x"].info.description = "mine"
    out = describe_columns(QTable(table))
    assert out["test_schema_flux"].unit == u.mJy
    assert out["ra"].to_value(u.deg)[0] == pytest.approx(180)
    assert out["ra"].info.description == "Right ascension (ICRS)"
    assert out["x"].unit == u.pix and out["x"].info.description == "mine"
    with pytest.raises(InputError, match="registered already"):
        register_column("test_schema_flux", "Jy")
    with pytest.raises(InputError, match="Column 'dec' of T is in mJy"):
        describe_columns(QTable({"dec": [1.0] * u.mJy}), name="T")


def test_boxes_round_trip_and_errors():
    boxes = np.array([[10.0, 5.0, 20.0, 8.0], [0.0, 0.0, 1.0, 1.0]], dtype=np.float32)
    table = QTable(boxes_to_columns(boxes))
    assert table.colnames == list(BBOX_COLUMNS)
    np.testing.assert_array_equal(boxes_from_table(table), boxes)
    table["bbox_xmax"][1] = -3
    with pytest.raises(InputError, match=r"truth\.ecsv has boxes.*rows 1 \(0-based\)"):
        boxes_from_table(table, "truth.ecsv")
    with pytest.raises(InputError, match="T has no box columns bbox_ymin, bbox_ymax"):
        boxes_from_table(Table({"bbox_xmin": [1], "bbox_xmax": [2]}), "T")


def test_labels():
    np.testing.assert_array_equal(as_labels(np.array([b"FRI  ", b"FRII"])), ["FRI", "FRII"])
    assert as_labels([1.0, 2.0]).dtype == np.int64
    assert as_labels(Table({"k": ["a", "b"]})["k"]).tolist() == ["a", "b"]
    with pytest.raises(InputError, match="masked"):
        as_labels(np.ma.MaskedArray([1, 2], mask=[False, True]))
    with pytest.raises(InputError, match="strings or integers"):
        as_labels([0.5, 1.0], "y_true")
    with pytest.raises(InputError, match="Label column 'kind' is not in the table"):
        as_labels("kind", table=Table({"a": [1]}))
    with pytest.raises(InputError, match=r"one value per row \(3\)"):
        as_labels([1, 2], n=3)


# ----------------------------------------------------------------------------
# the command line: a reference catalogue with Galactic l/b only

def _tables(n=40, seed=1):
    """Sources near the Galactic plane and a reference with their l/b, moved < 0.5 arcsec."""
    rng = np.random.default_rng(seed)
    gal = SkyCoord(rng.uniform(18.05, 18.39, n) * u.deg, rng.uniform(0.13, 0.30, n) * u.deg,
                   frame="galactic")
    sources = QTable({"id": np.arange(1, n + 1), "sky_centroid": gal.icrs})
    moved = gal.directional_offset_by(rng.uniform(0, 360, n) * u.deg,
                                      rng.uniform(0, 0.5, n) * u.arcsec)
    reference = Table({"name": [f"G{i:03d}" for i in range(n)], "l": moved.l.deg,
                       "b": moved.b.deg, "f4_5": rng.uniform(50, 400, n)})
    reference["l"].unit = reference["b"].unit = u.deg
    return sources, reference


@pytest.mark.parametrize("options", [["--ref-sky", "l,b"], []], ids=["named", "found"])
def test_cli_crossmatch_with_galactic_reference_matches_every_row(options):
    sources, reference = _tables()
    write_table(sources, "sources.ecsv")
    write_table(reference, "galactic.vot")
    assert main(["crossmatch", "sources.ecsv", "galactic.vot", "--max-sep", "1arcsec",
                 *options, "-o", "matched.ecsv"]) == 0
    matched = read_table("matched.ecsv")
    assert len(matched) == len(sources)
    assert matched["name"].tolist() == reference["name"].tolist()
    assert np.all(matched["separation"] < 0.5 * u.arcsec)
    info = matched.meta["crossmatch"]
    assert info["ref_sky"] == ["l", "b"] and info["ref_frame"] == "galactic"
    assert info["n_matched_rows"] == len(sources)


def test_cli_crossmatch_reports_the_frames(capsys):
    sources, reference = _tables()
    write_table(sources, "sources.ecsv")
    write_table(reference, "galactic.ecsv")
    assert main(["crossmatch", "sources.ecsv", "galactic.ecsv", "--ref-sky", "l,b",
                 "-o", "matched.ecsv"]) == 0
    err = capsys.readouterr().err
    assert "columns 'l', 'b' (galactic) of galactic.ecsv" in err
    assert "40 of 40 rows" in err
    # l/b read as ICRS on request: nothing matches, and the log says which frame was used
    assert main(["crossmatch", "sources.ecsv", "galactic.ecsv", "--ref-sky", "l,b",
                 "--ref-frame", "icrs", "-o", "icrs.ecsv"]) == 0
    err = capsys.readouterr().err
    assert "columns 'l', 'b' (icrs)" in err and "0 of 40 rows" in err
    assert main(["crossmatch", "sources.ecsv", "galactic.ecsv", "--ref-frame", "galactc",
                 "-o", "bad.ecsv"]) == 2
    assert "Unknown sky frame 'galactc'" in capsys.readouterr().err
