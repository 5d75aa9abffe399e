import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import QTable

from astrofmtools.catalog import read_table

from astrofmtools.cli import build_parser, main
from astrofmtools.datasets import example_image_path

EXAMPLE = example_image_path()


def test_help_lists_every_subcommand(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("sources", "cutouts", "info", "demo"):
        assert command in out
    assert main(["sources", "--help"]) == 0
    assert "example:" in capsys.readouterr().out


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "astrofm"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True,
                            check=True)
    assert result.stdout.startswith("astrofmtools ")


def test_bad_usage_and_input_exit_2(capsys):
    assert main(["sources"]) == 2  # missing arguments
    assert main(["info", "missing.fits"]) == 2
    err = capsys.readouterr().err
    assert "missing.fits" in err and "Traceback" not in err


def test_info(capsys):
    assert main(["info", EXAMPLE]) == 0
    out = capsys.readouterr().out
    assert "300 x 300" in out and "RA---TAN" in out and "5.4\"" in out and "Jy / beam" in out
    assert "*  0  PRIMARY      PrimaryHDU    300 x 300" in out and "field:       9' x 9'" in out


def test_info_lists_every_hdu_and_marks_the_one_read(capsys):
    from astropy.io import fits
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((4, 5, 6), np.int16), name="SCI"),
                  fits.BinTableHDU.from_columns([fits.Column("a", "E", array=np.zeros(3))],
                                                name="CAT")]).writeto("multi.fits")
    assert main(["info", "multi.fits", "--hdu", "SCI", "--plane", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:5] == ["hdus:", "     0  PRIMARY      PrimaryHDU    no data",
                          "  *  1  SCI          ImageHDU      6 x 5 x 4         int16",
                          "     2  CAT          BinTableHDU   3 rows x 1 columns [E]"]
    assert "shape:       6 x 5 pixels (x by y)" in lines


def test_sources_then_cutouts(capsys):
    from regions import Regions
    assert main(["sources", EXAMPLE, "-o", "s.ecsv", "--regions", "s.reg", "-q",
                 "--background-map", "bkg.fits"]) == 0
    table = read_table("s.ecsv")
    assert len(table) >= 2
    assert "sky_centroid" in table.colnames
    # the hybrid radio galaxy at the centre of the shipped image is found
    centre = np.hypot(table["x"].value - 149.5, table["y"].value - 149.5)
    assert centre.min() < 20
    regions = Regions.read("s.reg", format="ds9")
    assert len(regions) == len(table)
    with fits.open("bkg.fits") as hdul:
        assert len(hdul) >= 2 and hdul[1].data.shape == (300, 300)

    # nothing is overwritten without --overwrite
    before = Path("s.ecsv").read_text()
    assert main(["sources", EXAMPLE, "-o", "s.ecsv", "-q"]) == 2
    assert "exists" in capsys.readouterr().err
    assert Path("s.ecsv").read_text() == before
    assert main(["sources", EXAMPLE, "-o", "s.ecsv", "-q", "--overwrite", "--snr", "8"]) == 0

    assert main(["cutouts", EXAMPLE, "s.ecsv", "-o", "c.fits", "--size", "32", "-q"]) == 0
    from astrofmtools.cutouts import CutoutStack
    stack = CutoutStack.read("c.fits")
    assert stack.data.shape[1:] == (32, 32) and len(stack) == len(read_table("s.ecsv"))
    assert main(["cutouts", EXAMPLE, "s.ecsv", "-o", "b.fits", "--size", "bbox",
                 "--output-size", "24", "-q"]) == 0
    assert CutoutStack.read("b.fits").data.shape[1:] == (24, 24)
    assert main(["cutouts", EXAMPLE, "s.ecsv", "-o", "d.fits", "--size", "big"]) == 2


def test_cutouts_table_without_positions(capsys):
    QTable({"flux": [1.0, 2.0]}).write("nopos.ecsv")
    assert main(["cutouts", EXAMPLE, "nopos.ecsv", "-o", "c.fits"]) == 2
    err = capsys.readouterr().err
    assert "nopos.ecsv" in err or "x" in err


@pytest.mark.slow
def test_demo_writes_every_output():
    from PIL import Image
    from regions import Regions
    assert main(["demo", "-o", "demo", "-q"]) == 0
    table = read_table("demo/sources.ecsv")
    assert {"ra", "dec", "sky_centroid"} <= set(table.colnames)
    assert len(Regions.read("demo/sources.reg", format="ds9")) == len(table)
    assert len(Regions.read("demo/sources.crtf", format="crtf")) == len(table)
    with Image.open("demo/overlay.png") as png:
        assert png.size[0] > 300
    summary = Path("demo/summary.txt").read_text()
    assert "sources:" in summary and "feature map" in summary
    # features, classes and the feature map of the ml stages
    assert set(table["label"]) <= {"compact", "extended"}
    assert np.allclose(table["p_compact"] + table["p_extended"], 1, atol=1e-5)
    from astrofmtools.embed import Embedding
    features = Embedding.read("demo/features.fits")
    assert features.features.shape == (len(table), 1280)
    assert list(features.table["id"]) == list(table["id"])
    with Image.open("demo/feature_map.png") as png:
        assert png.size == (640, 560)
    assert main(["demo", "-o", "demo", "-q"]) == 2  # refuses an existing folder
    assert main(["demo", "-o", "demo", "-q", "--overwrite", "--no-ml"]) == 0
    assert not Path("demo/features.fits").exists()


def test_cutouts_with_a_second_band():
    """A second survey on another grid becomes a second channel of every cutout."""
    from astropy.wcs import WCS
    from astrofmtools.cutouts import CutoutStack
    from astrofmtools.io import load_image, write_image
    radio = load_image(EXAMPLE)
    # an "infrared" image of the same sky: finer pixels, rotated by 30 degrees
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = radio.wcs.wcs.crval
    w.wcs.crpix = [200.5, 200.5]
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    w.wcs.cd = np.array([[-c, s], [s, c]]) * 1.2 / 3600
    y, x = np.mgrid[:400, :400]
    sx, sy = w.world_to_pixel(radio.wcs.pixel_to_world(150.0, 140.0))
    ir = np.exp(-((x - sx) ** 2 + (y - sy) ** 2) / (2 * 2.0 ** 2)).astype(np.float32)
    write_image((ir, w), "ir.fits")
    QTable({"x": [150.0, 100.0], "y": [140.0, 60.0]}).write("pos.ecsv")
    assert main(["cutouts", EXAMPLE, "pos.ecsv", "--band", "ir.fits", "-o", "c2.fits",
                 "--size", "32", "-q"]) == 0
    stack = CutoutStack.read("c2.fits")
    assert stack.data.shape == (2, 2, 32, 32)
    # the infrared source lands at the centre of the first cutout's second channel
    peak = np.unravel_index(np.nanargmax(stack.data[0, 1]), (32, 32))
    assert peak == (16, 16)


def test_embed_train_classify_chain(capsys):
    """astrofm embed / train / classify on cutouts of two kinds of source."""
    torch = pytest.importorskip("torch")
    from astrofmtools.backbones import BackboneSpec, read_features, register_backbone
    from astrofmtools.cutouts import CutoutStack
    register_backbone(BackboneSpec(
        name="vit_tiny_cli", timm_name="vit_tiny_patch16_224", patch_size=8, input_size=32,
        feature_dim=32, licence="none",
        timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 32,
                     "num_heads": 2}), overwrite=True)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:24, :24] - 11.5
    images, labels = [], []
    for i in range(60):
        if i % 2 == 0:
            image = np.exp(-(xx ** 2 + yy ** 2) / 4.5)
        else:
            a = rng.uniform(0, np.pi)
            dx, dy = 5 * np.cos(a), 5 * np.sin(a)
            image = (np.exp(-((xx - dx) ** 2 + (yy - dy) ** 2) / 4.5)
                     + np.exp(-((xx + dx) ** 2 + (yy + dy) ** 2) / 4.5))
        images.append(30 * image + rng.normal(size=image.shape))
        labels.append("compact" if i % 2 == 0 else "double")
    table = QTable({"id": np.arange(1, 61), "x": np.full(60, 11.5), "y": np.full(60, 11.5)})
    CutoutStack(np.array(images, dtype=np.float32), table).write("c.fits")
    QTable({"id": np.arange(1, 61)[::-1], "class": labels[::-1]}).write("labels.ecsv")

    assert main(["embed", "c.fits", "-o", "f.fits", "--model", "vit_tiny_cli",
                 "--weights", "random", "-q"]) == 0
    features, ftable, meta = read_features("f.fits")
    assert features.shape == (60, 32) and list(ftable["id"]) == list(range(1, 61))

    assert main(["train", "c.fits", "--labels", "labels.ecsv", "--label-column", "class",
                 "--model", "vit_tiny_cli", "--weights", "random", "--head", "logistic",
                 "-o", "model", "-q"]) == 0
    assert main(["classify", "c.fits", "--model", "model", "-o", "p.ecsv",
                 "--regions", "p.reg", "-q"]) == 0
    predictions = read_table("p.ecsv")
    assert {"id", "label", "probability"} <= set(predictions.colnames)
    # labels were joined by id, not by row: the training set is predicted right
    assert np.mean(np.asarray(predictions["label"]) == np.array(labels)) > 0.9
    assert main(["train", "c.fits", "--labels", "labels.ecsv", "--label-column", "kind",
                 "--model", "vit_tiny_cli", "-o", "model2", "-q"]) == 2
    assert "kind" in capsys.readouterr().err


