"""FITS tables: one pair of sky columns, units as TUNITn, descriptions as TCOMMn."""

import numpy as np
import astropy.units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import QTable

from astrofmtools.catalog import read_table, write_table
from astrofmtools.datasets import make_wcs
from astrofmtools.io import SkyImage
from astrofmtools.sources import SOURCE_COLUMNS, find_sources


def catalogue():
    rng = np.random.default_rng(3)
    data = rng.normal(0, 1e-4, (64, 64))
    data[30:33, 20:23] += 5e-3
    data[10:13, 40:43] += 3e-3
    image = SkyImage(data, wcs=make_wcs(data.shape), unit="Jy/beam")
    return find_sources(image, snr=5.0, psf_fwhm=2.0)


def columns(header):
    return {header[f"TTYPE{i}"]: i for i in range(1, header["TFIELDS"] + 1)}


def test_fits_table_has_one_pair_of_sky_columns_and_tcomm(tmp_path):
    table = catalogue()
    assert len(table) >= 1
    path = tmp_path / "sources.fits"
    write_table(table, path)
    header = fits.getheader(path, 1)
    cols = columns(header)
    # one pair: astropy's sky_centroid.ra/dec; the table's equal ra/dec are left out
    assert "sky_centroid.ra" in cols and "sky_centroid.dec" in cols
    assert "ra" not in cols and "dec" not in cols
    assert header["RADEC"] == "sky_centroid"
    for name, i in cols.items():
        expected = {"sky_centroid.ra": "ra", "sky_centroid.dec": "dec"}.get(name, name)
        assert header[f"TCOMM{i}"] == SOURCE_COLUMNS[expected]
    assert header[f"TUNIT{cols['flux']}"] == "Jy"
    assert header[f"TUNIT{cols['sky_centroid.ra']}"] == "deg"
    back = read_table(path)
    assert back.colnames == table.colnames  # ra, dec rebuilt from sky_centroid
    for name in table.colnames:
        assert back[name].info.description == SOURCE_COLUMNS[name]
        assert getattr(back[name], "unit", None) == getattr(table[name], "unit", None)
    assert not [key for key in back.meta if key.upper().startswith(("TCOMM", "RADEC"))]
    assert back["sky_centroid"].separation(table["sky_centroid"]).max() < 1e-6 * u.arcsec
    assert np.allclose(back["ra"].to_value(u.deg), table["ra"].to_value(u.deg), atol=1e-12)
    assert back.meta["flux"] == table.meta["flux"]


def test_ra_dec_that_differ_from_sky_centroid_are_kept(tmp_path):
    table = QTable({"sky_centroid": SkyCoord([150.0], [2.0], unit="deg"),
                    "ra": [10.0] * u.deg, "dec": [20.0] * u.deg})
    write_table(table, tmp_path / "d.fits")
    cols = columns(fits.getheader(tmp_path / "d.fits", 1))
    assert {"ra", "dec", "sky_centroid.ra"} <= set(cols)
    back = read_table(tmp_path / "d.fits")
    assert back["ra"][0] == 10.0 * u.deg and back["sky_centroid"][0].ra.deg == 150.0


def test_sky_centroid_without_ra_dec_and_other_skycoords(tmp_path):
    table = QTable({"id": [1, 2], "x": [1.0, 2.0] * u.pix,
                    "sky_centroid": SkyCoord([150.0, 150.01], [2.0, 2.01], unit="deg"),
                    "match": SkyCoord([10.0, 11.0], [-5.0, -6.0], unit="deg")})
    table["x"].info.description = "centroid x, 0-based pixel \u2013 long " + "words " * 20
    write_table(table, tmp_path / "t.fits")
    header = fits.getheader(tmp_path / "t.fits", 1)
    cols = columns(header)
    assert list(cols) == ["id", "x", "sky_centroid.ra", "sky_centroid.dec", "match.ra",
                          "match.dec"]
    back = read_table(tmp_path / "t.fits")
    assert back.colnames == ["id", "x", "sky_centroid", "match"]  # no ra/dec added
    # TCOMM: long text continues on CONTINUE cards, the en dash (not ASCII) becomes '?';
    # astropy's own serialised-columns block (written with a mixin) keeps the exact text
    assert header["TCOMM2"].startswith("centroid x, 0-based pixel ? long words")
    assert header["TCOMM2"].endswith("words")
    assert back["x"].info.description == table["x"].info.description
    assert np.allclose(back["match"].ra.deg, [10.0, 11.0])


def test_tcomm_of_other_writers_become_descriptions(tmp_path):
    """A FITS table from another writer (no astropy block): TCOMMn gives the descriptions."""
    from astropy.table import Table
    table = Table({"flux": [1.0, 2.0]})
    table["flux"].unit = "mJy"
    table["flux"].info.description = "integrated flux \u2013 Jy for Jy/beam"
    write_table(table, tmp_path / "p.fits")
    header = fits.getheader(tmp_path / "p.fits", 1)
    assert header["TCOMM1"] == "integrated flux ? Jy for Jy/beam" and header["TUNIT1"] == "mJy"
    assert read_table(tmp_path / "p.fits")["flux"].info.description == \
        table["flux"].info.description  # astropy's own block: the exact text
    cols = fits.ColDefs([fits.Column(name="flux", format="D", unit="mJy", array=[1.0])])
    hdu = fits.BinTableHDU.from_columns(cols)
    hdu.header["TCOMM1"] = "flux from another writer"
    hdu.writeto(tmp_path / "other.fits")
    back = read_table(tmp_path / "other.fits")
    assert back["flux"].info.description == "flux from another writer"
    assert back["flux"].unit == u.mJy and "tcomm1" not in back.meta
