# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Sky cross-matching (astrofmtools.catalog.crossmatch) and ``astrofm crossmatch``."""

import numpy as np
import pytest
import astropy.units as u
from astropy.coordinates import SkyCoord
from astropy.io.votable import from_table
from astropy.table import QTable, Table
from astropy.utils.masked import Masked

from astrofmtools import InputError
from astrofmtools.catalog import CROSSMATCH_MODES, crossmatch, read_table, write_table
from astrofmtools.catalog import matching
from astrofmtools.cli import main

MAX_SEP = 5.0  # arcsec
MODES = tuple(CROSSMATCH_MODES)


# ----------------------------------------------------------------------------
# synthetic catalogues and brute force

def truth_and_reference(seed=3):
    """
    A truth table (jittered 60" grid: sources at least 40" apart) and a
    reference made from it: half the sources moved by 0.1-4.9" (true pairs),
    a quarter moved by 5.1-15" (beyond the radius), a quarter absent, plus
    unrelated sources 25" from a truth source (at least 15" from any other);
    the reference rows shuffled.
    """
    rng = np.random.default_rng(seed)
    step, n_side = 60.0 / 3600, 30
    gx, gy = np.meshgrid(np.arange(n_side), np.arange(n_side))
    dec = 2.0 + (gy.ravel() - n_side / 2) * step + rng.uniform(-10, 10, gx.size) / 3600
    ra = 150.0 + ((gx.ravel() - n_side / 2) * step
                  + rng.uniform(-10, 10, gx.size) / 3600) / np.cos(np.radians(dec))
    n = ra.size
    truth = QTable({"id": np.arange(n), "flux": rng.uniform(1, 10, n) * u.mJy,
                    "sky_centroid": SkyCoord(ra, dec, unit="deg")})
    kind = rng.permutation(np.repeat([0, 1, 2, 3], n // 4))  # 0, 1 within; 2 beyond; 3 absent
    within, beyond = np.flatnonzero(kind < 2), np.flatnonzero(kind == 2)
    offset = np.empty(n)
    offset[within] = rng.uniform(0.1, 4.9, within.size)
    offset[beyond] = rng.uniform(5.1, 15.0, beyond.size)
    moved = np.concatenate([within, beyond])
    pa = rng.uniform(0, 360, n) * u.deg
    pos = truth["sky_centroid"][moved].directional_offset_by(pa[moved], offset[moved] * u.arcsec)
    extra_from = rng.choice(n, 300, replace=False)
    extra = truth["sky_centroid"][extra_from].directional_offset_by(
        rng.uniform(0, 360, 300) * u.deg, 25 * u.arcsec)
    ra_ref = np.concatenate([pos.ra.deg, extra.ra.deg])
    dec_ref = np.concatenate([pos.dec.deg, extra.dec.deg])
    source = np.concatenate([moved, np.full(300, -1)])  # truth row of each reference row
    order = rng.permutation(source.size)
    reference = QTable({"name": [f"R{k:04d}" for k in range(source.size)],
                        "flux": rng.uniform(1, 10, source.size) * u.mJy,
                        "RAJ2000": ra_ref[order] * u.deg, "DEJ2000": dec_ref[order] * u.deg})
    source = source[order]
    true_pairs = {(int(source[j]), j) for j in range(source.size)
                  if source[j] >= 0 and kind[source[j]] < 2}
    true_sep = {int(source[j]): offset[source[j]] for j in range(source.size)
                if source[j] >= 0 and kind[source[j]] < 2}
    return truth, reference, true_pairs, true_sep


def random_cap(n, centre, radius_deg, seed):
    """n positions uniform within radius_deg of centre (ra, dec in deg)."""
    rng = np.random.default_rng(seed)
    sep = radius_deg * np.sqrt(rng.uniform(0, 1, n)) * u.deg
    return SkyCoord(*centre, unit="deg").directional_offset_by(
        rng.uniform(0, 360, n) * u.deg, sep)


def haversine_pairs(c1, c2, limit_arcsec, chunk=500):
    """All pairs within the limit by brute force (numpy haversine): rows, refs, arcsec."""
    ra1, dec1 = np.radians(c1.ra.deg), np.radians(c1.dec.deg)
    ra2, dec2 = np.radians(c2.ra.deg), np.radians(c2.dec.deg)
    rows, refs, seps = [], [], []
    for start in range(0, len(ra1), chunk):
        a, d = ra1[start:start + chunk, None], dec1[start:start + chunk, None]
        hav = (np.sin((dec2 - d) / 2) ** 2
               + np.cos(d) * np.cos(dec2) * np.sin((ra2 - a) / 2) ** 2)
        sep = np.degrees(2 * np.arcsin(np.sqrt(np.clip(hav, 0, 1)))) * 3600
        i, j = np.nonzero(sep <= limit_arcsec)
        rows.append(i + start)
        refs.append(j)
        seps.append(sep[i, j])
    rows, refs, seps = map(np.concatenate, (rows, refs, seps))
    # the test is only well posed if no pair lies within rounding of the limit
    assert not np.any(np.abs(seps - limit_arcsec) < 1e-6)
    return rows, refs, seps


def greedy_by_hand(rows, refs, seps):
    """One-to-one matching the slow, obvious way."""
    used_rows, used_refs, pairs = set(), set(), set()
    for k in np.lexsort((refs, rows, seps)):
        i, j = int(rows[k]), int(refs[k])
        if i not in used_rows and j not in used_refs:
            used_rows.add(i)
            used_refs.add(j)
            pairs.add((i, j))
    return pairs


def pairs_of(matched):
    index = matched["ref_index"]
    keep = ~np.ma.getmaskarray(index)
    return set(zip(np.asarray(matched["id"])[keep].tolist(),
                   np.asarray(np.ma.getdata(index))[keep].tolist()))


# ----------------------------------------------------------------------------
# recovery of known pairs

@pytest.mark.parametrize("mode", MODES)
def test_recovers_every_true_pair_and_no_false_one(mode):
    truth, reference, true_pairs, true_sep = truth_and_reference()
    matched = crossmatch(truth, reference, max_sep=MAX_SEP * u.arcsec, mode=mode)
    assert len(true_pairs) == 450
    assert pairs_of(matched) == true_pairs
    assert len(matched) == 450
    # the separations are the offsets the sources were moved by
    sep = matched["separation"].to_value(u.arcsec)
    expected = np.array([true_sep[i] for i in matched["id"]])
    np.testing.assert_allclose(sep, expected, atol=1e-6)
    assert matched["separation"].unit == u.arcsec
    assert np.all(matched["n_matches"] == 1)
    # the table's rows, in the table's order, with every column
    assert np.all(np.diff(matched["id"]) > 0)
    assert matched.colnames[:3] == ["id", "flux", "sky_centroid"]
    np.testing.assert_array_equal(matched["flux"], truth["flux"][matched["id"]])
    np.testing.assert_array_equal(matched["name"],
                                  reference["name"][np.asarray(matched["ref_index"])])
    info = matched.meta["crossmatch"]
    assert info["mode"] == mode and info["max_sep_arcsec"] == MAX_SEP
    assert info["n_matched_rows"] == 450 and info["n_pairs"] == 450
    assert info["sky"] == "sky_centroid" and info["ref_sky"] == ["RAJ2000", "DEJ2000"]
    assert "astropy" in info["versions"] and info["reference"] == "reference"


@pytest.mark.parametrize("centre", [(150.0, 2.0), (0.0, 0.0), (0.0, 89.95)],
                         ids=["plain", "ra-wrap", "pole"])
def test_agrees_with_brute_force_haversine(centre):
    # 2000 x 2000 sources in a cap of 0.05 deg: 1.5 neighbours within 5" on average, so
    # rows with several candidates and references wanted by several rows are common
    table = QTable({"id": np.arange(2000), "sky_centroid": random_cap(2000, centre, 0.05, 1)})
    reference = QTable({"sky_centroid": random_cap(2000, centre, 0.05, 2)})
    if centre[0] == 0.0 and centre[1] == 0.0:
        ra = table["sky_centroid"].ra.deg
        assert (ra > 359.9).any() and (ra < 0.1).any()  # the catalogue straddles RA 0/360
    rows, refs, seps = haversine_pairs(table["sky_centroid"], reference["sky_centroid"],
                                       MAX_SEP)
    assert len(rows) > 2000
    counts = np.bincount(rows, minlength=2000)

    everything = crossmatch(table, reference, max_sep=MAX_SEP, mode="all")
    assert pairs_of(everything) == set(zip(rows.tolist(), refs.tolist()))
    brute_sep = dict(zip(zip(rows.tolist(), refs.tolist()), seps))
    keys = zip(everything["id"].tolist(), everything["ref_index"].tolist())
    got = np.array([brute_sep[key] for key in keys])
    np.testing.assert_allclose(everything["separation"].to_value(u.arcsec), got, atol=1e-7)
    np.testing.assert_array_equal(everything["n_matches"], counts[everything["id"]])
    # a row's pairs come together, closest first
    key = np.asarray(everything["id"]) * 1e3 + everything["separation"].to_value(u.arcsec)
    assert np.all(np.diff(key) > 0)

    nearest = crossmatch(table, reference, max_sep=MAX_SEP, mode="nearest")
    order = np.lexsort((refs, seps, rows))
    first = order[np.unique(rows[order], return_index=True)[1]]
    assert pairs_of(nearest) == set(zip(rows[first].tolist(), refs[first].tolist()))
    np.testing.assert_array_equal(nearest["n_matches"], counts[nearest["id"]])
    # and what astropy's match_to_catalog_sky gives, cut at max_sep
    idx, sep, _ = table["sky_centroid"].match_to_catalog_sky(reference["sky_centroid"])
    within = np.flatnonzero(sep <= MAX_SEP * u.arcsec)
    np.testing.assert_array_equal(nearest["id"], within)
    np.testing.assert_array_equal(nearest["ref_index"], idx[within])
    assert (np.bincount(nearest["ref_index"]) > 1).any()  # references shared by rows

    best = crossmatch(table, reference, max_sep=MAX_SEP, mode="one-to-one")
    expected = greedy_by_hand(rows, refs, seps)
    assert pairs_of(best) == expected
    # never a reference (nor a row) twice, and fewer pairs than nearest-neighbour
    assert len(np.unique(best["ref_index"])) == len(best) == len(np.unique(best["id"]))
    assert len(best) < len(nearest)
    assert best.meta["crossmatch"]["mode"] == "best"


def test_one_to_one_takes_the_closest_pair_first():
    # along a meridian: A at 0", B at 2.5"; reference X at 1.5", Y at 4.5" (from A)
    base = SkyCoord(150, 2, unit="deg")
    north = lambda arcsec: base.directional_offset_by(0 * u.deg, arcsec * u.arcsec)  # noqa
    table = QTable({"id": ["A", "B"], "sky_centroid": SkyCoord([north(0), north(2.5)])})
    reference = QTable({"id": ["X", "Y"], "sky_centroid": SkyCoord([north(1.5), north(4.5)])})
    nearest = crossmatch(table, reference, max_sep=5, mode="nearest")
    assert list(nearest["id_ref"]) == ["X", "X"]
    best = crossmatch(table, reference, max_sep=5, mode="best")
    # B-X (1.0") is the closest pair, so A falls back on Y (4.5")
    assert list(best["id_ref"]) == ["Y", "X"]
    np.testing.assert_allclose(best["separation"].to_value(u.arcsec), [4.5, 1.0], atol=1e-6)
    np.testing.assert_array_equal(best["n_matches"], [2, 2])
    assert len(crossmatch(table, reference, max_sep=5, mode="all")) == 4


@pytest.mark.parametrize("seed", range(5))
def test_one_to_one_selection_equals_greedy_loop_on_random_pairs(seed):
    # dense random bipartite graphs: 3000 pairs among 400 rows and 300 references
    rng = np.random.default_rng(seed)
    rows, refs = rng.integers(0, 400, 3000), rng.integers(0, 300, 3000)
    _, unique = np.unique(rows * 1000 + refs, return_index=True)
    rows, refs = rows[unique], refs[unique]
    seps = rng.uniform(0, 5, rows.size)
    keep = matching._one_to_one(rows, refs, seps)
    assert set(zip(rows[keep].tolist(), refs[keep].tolist())) == greedy_by_hand(rows, refs, seps)
    assert len(np.unique(rows[keep])) == len(np.unique(refs[keep])) == len(keep)


def test_one_to_one_long_chain_matches_greedy_loop():
    # t0 r0 t1 r1 ... along a meridian, gaps shrinking along the chain: each vectorised round
    # can accept only the last pair, so the selection finishes with the loop
    k = 2 * matching._MAX_ROUNDS + 10
    gaps = 4.9 - 0.01 * np.arange(2 * k - 1)
    offsets = np.concatenate([[0.0], np.cumsum(gaps)])
    pos = SkyCoord(150, 2, unit="deg").directional_offset_by(0 * u.deg, offsets * u.arcsec)
    table = QTable({"id": np.arange(k), "sky_centroid": pos[0::2]})
    reference = QTable({"sky_centroid": pos[1::2]})
    best = crossmatch(table, reference, max_sep=5, mode="best")
    rows, refs, seps = haversine_pairs(pos[0::2], pos[1::2], MAX_SEP)
    assert pairs_of(best) == greedy_by_hand(rows, refs, seps) == {(m, m) for m in range(k)}


# ----------------------------------------------------------------------------
# output columns

def test_name_clashes_are_suffixed():
    truth, reference, true_pairs, _ = truth_and_reference()
    reference["id"] = np.arange(len(reference)) + 10_000
    reference["sky_centroid"] = SkyCoord(reference["RAJ2000"], reference["DEJ2000"])
    reference["separation"] = np.ones(len(reference))
    matched = crossmatch(truth, reference, max_sep="5arcsec", ref_sky="sky_centroid")
    assert matched.colnames == ["id", "flux", "sky_centroid", "name", "flux_ref", "RAJ2000",
                                "DEJ2000", "id_ref", "sky_centroid_ref", "separation",
                                "separation_ref", "n_matches", "ref_index"]
    # separation was the reference's: the match's separation got the suffix
    assert np.all(matched["separation"] == 1)
    assert matched["separation_ref"].unit == u.arcsec
    assert np.all(matched["id_ref"] == np.asarray(matched["ref_index"]) + 10_000)
    assert np.all(matched["flux_ref"] == reference["flux"][np.asarray(matched["ref_index"])])
    assert matched["sky_centroid_ref"].separation(matched["sky_centroid"]).max() < 5 * u.arcsec
    info = matched.meta["crossmatch"]
    assert info["columns"]["flux"] == "flux_ref" and info["columns"]["separation"] == \
        "separation_ref"
    # another suffix, a subset of the reference columns, and matching twice
    again = crossmatch(matched, reference, suffix="_2", ref_columns=["flux"], mode="nearest",
                       ref_sky="RAJ2000,DEJ2000")
    assert again.colnames[-4:] == ["flux_2", "separation_2", "n_matches_2", "ref_index_2"]
    assert again.meta["crossmatch"]["mode"] == "best"
    assert again.meta["crossmatch_2"]["mode"] == "nearest"
    with pytest.raises(InputError, match="flux_ref"):
        crossmatch(matched, reference, ref_columns=["flux"])  # flux_ref is taken already
    reference["flux_ref"] = reference["flux"]
    with pytest.raises(InputError, match="'flux' and 'flux_ref' of reference would both be"):
        crossmatch(truth, reference)
    with pytest.raises(InputError, match="nope"):
        crossmatch(truth, reference, ref_columns=["nope"])


@pytest.mark.parametrize("mode", MODES)
def test_keep_unmatched(mode):
    truth, reference, true_pairs, _ = truth_and_reference()
    matched = crossmatch(truth, reference, max_sep=MAX_SEP * u.arcsec, mode=mode,
                         keep_unmatched=True)
    assert len(matched) == len(truth) == 900
    np.testing.assert_array_equal(matched["id"], truth["id"])
    unmatched = np.ma.getmaskarray(matched["ref_index"])
    assert unmatched.sum() == 450 and pairs_of(matched) == true_pairs
    assert isinstance(matched["separation"], Masked)
    np.testing.assert_array_equal(matched["separation"].mask, unmatched)
    np.testing.assert_array_equal(matched["flux_ref"].mask, unmatched)
    np.testing.assert_array_equal(np.ma.getmaskarray(matched["name"]), unmatched)
    assert np.all(matched["n_matches"][unmatched] == 0)
    assert matched["flux_ref"].unit == u.mJy
    # and written out: the masks survive ECSV and FITS
    for name in ("matched.ecsv", "matched.fits"):
        write_table(matched, name)
        back = read_table(name)
        np.testing.assert_array_equal(np.ma.getmaskarray(back["ref_index"]), unmatched)
        np.testing.assert_array_equal(np.ma.getmaskarray(back["name"]), unmatched)


def test_no_match_and_empty_reference_give_tables():
    truth, reference, _, _ = truth_and_reference()
    far = QTable({"flux": [1.0] * u.Jy, "sky_centroid": SkyCoord([10.0], [-40.0], unit="deg")})
    none = crossmatch(truth, far)
    assert len(none) == 0 and "flux_ref" in none.colnames and "separation" in none.colnames
    empty = crossmatch(truth, far[:0], keep_unmatched=True, mode="all")
    assert len(empty) == 900 and np.all(np.ma.getmaskarray(empty["ref_index"]))
    assert np.all(empty["flux_ref"].mask) and np.all(empty["n_matches"] == 0)


def test_rows_without_position_are_unmatched():
    table = QTable({"ra": [150.0, np.nan, 150.1], "dec": [2.0, 2.0, 2.0]})
    table["dec"] = np.ma.MaskedArray(table["dec"], mask=[False, False, True])
    reference = QTable({"ra": [150.0, 150.1], "dec": [2.0, 2.0]})
    matched = crossmatch(Table(table), reference, keep_unmatched=True, mode="nearest")
    np.testing.assert_array_equal(np.ma.getmaskarray(matched["ref_index"]), [False, True, True])


def test_ra_wrap_and_pole_by_hand():
    # 0.0001 deg either side of RA 0 is 0.72"; so is RA 0 vs 180 at 0.0001 deg from the pole
    table = QTable({"ra": [359.9999, 0.0, 10.0] * u.deg, "dec": [0.0, 89.9999, -89.9999] * u.deg})
    reference = QTable({"ra": [0.0001, 180.0, 190.0] * u.deg,
                        "dec": [0.0, 89.9999, -89.9999] * u.deg})
    for mode in MODES:
        matched = crossmatch(table, reference, max_sep=1 * u.arcsec, mode=mode)
        np.testing.assert_array_equal(matched["ref_index"], [0, 1, 2])
        np.testing.assert_allclose(matched["separation"].to_value(u.arcsec), [0.72] * 3,
                                   rtol=1e-6)


# ----------------------------------------------------------------------------
# inputs

@pytest.mark.parametrize("name", ["ref.ecsv", "ref.fits", "ref.vot"])
def test_reference_files(name):
    truth, reference, true_pairs, _ = truth_and_reference()
    write_table(reference, name)
    write_table(truth, "truth.ecsv")
    matched = crossmatch("truth.ecsv", name, max_sep=5 * u.arcsec)
    assert pairs_of(matched) == true_pairs
    assert matched.meta["crossmatch"]["reference"] == name
    assert matched.meta["crossmatch"]["table"] == "truth.ecsv"


def test_catalogue_files_from_other_tools():
    """Column names and units as VizieR, SExtractor and plain CSV files have them."""
    truth, reference, true_pairs, _ = truth_and_reference()
    ra, dec = reference["RAJ2000"].value, reference["DEJ2000"].value
    # FITS with upper-case RA/DEC in degrees (a plain astropy Table)
    Table({"NAME": reference["name"], "RA": ra * u.deg, "DEC": dec * u.deg}).write("r.fits")
    # VOTable with RA_ICRS/DE_ICRS and the UCDs VizieR gives them
    votable = from_table(Table({"RA_ICRS": ra, "DE_ICRS": dec}))
    fields = votable.get_first_table().fields
    fields[0].ucd, fields[1].ucd, fields[0].unit, fields[1].unit = (
        "pos.eq.ra;meta.main", "pos.eq.dec;meta.main", "deg", "deg")
    votable.to_xml("r.vot")
    # SExtractor names, without units: degrees
    Table({"ALPHA_J2000": ra, "DELTA_J2000": dec}).write("r.csv")
    # sexagesimal strings, as VizieR gives RAJ2000/DEJ2000 by default
    sky = SkyCoord(ra, dec, unit="deg")
    Table({"RAJ2000": sky.ra.to_string(u.hourangle, sep=" ", precision=4),
           "DEJ2000": sky.dec.to_string(sep=" ", precision=3, alwayssign=True)}).write(
        "r_sexa.ecsv")
    for name in ("r.fits", "r.vot", "r.csv", "r_sexa.ecsv"):
        matched = crossmatch(truth, name)
        assert pairs_of(matched) == true_pairs, name
    # columns named by UCD alone
    ucd = Table({"lon": ra * u.deg, "lat": dec * u.deg})
    ucd["lon"].meta["ucd"], ucd["lat"].meta["ucd"] = "pos.eq.ra", "pos.eq.dec"
    assert pairs_of(crossmatch(truth, ucd)) == true_pairs


def test_galactic_and_explicit_columns():
    truth, reference, true_pairs, _ = truth_and_reference()
    gal = SkyCoord(reference["RAJ2000"], reference["DEJ2000"]).galactic
    other = QTable({"GLON": gal.l, "GLAT": gal.b, "x": reference["RAJ2000"].value,
                    "y": reference["DEJ2000"].value})
    assert pairs_of(crossmatch(truth, other[["GLON", "GLAT"]])) == true_pairs
    assert pairs_of(crossmatch(truth, other, ref_sky=("x", "y"))) == true_pairs
    plain = QTable({"id": truth["id"], "ra_x": truth["sky_centroid"].ra,
                    "dec_x": truth["sky_centroid"].dec})
    assert pairs_of(crossmatch(plain, reference, sky="ra_x,dec_x")) == true_pairs


def test_errors_name_the_file_and_columns():
    Table({"flux": [1.0, 2.0], "x": [3.0, 4.0]}).write("nosky.fits")
    truth, reference, _, _ = truth_and_reference()
    with pytest.raises(InputError, match=r"nosky\.fits has no sky positions.*'RAJ2000'/'DEJ2000'.*"
                                         r"flux, x"):
        crossmatch(truth, "nosky.fits")
    with pytest.raises(InputError, match="no column 'RA'"):
        crossmatch(truth, reference, ref_sky=("RA", "DEJ2000"))
    with pytest.raises(InputError, match="SkyCoord column 'flux'"):
        crossmatch(truth, reference, sky="flux")
    with pytest.raises(InputError, match="mode"):
        crossmatch(truth, reference, mode="closest")
    for bad in ("5 parsec", -1, "0", [1, 2] * u.arcsec, 1 * u.mJy):
        with pytest.raises(InputError, match="max_sep"):
            crossmatch(truth, reference, max_sep=bad)
    with pytest.raises(InputError, match="unit mJy"):
        crossmatch(truth, QTable({"ra": [1.0] * u.mJy, "dec": [2.0] * u.deg}))


@pytest.mark.parametrize("text, arcsec", [("5arcsec", 5), ('5"', 5), ("0.5arcmin", 30),
                                          ("5", 5), ("3 arcsec", 3), ("0.001deg", 3.6),
                                          ("1'", 60), (2.5, 2.5)])
def test_max_sep_forms(text, arcsec):
    assert matching._max_sep(text).to_value(u.arcsec) == pytest.approx(arcsec)


# ----------------------------------------------------------------------------
# command line

def test_cli_round_trip(capsys):
    truth, reference, true_pairs, _ = truth_and_reference()
    write_table(truth, "predictions.ecsv")
    write_table(reference, "reference.fits")
    assert main(["crossmatch", "predictions.ecsv", "reference.fits", "--max-sep", '5"',
                 "-o", "matched.ecsv"]) == 0
    assert "450 of 900 rows" in capsys.readouterr().err
    matched = read_table("matched.ecsv")
    assert pairs_of(matched) == true_pairs
    expected = crossmatch(truth, reference)
    np.testing.assert_allclose(matched["separation"].to_value(u.arcsec),
                               expected["separation"].to_value(u.arcsec), atol=1e-9)
    assert matched.meta["crossmatch"]["reference"] == "reference.fits"
    # refuses to overwrite; then all pairs, unmatched rows kept, in FITS
    assert main(["crossmatch", "predictions.ecsv", "reference.fits", "-o", "matched.ecsv",
                 "-q"]) == 2
    assert main(["crossmatch", "predictions.ecsv", "reference.fits", "--max-sep", "0.25arcmin",
                 "--mode", "all", "--keep-unmatched", "--ref-columns", "name", "-o", "all.fits",
                 "-q"]) == 0
    every = read_table("all.fits")
    assert len(every) >= 900 and every.meta["crossmatch"]["max_sep_arcsec"] == 15.0
    assert every.colnames[-4:] == ["name", "separation", "n_matches", "ref_index"]


def test_cli_file_without_sky_columns_exits_2(capsys):
    truth, _, _, _ = truth_and_reference()
    write_table(truth, "predictions.ecsv")
    Table({"flux": [1.0, 2.0]}).write("nosky.fits")
    assert main(["crossmatch", "predictions.ecsv", "nosky.fits", "-o", "m.ecsv"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("astrofm crossmatch: error: nosky.fits has no sky positions")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert main(["crossmatch", "predictions.ecsv", "predictions.ecsv", "--max-sep", "far",
                 "-o", "m.ecsv"]) == 2
    assert "max_sep" in capsys.readouterr().err