def _subcommands():
    """The subcommands' parsers, by name."""
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


_MODEL_COMMANDS = {"demo", "embed", "similar", "attention", "train", "classify",
                   "train-detector", "detect", "label-curve", "pretrain"}
_COMMON_USERS = {
    "--device": _MODEL_COMMANDS,
    "--batch-size": _MODEL_COMMANDS,
    "--seed": {"demo", "map", "train", "train-detector", "pretrain"},
    "--overwrite": set(_subcommands()) - {"info"},
    "--verbose": set(_subcommands()),
    "--quiet": set(_subcommands()),
}


@pytest.mark.parametrize("option", sorted(_COMMON_USERS))
def test_common_options_are_defined_once(option):
    """Every subcommand with a common option spells, types and documents it the same way."""
    found = {}
    for name, sub in _subcommands().items():
        for group in sub._action_groups:
            for action in group._group_actions:
                if option in action.option_strings:
                    found[name] = (group.title, tuple(action.option_strings), action.help,
                                   action.type, action.default)
    assert set(found) == _COMMON_USERS[option]
    assert len(set(found.values())) == 1, found
    assert next(iter(found.values()))[0] == "common options"


def test_common_options_keep_their_order():
    from astrofmtools.cli.options import COMMON
    order = [COMMON[name][0][-1] for name in COMMON]
    for name, sub in _subcommands().items():
        group = next(g for g in sub._action_groups if g.title == "common options")
        flags = [a.option_strings[-1] for a in group._group_actions]
        assert flags == [f for f in order if f in flags], name
        # per-subcommand help of --model and -o: what the subcommand means by them
        assert all(a.help for a in group._group_actions)


