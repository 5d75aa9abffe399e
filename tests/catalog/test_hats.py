# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""HATS catalogues (astrofmtools.catalog.hats, through lsdb) and ``astrofm crossmatch`` on them."""

import json
import os
import warnings

import numpy as np
import pytest
import astropy.units as u
from astropy.coordinates import SkyCoord
from astropy.table import MaskedColumn, QTable
from astropy.utils.masked import Masked

with warnings.catch_warnings():  # lsdb warns about its own pandas use on import
    warnings.simplefilter("ignore")
    lsdb = pytest.importorskip("lsdb")
dask = pytest.importorskip("dask")

from astrofmtools.exceptions import InputError, MissingFileError  # noqa: E402
from astrofmtools.catalog import (crossmatch, crossmatch_hats, is_hats, read_hats,  # noqa: E402
                                  read_table, table_format, write_hats, write_table)
from astrofmtools.catalog.hats import SIDECAR, _quiet  # noqa: E402
from astrofmtools.cli import main  # noqa: E402

N = 10_000
MAX_SEP = 6 * u.arcsec


@pytest.fixture(autouse=True)
def _synchronous():
    """lsdb's partitions one after the other: no threads, no cluster."""
    with dask.config.set(scheduler="synchronous"):
        yield


def make_catalogues(n=N, seed=0):
    """
    A source table over 25 square degrees (a quarter of the sources with a
    companion 2-5" away, so that rows compete for reference sources) and a
    reference: 70% of the sources moved by up to 8", 30% unrelated, shuffled.
    """
    rng = np.random.default_rng(seed)
    ra, dec = rng.uniform(148, 153, n), rng.uniform(0, 5, n)
    q = n // 4
    twin = SkyCoord(ra[:q], dec[:q], unit="deg").directional_offset_by(
        rng.uniform(0, 360, q) * u.deg, rng.uniform(2, 5, q) * u.arcsec)
    ra[q:2 * q], dec[q:2 * q] = twin.ra.deg, twin.dec.deg
    sky = SkyCoord(ra, dec, unit="deg")
    table = QTable({"id": np.arange(n) + 1000,
                    "label": rng.choice(["FRI", "FRII", "compact"], n),
                    "flux": rng.lognormal(0, 1, n) * u.mJy,
                    "probabilities": rng.dirichlet(np.ones(3), n).astype(np.float32),
                    "flag": MaskedColumn(rng.integers(0, 9, n).astype(np.int16),
                                         mask=rng.random(n) < 0.1),
                    "snr": Masked(rng.uniform(3, 50, n) * u.one, mask=rng.random(n) < 0.05),
                    "sky_centroid": sky,
                    "peak_sky": sky.galactic})
    table["flux"].info.description = "integrated flux density"
    table["flux"].info.format = ".3f"
    table["label"].info.meta = {"classes": ["FRI", "FRII", "compact"]}
    table.meta = {"model": "vit_tiny", "versions": {"astropy": "x", "numpy": "y"},
                  "threshold": np.float32(0.5), "comments": ["synthetic"]}
    k = int(0.7 * n)
    moved = rng.permutation(n)[:k]
    near = sky[moved].directional_offset_by(rng.uniform(0, 360, k) * u.deg,
                                            rng.uniform(0, 8, k) * u.arcsec)
    pos = SkyCoord([near, SkyCoord(rng.uniform(148, 153, n - k), rng.uniform(0, 5, n - k),
                                   unit="deg")])
    order = rng.permutation(n)
    reference = QTable({"name": np.char.add("R", np.arange(n).astype(str)),
                        "flux": rng.lognormal(0, 1, n)[order] * u.mJy,
                        "RAJ2000": pos.ra.deg[order] * u.deg,
                        "DEJ2000": pos.dec.deg[order] * u.deg})
    return table, reference


@pytest.fixture(scope="module")
def catalogues(tmp_path_factory):
    """The two tables, and the same written as HATS (several partitions each)."""
    folder = tmp_path_factory.mktemp("hats")
    table, reference = make_catalogues()
    with dask.config.set(scheduler="synchronous"):
        write_hats(table, folder / "table.hats", partition_rows=2500)
        write_hats(reference, folder / "reference.hats", partition_rows=2500)
    return table, reference, str(folder / "table.hats"), str(folder / "reference.hats")


