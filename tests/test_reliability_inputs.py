# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Bad inputs refused with an InputError that names them (issue 15, reliability audit)."""

import json
from pathlib import Path

import numpy as np
import pytest
import astropy.units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import QTable, Table
from astropy.wcs import WCS

from astrofmtools import InputError
from astrofmtools.background import estimate_background
from astrofmtools.catalog import crossmatch, read_table, write_regions, write_table
from astrofmtools.cli import main
from astrofmtools.cutouts import make_cutouts
from astrofmtools.io import load_image
from astrofmtools.schema import parse_positions
from astrofmtools.sources import find_sources


def _sky_wcs(naxis=2):
    wcs = WCS(naxis=naxis)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN", "FREQ"][:naxis]
    wcs.wcs.cdelt = [-1e-3, 1e-3, 1e6][:naxis]
    wcs.wcs.crval = [150.0, 2.0, 1.4e9][:naxis]
    wcs.wcs.crpix = [16.0, 16.0, 1.0][:naxis]
    return wcs


def _noise(n=32, seed=0):
    data = np.random.default_rng(seed).normal(size=(n, n))
    data[14:17, 14:17] += 40.0
    return data


# ----------------------------------------------------------------------------
# case 4: positions come with their frame

def _same_sources(n=30, seed=1):
    rng = np.random.default_rng(seed)
    icrs = SkyCoord(rng.uniform(150, 151, n) * u.deg, rng.uniform(1.5, 2.5, n) * u.deg)
    return icrs, icrs.galactic


@pytest.mark.parametrize("options", [["--ref-sky", "l,b"], ["--ref-sky", "l,b:galactic"],
                                     ["--ref-sky", "L,B", "--ref-frame", "galactic"], []],
                         ids=["named", "colon-frame", "frame-option", "found"])
def test_crossmatch_galactic_reference_matches_icrs_one_to_one(options):
    """Issue 15, case 4: the same sources in ICRS ra/dec and in Galactic l/b match 1 to 1."""
    icrs, gal = _same_sources()
    write_table(QTable({"id": np.arange(len(icrs)), "ra": icrs.ra.deg, "dec": icrs.dec.deg}),
                "icrs.ecsv")
    write_table(Table({"ref_id": np.arange(len(gal)), "l": gal.l.deg, "b": gal.b.deg}),
                "galactic.csv")
    assert main(["crossmatch", "icrs.ecsv", "galactic.csv", "--max-sep", "0.1arcsec",
                 *options, "-o", "matched.ecsv"]) == 0
    matched = read_table("matched.ecsv")
    assert len(matched) == len(icrs)
    assert matched["id"].tolist() == matched["ref_id"].tolist()
    assert matched.meta["crossmatch"]["ref_frame"] == "galactic"
    # and the other way round: --sky names the Galactic columns of the table
    assert main(["crossmatch", "galactic.csv", "icrs.ecsv", "--sky", "l,b", "--max-sep",
                 "0.1arcsec", "-o", "back.ecsv"]) == 0
    back = read_table("back.ecsv")
    assert back["ref_id"].tolist() == back["id"].tolist() == list(range(len(icrs)))


def test_ecliptic_and_meta_declared_frames():
    """Issue 15, case 4: ELON/ELAT are ecliptic; RADESYS/EQUINOX in the meta set ra/dec's frame."""
    icrs, _ = _same_sources()
    ecl = icrs.barycentricmeanecliptic
    for lon, lat in (("elon", "elat"), ("ELON", "ELAT"), ("ecl_lon", "ecl_lat")):
        pos = parse_positions(Table({lon: ecl.lon.deg, lat: ecl.lat.deg}), kind="sky")
        assert pos.frame == "barycentricmeanecliptic"
        assert np.all(pos.sky.separation(icrs) < 1 * u.mas)
    fk4 = icrs.fk4
    table = Table({"ra": fk4.ra.deg, "dec": fk4.dec.deg}, meta={"EQUINOX": 1950.0})
    write_table(table, "fk4.fits")
    reference = read_table("fk4.fits")
    assert "sky_centroid" not in reference.colnames  # not taken for ICRS on reading
    matched = crossmatch(QTable({"sky_centroid": icrs}), "fk4.fits", max_sep=0.1 * u.arcsec)
    assert len(matched) == len(icrs) and matched.meta["crossmatch"]["ref_frame"] == "fk4"
    fk5 = parse_positions(Table({"ra": [10.0], "dec": [20.0]}, meta={"radesys": "FK5"}),
                          kind="sky")
    assert fk5.frame == "fk5"
    assert parse_positions(Table({"ra": [10.0], "dec": [20.0]}, meta={"RADESYS": "FK5"}),
                           frame="icrs", kind="sky").frame == "icrs"  # frame= wins
    with pytest.raises(InputError, match="RADESYS='GAPPT'"):
        parse_positions(Table({"ra": [10.0], "dec": [20.0]}, meta={"RADESYS": "GAPPT"}),
                        kind="sky", name="cat.fits")


