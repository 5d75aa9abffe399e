# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""From the files astronomers have to a labelled training set, on the command line:
postage stamps (FITS or pictures) -> cutouts -> labels by id or by sky match -> train."""

import argparse

import numpy as np
import pytest
import astropy.units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import QTable

from astrofmtools.catalog import read_table
from astrofmtools.cli import main
from astrofmtools.cli.commands_classify import _labels_for
from astrofmtools.cutouts import CutoutStack, make_cutouts
from astrofmtools.datasets import make_radio_field
from astrofmtools.io import write_image


@pytest.fixture
def stamps(tmp_path, monkeypatch):
    """A folder of FITS postage stamps (one synthetic radio source each, with its WCS) and
    the truth table of the sources, in the order of the stamp files."""
    monkeypatch.chdir(tmp_path)
    image, truth = make_radio_field(shape=(256, 256), n_compact=14, n_extended=4,
                                    n_artefacts=0, seed=3)
    cut = make_cutouts(image, truth, size=32)
    cut = cut[~cut.table["edge"]]
    (tmp_path / "stamps").mkdir()
    for k, row in enumerate(cut.table):
        header = cut.wcs_of(k).to_header()
        header["BUNIT"] = "Jy/beam"
        fits.PrimaryHDU(cut.data[k], header=header).writeto(
            tmp_path / "stamps" / f"src{row['id']:03d}.fits")
    return cut.table


def _namespace(**kwargs):
    base = dict(labels=None, label_column="label", cutouts="cutouts.fits", drop_unlabelled=False,
                id_column=None, match_radius=None, sky=None)
    return argparse.Namespace(**{**base, **kwargs})


def test_stamps_to_labelled_training_set(stamps, capsys):
    n = len(stamps)
    ids = np.asarray(stamps["id"])
    # a table of the stamps: each file's id (in another order than the files)
    QTable({"file": [f"src{i:03d}.fits" for i in ids[::-1]], "id": ids[::-1]}).write(
        "stamps.csv")
    assert main(["cutouts", "--stamps", "stamps", "--stamp-table", "stamps.csv",
                 "-o", "cutouts.fits", "-q"]) == 0
    stack = CutoutStack.read("cutouts.fits")
    assert stack.data.shape == (n, 32, 32)
    assert stack.table["id"].tolist() == ids.tolist()  # the files, sorted by name
    # the stamps keep their sky positions: the file's centre is the source, to within a
    # pixel (1.8 arcsec) on each axis
    sep = stack.table["sky_centroid"].separation(stamps["sky_centroid"]).to(u.arcsec)
    assert np.all(sep < 2.6 * u.arcsec)
    # 'astrofm cutouts FOLDER' is the same as --stamps FOLDER
    assert main(["cutouts", "stamps", "-o", "again.fits", "-q"]) == 0
    assert np.array_equal(CutoutStack.read("again.fits").data, stack.data, equal_nan=True)

    # labels by id, in a CSV of another order, two sources unlabelled
    labelled = slice(2, None)
    QTable({"id": ids[labelled][::-1], "class": np.asarray(stamps["kind"])[labelled][::-1]}
           ).write("labels.csv")
    with pytest.raises(Exception, match=r"2 of %d cutouts of cutouts.fits have no label in "
                                        r"labels.csv \(id %d, %d\)" % (n, ids[0], ids[1])):
        _labels_for(stack, _namespace(labels="labels.csv", label_column="class"))
    got, labels = _labels_for(stack, _namespace(labels="labels.csv", label_column="class",
                                                drop_unlabelled=True))
    assert len(got) == n - 2
    assert got.table["id"].tolist() == ids[labelled].tolist()
    assert list(labels) == list(stamps["kind"][labelled])

    # labels by sky position: a catalogue of ra/dec 1 arcsec off, plus a far source
    sky = stamps["sky_centroid"][labelled]
    moved = sky.directional_offset_by(45 * u.deg, 1 * u.arcsec)
    QTable({"RAJ2000": np.r_[moved.ra.deg, 10.0], "DEJ2000": np.r_[moved.dec.deg, -5.0],
            "class": list(stamps["kind"][labelled]) + ["FRI"]}).write("sky.ecsv")
    got, labels = _labels_for(stack, _namespace(labels="sky.ecsv", label_column="class",
                                                match_radius=5 * u.arcsec,
                                                drop_unlabelled=True))
    assert got.table["id"].tolist() == ids[labelled].tolist()
    assert list(labels) == list(stamps["kind"][labelled])
    # too small a radius: nothing matches, and the error counts every cutout
    with pytest.raises(Exception, match=f"{n} of {n} cutouts"):
        _labels_for(stack, _namespace(labels="sky.ecsv", label_column="class",
                                      match_radius=0.01 * u.arcsec))

    # on the command line: refused without --drop-unlabelled (exit 2, the count said)
    capsys.readouterr()
    base = ["train", "cutouts.fits", "--labels", "labels.csv", "--label-column", "class",
            "--weights", "random", "--epochs", "1", "--head", "logistic"]
    assert main(base + ["--id-column", "id", "-o", "m1"]) == 2
    assert f"2 of {n} cutouts" in capsys.readouterr().err
    assert main(base + ["--id-column", "id", "--drop-unlabelled", "-o", "m1", "-q"]) == 0
    assert main(["train", "cutouts.fits", "--labels", "sky.ecsv", "--label-column", "class",
                 "--match-radius", "5arcsec", "--weights", "random", "--epochs", "1",
                 "--head", "logistic", "--drop-unlabelled", "-o", "m2", "-q"]) == 0
    # --id-column and --match-radius are two ways of joining: one at a time
    assert main(base + ["--id-column", "id", "--match-radius", "3", "-o", "m3"]) == 2


def test_pictures_with_pixel_scale(tmp_path, monkeypatch):
    Image = pytest.importorskip("PIL.Image")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "jpg").mkdir()
    centres = SkyCoord([150.0, 150.01, 150.02], [2.0, 2.1, 2.2], unit="deg")
    for k in range(3):
        rgb = np.zeros((30, 40, 3), dtype=np.uint8)  # 30 rows, 40 columns
        rgb[0, :, 0] = 200 + k  # the top row, red
        rgb[14, 20] = (10, 20, 30)  # picture row 14 from the top is row 15 from the bottom
        Image.fromarray(rgb).save(tmp_path / "jpg" / f"g{k}.png")
    QTable({"file": [f"g{k}.png" for k in (2, 0, 1)], "ra": centres.ra.deg[[2, 0, 1]],
            "dec": centres.dec.deg[[2, 0, 1]], "class": ["c", "a", "b"]}).write("targets.csv")
    assert main(["cutouts", "--stamps", "jpg/*.png", "--pixel-scale", "0.262",
                 "--stamp-table", "targets.csv", "-o", "pictures.fits", "-q"]) == 0
    stack = CutoutStack.read("pictures.fits")
    assert stack.data.shape == (3, 3, 30, 40) and stack.bands == ["R", "G", "B"]
    assert stack.table["class"].tolist() == ["a", "b", "c"]
    # the picture's top row is the last row (FITS order); RGB are the channels
    assert stack.data[:, 0, -1, 0].tolist() == [200, 201, 202]
    assert stack.data[0, :, 15, 20].tolist() == [10, 20, 30]
    for k in range(3):
        w = stack.wcs_of(k)
        scales = w.proj_plane_pixel_scales()
        assert [s.to_value(u.arcsec) for s in scales] == pytest.approx([0.262, 0.262])
        assert w.pixel_to_world(19.5, 14.5).separation(centres[k]) < 1e-6 * u.arcsec
    assert np.allclose(stack.table["pixel_scale"].to_value(u.arcsec), 0.262)
    # a folder of pictures with its catalogue beside them (as survey downloads come)
    QTable({"file": ["g0.png"]}).write("jpg/catalog.csv")
    assert main(["cutouts", "--stamps", "jpg", "--pixel-scale", "0.262", "-o",
                 "folder.fits", "-q"]) == 0
    assert CutoutStack.read("folder.fits").data.shape == (3, 3, 30, 40)

    # grey pictures are one channel; --size crops around the centre
    Image.fromarray(np.arange(30 * 40, dtype=np.uint8).reshape(30, 40) % 250).save("grey.png")
    assert main(["cutouts", "--stamps", "grey.png", "--size", "16", "-o", "grey.fits",
                 "-q"]) == 0
    grey = CutoutStack.read("grey.fits")
    assert grey.data.shape == (1, 16, 16) and grey.wcs_of(0) is None
    # a table without sky positions and --sky: the message names the option
    QTable({"file": ["grey.png"], "id": [1]}).write("nosky.csv")
    assert main(["cutouts", "--stamps", "grey.png", "--stamp-table", "nosky.csv", "--sky",
                 "RA,DEC", "-o", "g2.fits", "-q"]) == 2


def test_xy_and_sky_options_of_cutouts(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    image, truth = make_radio_field(shape=(128, 128), n_compact=6, n_extended=0,
                                    n_artefacts=0, seed=2)
    write_image(image, "field.fits")
    gal = truth["sky_centroid"].galactic
    QTable({"X_IMAGE": truth["x"], "Y_IMAGE": truth["y"], "lon": gal.l.deg,
            "lat": gal.b.deg}).write("sextractor.ecsv")
    reference = make_cutouts(image, truth, size=16)
    assert main(["cutouts", "field.fits", "sextractor.ecsv", "--xy", "X_IMAGE,Y_IMAGE",
                 "--size", "16", "-o", "xy.fits", "-q"]) == 0
    assert np.array_equal(CutoutStack.read("xy.fits").data, reference.data, equal_nan=True)
    assert main(["cutouts", "field.fits", "sextractor.ecsv", "--sky", "lon,lat:galactic",
                 "--size", "16", "-o", "sky.fits", "-q"]) == 0
    table = CutoutStack.read("sky.fits").table
    assert np.allclose(table["cutout_x"], reference.table["cutout_x"], atol=1e-6)
    # a table whose positions are not found: the error names the options, not xy=/sky=
    capsys.readouterr()
    assert main(["cutouts", "field.fits", "sextractor.ecsv", "-o", "none.fits"]) == 2
    err = capsys.readouterr().err
    assert "--xy or --sky" in err and "xy=" not in err
    assert main(["cutouts", "field.fits", "sextractor.ecsv", "--xy", "X,Y", "-o",
                 "none.fits"]) == 2
    assert "(--xy)" in capsys.readouterr().err
    assert read_table("sextractor.ecsv").colnames[0] == "X_IMAGE"


def test_id_column_named_differently_in_the_two_tables():
    """``--id-column file=file_name``: a survey's catalogue names its file column its own way."""
    import argparse
    from astrofmtools.cli.commands_classify import _rows_by_id
    stack = CutoutStack(np.zeros((3, 4, 4)), QTable({"file": ["d/a.png", "d/b.png", "d/c.png"]}))
    labels = QTable({"file_name": ["c.png", "a.png"], "ring": [1, 0]})
    args = argparse.Namespace(labels="catalog.csv", cutouts="rings.fits")
    rows, lost = _rows_by_id(stack, labels, args, "file=file_name")
    assert rows.tolist() == [1, -1, 0] and lost == "file b.png"