def assert_same_table(got, expected, sep_tol=1e-6):
    """Same columns, rows, values (positions to 1 microarcsec), units, masks."""
    assert got.colnames == expected.colnames
    assert len(got) == len(expected)
    for name in expected.colnames:
        a, b = got[name], expected[name]
        if isinstance(b, SkyCoord):
            assert isinstance(a, SkyCoord) and a.frame.name == b.frame.name, name
            sep = a.separation(b).to_value(u.mas)
            assert np.nanmax(sep, initial=0) < 1e-3, name
            continue
        assert type(a) is type(b), (name, type(a), type(b))
        assert getattr(a, "unit", None) == getattr(b, "unit", None), name
        mask_a, mask_b = _mask(a), _mask(b)
        np.testing.assert_array_equal(mask_a, mask_b, err_msg=name)
        va = np.asarray(a.unmasked if isinstance(a, Masked) else getattr(a, "value", a))
        vb = np.asarray(b.unmasked if isinstance(b, Masked) else getattr(b, "value", b))
        if name.startswith("separation"):
            np.testing.assert_allclose(va[~mask_b], vb[~mask_b], rtol=0, atol=sep_tol)
        else:
            assert va.dtype == vb.dtype, name
            np.testing.assert_array_equal(va[~mask_b], vb[~mask_b], err_msg=name)


def _mask(col):
    mask = getattr(col, "mask", None)
    return np.zeros(col.shape, bool) if mask is None else np.asarray(mask, dtype=bool)


# ----------------------------------------------------------------------------
# write and read

def test_round_trip(catalogues):
    table, _, table_path, _ = catalogues
    assert table_format(table_path) == "hats" and is_hats(table_path)
    back = read_table(table_path)  # through read_hats
    assert_same_table(back, table)
    assert back["sky_centroid"].frame.name == "icrs"
    assert back["peak_sky"].frame.name == "galactic"
    assert back["flux"].info.description == "integrated flux density"
    assert back["flux"].info.format == ".3f"
    assert back["label"].info.meta == {"classes": ["FRI", "FRII", "compact"]}
    assert back.meta == {"model": "vit_tiny", "versions": {"astropy": "x", "numpy": "y"},
                         "threshold": 0.5, "comments": ["synthetic"]}
    # the Parquet holds ICRS ra/dec (named as write_table names them), the JSON the rest
    with _quiet():
        catalog = lsdb.read_hats(table_path)
    info = catalog.hc_structure.catalog_info
    assert (info.ra_column, info.dec_column, info.total_rows) == ("ra", "dec", N)
    assert catalog.npartitions > 3 and catalog.margin is not None
    assert {"peak_sky_ra", "peak_sky_dec"} <= set(catalog.columns)
    with open(os.path.join(table_path, SIDECAR)) as f:
        assert json.load(f)["meta"]["model"] == "vit_tiny"
    some = read_hats(table_path, columns=["id", "sky_centroid"])
    assert some.colnames == ["id", "sky_centroid"] and np.all(some["id"] == table["id"])


def test_write_table_to_a_folder_without_suffix(tmp_path):
    table = QTable({"GLON": [10.0, 10.1], "GLAT": [1.0, 1.1], "name": ["a", "b"]})
    write_table(table, "survey", format="hats")
    assert table_format("survey") == "hats"
    back = read_table("survey")
    # Galactic columns are kept as they are; the partitioning uses hidden ICRS columns
    assert back.colnames == ["GLON", "GLAT", "name"] and back["name"].tolist() == ["a", "b"]
    with _quiet():
        assert lsdb.read_hats("survey").hc_structure.catalog_info.ra_column == "_astrofm_ra"


def test_overwrite_protection(tmp_path):
    one = QTable({"id": [1], "ra": [150.0], "dec": [2.0]})
    write_hats(one, "out.hats")
    with pytest.raises(InputError, match="'out.hats' exists; use overwrite=True"):
        write_hats(one, "out.hats")
    with pytest.raises(InputError, match="the table for 'out.hats' has no sky positions"):
        write_hats(QTable({"x": [1.0]}), "out.hats", overwrite=True)
    assert read_hats("out.hats")["id"].tolist() == [1]  # a failed write leaves it whole
    write_hats(QTable({"id": [2], "ra": [150.0], "dec": [2.0]}), "out.hats", overwrite=True,
               margin_arcsec=None)
    assert read_hats("out.hats")["id"].tolist() == [2]
    assert sorted(os.listdir(tmp_path)) == ["out.hats"]  # no temporary folders left


def test_errors_name_the_path(tmp_path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "a.parquet").write_bytes(b"")
    with pytest.raises(InputError, match="'plain' is not a HATS catalogue"):
        read_hats("plain")
    with pytest.raises(MissingFileError, match="'missing.hats' does not exist"):
        read_table("missing.hats")
    with pytest.raises(InputError, match=r"'nan.hats' has 1 row\(s\) without a sky position"):
        write_hats(QTable({"ra": [1.0, np.nan], "dec": [1.0, 2.0]}), "nan.hats")
    with pytest.raises(InputError, match="empty table"):
        write_hats(QTable({"ra": np.zeros(0), "dec": np.zeros(0)}), "empty.hats")
    write_hats(QTable({"id": [1], "ra": [150.0], "dec": [2.0]}), "thin.hats",
               margin_arcsec=None)
    with pytest.raises(InputError, match="thin.hats has no margin cache: matching within 5 "):
        crossmatch_hats(QTable({"ra": [150.0], "dec": [2.0]}), "thin.hats", max_sep=5)
    with pytest.raises(InputError, match="thin.hats has no column"):
        read_hats("thin.hats", columns=["flux"])
    with pytest.raises(InputError, match="sky=/frame= apply to tables"):
        crossmatch_hats("thin.hats", QTable({"ra": [150.0], "dec": [2.0]}), sky="ra,dec")
    assert sorted(os.listdir(tmp_path)) == ["plain", "thin.hats"]