# ----------------------------------------------------------------------------
# case 5: blank cutouts; a WCS whose axes do not match the array

def test_fit_refuses_blank_cutouts_and_load_image_keeps_celestial_wcs():
    """Issue 15, case 5: all-NaN or blank training cutouts; (array, WCS(naxis=3))."""
    pytest.importorskip("torch")
    pytest.importorskip("timm")
    from astrofmtools.backbones import BackboneSpec
    from astrofmtools.classify import Classifier
    spec = BackboneSpec(name="vit_reliability_test", timm_name="vit_tiny_patch16_224",
                        patch_size=8, input_size=32, feature_dim=16, licence="none",
                        timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 1,
                                     "embed_dim": 16, "num_heads": 2})
    clf = Classifier(spec, weights="random", device="cpu", epochs=1)
    labels = np.array(["a", "b"] * 4)
    cutouts = np.random.default_rng(0).normal(size=(8, 16, 16)).astype(np.float32)
    cutouts[[2, 5]] = np.nan
    with pytest.raises(InputError, match=r"2 of the 8 training cutouts have no finite pixel.*"
                                         r"rows 2, 5 \(0-based\)"):
        clf.fit(cutouts, labels)
    with pytest.raises(InputError, match="All 8 training cutouts are blank"):
        clf.fit(np.zeros((8, 16, 16), dtype=np.float32), labels)
    good = np.random.default_rng(1).normal(size=(8, 16, 16)).astype(np.float32)
    with pytest.raises(InputError, match=r"1 of the 2 validation cutouts.*rows 1 "):
        clf.fit(good, labels, validation=(np.stack([good[0], np.full((16, 16), np.nan)]),
                                          ["a", "b"]))

    data = _noise()
    image = load_image((data, _sky_wcs(naxis=3)))
    assert image.wcs.naxis == 2 and image.wcs.has_celestial
    with pytest.raises(InputError, match=r"WCS given with <array> has 3 axes.*none of them "
                                         r"celestial.*array has 2"):
        load_image((data, WCS(naxis=3)))


# ----------------------------------------------------------------------------
# case 6: singular or non-finite pixel scale

@pytest.mark.parametrize("cards", [{"CD1_1": 0.0, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 0.0},
                                   {"CDELT1": 0.0, "CDELT2": 1e-3},
                                   {"CD1_1": 1e-3, "CD1_2": 1e-3, "CD2_1": 1e-3,
                                    "CD2_2": 1e-3}],
                         ids=["cd-zero", "cdelt-zero", "cd-rank-1"])
def test_singular_wcs_is_refused_naming_file_and_hdu(cards):
    """Issue 15, case 6: a singular CD/PC matrix is an InputError naming file and HDU."""
    header = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.0,
                          "CRVAL2": 2.0, "CRPIX1": 16.0, "CRPIX2": 16.0, **cards})
    fits.PrimaryHDU(_noise().astype(np.float32), header).writeto("singular.fits")
    with pytest.raises(InputError, match=r"singular\.fits\[0\].*its WCS has a singular "
                                         r"CD/PC matrix"):
        load_image("singular.fits")
    with pytest.raises(InputError, match="singular CD/PC matrix"):
        find_sources("singular.fits")
    nan_scale = _sky_wcs()
    nan_scale.wcs.cdelt = [np.nan, 1e-3]
    header = nan_scale.to_header()
    header["BMAJ"] = header["BMIN"] = 1e-3
    with pytest.raises(InputError, match="non-finite"):  # was: cannot convert float NaN
        find_sources((_noise(), header))