def test_every_subcommand_ends_its_help_with_an_example(capsys):
    subcommands = _subcommands()
    assert len(subcommands) == 18
    for name, sub in subcommands.items():
        assert sub.epilog.startswith("example"), name
        assert f"astrofm {name} " in sub.epilog
    assert main(["detect", "--help"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("--tile 512 --overlap 64")


def test_no_subcommand_prints_the_help_and_exits_2(capsys):
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("usage: astrofm")
    for name in _subcommands():
        assert f"\n    {name} " in captured.err or f"\n    {name}\n" in captured.err


def test_bad_input_with_verbose_prints_the_traceback_and_exits_2(capsys):
    assert main(["info", "missing.fits", "-v"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last)")
    assert "MissingFileError" in err
    assert err.strip().splitlines()[-1].startswith("astrofm info: error:")
    assert "missing.fits" in err.strip().splitlines()[-1]


def test_internal_error_exits_1(monkeypatch, capsys):
    from astrofmtools.cli import commands_image

    def broken(args):
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr(commands_image, "cmd_info", broken)
    assert main(["info", EXAMPLE]) == 1
    err = capsys.readouterr().err
    assert err == ("astrofm info: internal error: RuntimeError: the disk caught fire "
                   "(run with -v for the traceback)\n")
    assert main(["info", EXAMPLE, "-v"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and "in broken" in err
    assert err.strip().splitlines()[-1] == ("astrofm info: internal error: RuntimeError: "
                                            "the disk caught fire")


def test_interrupt_exits_130(monkeypatch, capsys):
    from astrofmtools.cli import commands_image

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(commands_image, "cmd_info", interrupted)
    assert main(["info", EXAMPLE]) == 130
    assert capsys.readouterr().err == "astrofm: interrupted\n"


def test_python_dash_m():
    result = subprocess.run([sys.executable, "-m", "astrofmtools", "--version"],
                            capture_output=True, text=True, check=True)
    assert result.stdout.startswith("astrofmtools ")
    result = subprocess.run([sys.executable, "-m", "astrofmtools"], capture_output=True,
                            text=True)
    assert result.returncode == 2 and "crossmatch" in result.stderr and result.stdout == ""


def test_batch_size_reaches_the_model(monkeypatch):
    """classify --batch-size goes to Classifier.predict; without it the library's default."""
    from astrofmtools.classify import Classifier
    from astrofmtools.cutouts import CutoutStack
    CutoutStack(np.zeros((3, 8, 8), dtype=np.float32),
                QTable({"id": [1, 2, 3], "x": [3.5] * 3, "y": [3.5] * 3})).write("c.fits")
    calls = []

    class Fake:
        def predict(self, stack, **kwargs):
            calls.append(kwargs)
            return QTable({"id": stack.table["id"], "label": ["a", "b", "a"]})

    monkeypatch.setattr(Classifier, "load", classmethod(lambda cls, path, device=None: Fake()))
    assert main(["classify", "c.fits", "--model", "m", "-o", "p.ecsv", "-q",
                 "--batch-size", "7"]) == 0
    assert main(["classify", "c.fits", "--model", "m", "-o", "p.ecsv", "-q",
                 "--overwrite"]) == 0
    assert [c.get("batch_size") for c in calls] == [7, None]
    assert list(read_table("p.ecsv")["label"]) == ["a", "b", "a"]


def test_train_tta_flag_and_validation_line(capsys, doubles_stack):
    """--tta/--no-tta reach the Classifier (default 'auto': off on a CPU); astrofm train
    prints the validation split's accuracy and macro-F1; classify can override TTA."""
    import json
    from astrofmtools.classify import Classifier
    name = doubles_stack(40)
    base = ["train", "c.fits", "--model", name, "--weights", "random", "--head", "logistic",
            "--device", "cpu"]
    assert main(base + ["-o", "auto"]) == 0
    err = capsys.readouterr().err
    line = next(s for s in err.splitlines() if "validation split" in s)
    assert "(6 cutouts): accuracy " in line and ", macro-F1 " in line
    assert json.loads(Path("auto/config.json").read_text())["params"]["tta"] is False
    assert main(base + ["--tta", "-o", "on", "-q"]) == 0
    assert Classifier.load("on").tta is True
    assert main(base + ["--no-tta", "-o", "off", "-q"]) == 0
    assert Classifier.load("off").tta is False
    assert main(["classify", "c.fits", "--model", "off", "--tta", "-o", "p.ecsv", "-q"]) == 0
    assert read_table("p.ecsv").meta["tta"] is True