# ----------------------------------------------------------------------------
# cross-matching

def test_crossmatch_hats_equals_crossmatch(catalogues):
    table, reference, table_path, ref_path = catalogues
    got = crossmatch_hats(table_path, ref_path, max_sep=MAX_SEP)
    expected = crossmatch(table, reference, max_sep=MAX_SEP)
    assert_same_table(got, expected)  # separations to 1e-6 arcsec
    info, want = got.meta["crossmatch"], expected.meta["crossmatch"]
    assert info["engine"] == "lsdb" and info["table"] == table_path
    for key in ("mode", "n_table", "n_reference", "n_matched_rows", "n_matched_references",
                "n_pairs", "columns", "sky", "ref_sky"):
        assert info[key] == want[key], key
    # rows compete for reference sources here: "best" keeps fewer pairs than "nearest"
    assert np.any(expected["n_matches"] > 1)
    assert len(crossmatch(table, reference, max_sep=MAX_SEP, mode="nearest")) > len(expected)


def test_crossmatch_hats_written_as_hats(catalogues):
    table, reference, table_path, ref_path = catalogues
    meta = crossmatch_hats(table_path, ref_path, max_sep=MAX_SEP, keep_unmatched=True,
                           output="matched.hats")
    expected = crossmatch(table, reference, max_sep=MAX_SEP, keep_unmatched=True)
    assert meta["crossmatch"]["n_pairs"] == expected.meta["crossmatch"]["n_pairs"]
    assert_same_table(read_hats("matched.hats"), expected)
    with pytest.raises(InputError, match="'matched.hats' exists"):
        crossmatch_hats(table_path, ref_path, output="matched.hats")


def test_crossmatch_hats_table_against_hats_mode_all(catalogues):
    table, reference, _, ref_path = catalogues
    table = table[:3000]
    got = crossmatch_hats(table, ref_path, max_sep=MAX_SEP, mode="all")
    assert_same_table(got, crossmatch(table, reference, max_sep=MAX_SEP, mode="all"))


def test_crossmatch_hats_with_an_lsdb_catalogue_of_other_tools(catalogues):
    """A HATS catalogue written by lsdb alone: no row numbers, ``ref_healpix_29`` instead."""
    table, reference, table_path, _ = catalogues
    import pandas as pd
    frame = pd.DataFrame({"RA": reference["RAJ2000"].value, "DEC": reference["DEJ2000"].value,
                          "name": reference["name"]})
    with _quiet():
        other = lsdb.from_dataframe(frame, ra_column="RA", dec_column="DEC",
                                    catalog_name="other", margin_threshold=10.0,
                                    partition_rows=2500)
        other.write_catalog("other", progress_bar=False)
    back = read_hats("other")
    assert back.colnames == ["sky_centroid", "RA", "DEC", "name"] and len(back) == N
    got = crossmatch_hats(table_path, other, max_sep=MAX_SEP, ref_columns=["name"])
    expected = crossmatch(table, reference, max_sep=MAX_SEP, ref_columns=["name"])
    assert got.colnames == expected.colnames[:-1] + ["ref_healpix_29"]
    for name in ("id", "name", "n_matches"):
        np.testing.assert_array_equal(got[name], expected[name])


def test_crossmatch_hats_without_overlap_is_empty(tmp_path):
    write_hats(QTable({"id": [1], "ra": [150.0], "dec": [2.0]}), "a.hats")
    far = QTable({"id": [9], "ra": [10.0], "dec": [-30.0]})
    got = crossmatch_hats(far, "a.hats", max_sep=1)
    assert len(got) == 0 and got.colnames == crossmatch(far, read_hats("a.hats"),
                                                        max_sep=1).colnames
    kept = crossmatch_hats(far, "a.hats", max_sep=1, keep_unmatched=True)
    assert kept["n_matches"].tolist() == [0] and kept["ref_index"].mask.all()


def test_cli_crossmatch_on_hats(catalogues, capsys):
    table, reference, table_path, _ = catalogues
    write_table(reference[:3000], "reference.ecsv")
    assert main(["crossmatch", table_path, "reference.ecsv", "--max-sep", "6arcsec",
                 "-o", "matched.hats", "-q"]) == 0
    expected = crossmatch(table, read_table("reference.ecsv"), max_sep=MAX_SEP)
    got = read_hats("matched.hats")
    assert_same_table(got, expected)
    assert got.meta["crossmatch"]["engine"] == "lsdb"
    assert main(["crossmatch", table_path, "reference.ecsv", "-o", "matched.hats"]) == 2
    assert "'matched.hats' exists" in capsys.readouterr().err