# ----------------------------------------------------------------------------
# case 11: latitudes outside -90..90

def test_latitude_out_of_range_names_table_column_and_rows():
    """Issue 15, case 11: Dec = 100 names the table, the column and the rows."""
    Table({"ra": [10.0, 11.0, 12.0], "dec": [20.0, 100.0, -91.0]}).write("bad.csv")
    table = read_table("bad.csv")  # reading is fine: the positions are checked when used
    with pytest.raises(InputError, match=r"Column 'dec' of bad\.csv.*row 1 has 100 deg, "
                                         r"row 2 has -91 deg"):
        crossmatch(QTable({"sky_centroid": SkyCoord([10.0], [20.0], unit="deg")}), "bad.csv")
    assert main(["crossmatch", "bad.csv", "bad.csv", "-o", "out.ecsv"]) == 2
    with pytest.raises(InputError, match=r"Column 'b' of gal\.vot, read as galactic latitude"):
        parse_positions(Table({"l": [1.0], "b": [-95.0]}), kind="sky", name="gal.vot")
    assert len(table) == 3


# ----------------------------------------------------------------------------
# case 13: Python arguments of the wrong type, unit or value

@pytest.mark.parametrize("function, kwargs, match", [
    (find_sources, {"snr": "5"}, "snr must be a positive number"),
    (find_sources, {"snr": np.nan}, "snr must be"),
    (find_sources, {"snr": True}, "snr must be"),
    (find_sources, {"psf_fwhm": 5 * u.m}, "psf_fwhm must be .*neither pixels nor an angle"),
    (find_sources, {"psf_fwhm": "3"}, "psf_fwhm must be"),
    (find_sources, {"psf_fwhm": (3.0, 2.0)}, "psf_fwhm must be"),
    (find_sources, {"island_snr": None}, "island_snr must be"),
    (find_sources, {"peak_prominence": 2 * u.m}, "peak_prominence must be"),
    (find_sources, {"npixels": np.nan}, "npixels must be"),
    (find_sources, {"deblend": "yes"}, "deblend must be True or False"),
    (find_sources, {"box_size": "64"}, "box_size must be"),
    (find_sources, {"tile_size": np.inf}, "tile_size must be"),
    (find_sources, {"overlap": -1}, "overlap must be"),
    (find_sources, {"workers": 0}, "workers must be"),
    (estimate_background, {"sigma": "3"}, "sigma must be a positive number"),
    (estimate_background, {"sigma": [1, 2]}, "sigma must be"),
    (estimate_background, {"box_size": True}, "box_size must be"),
    (estimate_background, {"filter_size": None}, "filter_size must be"),
    (estimate_background, {"exclude_percentile": 5 * u.m}, "exclude_percentile must be"),
    (estimate_background, {"tile_size": np.nan}, "tile_size must be"),
    (make_cutouts, {"size": np.inf}, "size must be"),
    (make_cutouts, {"size": True}, "size must be"),
    (make_cutouts, {"fill": None}, "fill must be a number"),
    (make_cutouts, {"fill": 1 * u.m}, "fill must be a number"),
    (make_cutouts, {"pad": np.nan}, "pad must be"),
    (make_cutouts, {"min_size": np.inf}, "min_size must be"),
])
def test_numeric_arguments_name_themselves(function, kwargs, match):
    """Issue 15, case 13: strings, bools, NaN and wrong units are InputErrors naming the
    argument and what it accepts."""
    image = (_noise(), None)
    if function is make_cutouts:
        with pytest.raises(InputError, match=match):
            function(image, QTable({"x": [16.0], "y": [16.0]}), **kwargs)
    else:
        with pytest.raises(InputError, match=match):
            function(image, **kwargs)


def test_read_table_of_none_names_what_it_takes():
    """Issue 15, case 13: read_table(None) says it takes a file name."""
    with pytest.raises(InputError, match=r"read_table takes a file name \(str or Path\).*"
                                         r"not NoneType"):
        read_table(None)


# ----------------------------------------------------------------------------
# case 20: saved models may set architecture arguments of timm only

def test_saved_configs_may_not_pass_files_to_timm(tmp_path):
    """Issue 15, case 20: timm_kwargs of a saved model are allow-listed."""
    pytest.importorskip("torch")
    pytest.importorskip("timm")
    from astrofmtools.backbones import BackboneSpec, register_backbone_folder
    from astrofmtools.classify import Classifier
    from astrofmtools.detect import Detector
    spec = BackboneSpec(name="vit_saved_test", timm_name="vit_tiny_patch16_224", patch_size=8,
                        input_size=32, feature_dim=16, licence="none",
                        timm_kwargs={"img_size": 32, "checkpoint_path": "/some/file.pth"})
    entry = spec.to_dict()
    folder = tmp_path / "backbone"
    folder.mkdir()
    (folder / "backbone.json").write_text(json.dumps(
        {"format": "astrofmtools.Backbone", "format_version": 1, "spec": entry}))
    (folder / "backbone.safetensors").write_bytes(b"")
    with pytest.raises(InputError, match=r"backbone\.json' sets "
                                         r"timm_kwargs\['checkpoint_path'\]"):
        register_backbone_folder(folder)
    for cls, fmt, weights in ((Classifier, "astrofmtools.Classifier", "weights.safetensors"),
                              (Detector, "astrofmtools.Detector", "model.safetensors")):
        saved = tmp_path / fmt
        saved.mkdir()
        (saved / "config.json").write_text(json.dumps(
            {"format": fmt, "format_version": 2, "params": {"augment": False},
             "backbone_spec": entry}))
        (saved / weights).write_bytes(b"")
        with pytest.raises(InputError, match=r"config\.json' sets "
                                             r"timm_kwargs\['checkpoint_path'\]"):
            cls.load(saved, device="cpu")
    entry["timm_kwargs"] = {"img_size": 32, "pretrained_cfg_overlay": {"file": "x.pth"}}
    with pytest.raises(InputError, match="pretrained_cfg_overlay"):
        BackboneSpec.from_saved(entry, "config.json")
    entry["timm_kwargs"] = {"img_size": 32, "depth": 1, "embed_dim": 16, "num_heads": 2}
    assert BackboneSpec.from_saved(entry, "config.json").timm_kwargs["depth"] == 1


# ----------------------------------------------------------------------------
# case 21: region text cannot break out of its line

@pytest.mark.parametrize("fmt", ["ds9", "crtf"])
def test_region_text_is_sanitised(fmt):
    """Issue 15, case 21: newlines, control characters and delimiters in labels."""
    import regions as rg
    evil = ["a}\n# evil\ncircle(1,1,1", 'b"\x1b[31m\u2028x\r', "c'{d}\tnew"]
    table = QTable({"x": [10.0, 20.0, 30.0], "y": [5.0, 8.0, 12.0], "label": evil})
    path = f"labels.{'reg' if fmt == 'ds9' else 'crtf'}"
    write_regions(table, path, format=fmt, wcs=_sky_wcs(),
                  color={"a}\n# evil\ncircle(1,1,1": "red\n# more"})
    text = Path(path).read_text()
    assert "# evil" not in text and "\x1b" not in text and "\u2028" not in text
    assert "circle(1,1,1" not in text and "# more" not in text
    body = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert sum(line.lstrip().startswith(("circle", "ellipse")) for line in body) == 3
    back = rg.Regions.read(path, format=fmt)
    assert len(back) == 3
    texts = [r.meta.get("text", r.meta.get("label", "")) for r in back]
    assert "evil circle(1 1 1" in " ".join(texts[0].split())
    assert texts[1].split()[0] == "b" and texts[2].split()[0] == "c"
    if fmt == "ds9":
        assert back[0].visual["edgecolor"] == "red"
