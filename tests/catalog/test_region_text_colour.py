"""Region text only when few (or asked for), and colours that follow a column."""

import numpy as np
import pytest
import regions as rg
from astropy.table import QTable

from astrofmtools import InputError
from astrofmtools.catalog import REGION_TEXT_LIMIT, table_to_regions, write_regions
from astrofmtools.cli.parser import build_parser


def sources(n, seed=0):
    rng = np.random.default_rng(seed)
    return QTable({"id": np.arange(1, n + 1), "x": rng.uniform(0, 500, n),
                   "y": rng.uniform(0, 500, n),
                   "label": np.where(np.arange(n) % 3 == 0, "FRI", "FRII"),
                   "score": np.linspace(0.0, 1.0, n)})


def colour(region):
    """The colour a region file gave a region: DS9 sets edgecolor, CRTF color (no '#')."""
    visual = region.visual
    return str(visual.get("color", visual.get("edgecolor"))).lstrip("#").lower()


def text_lines(path):
    return [line for line in path.read_text().splitlines() if "text={" in line]


def test_many_regions_have_no_text_unless_asked(tmp_path):
    many = sources(REGION_TEXT_LIMIT + 1)
    write_regions(many, tmp_path / "many.reg")
    assert not text_lines(tmp_path / "many.reg")
    write_regions(many, tmp_path / "forced.reg", text=True)
    assert len(text_lines(tmp_path / "forced.reg")) == len(many)
    write_regions(many, tmp_path / "id.reg", text="id")  # a named column: always
    assert len(text_lines(tmp_path / "id.reg")) == len(many)
    # few regions: text by default, none when refused
    few = sources(REGION_TEXT_LIMIT)
    write_regions(few, tmp_path / "few.reg")
    assert len(text_lines(tmp_path / "few.reg")) == len(few)
    write_regions(few, tmp_path / "none.reg", text=False)
    assert not text_lines(tmp_path / "none.reg")
    # the files read back, with their classes (tags) in every case
    for name in ("many", "forced", "few", "none"):
        regs = rg.Regions.read(str(tmp_path / f"{name}.reg"), format="ds9")
        assert len(regs) in (len(many), len(few))
        assert all("tag" in r.meta for r in regs)


def test_colour_by_class_column(tmp_path):
    table = sources(150)
    write_regions(table, tmp_path / "cls.reg", color_by="label", text=False)
    regs = rg.Regions.read(str(tmp_path / "cls.reg"), format="ds9")
    colours = {}
    for reg, label in zip(regs, table["label"]):
        colours.setdefault(label, set()).add(colour(reg))
    assert all(len(c) == 1 for c in colours.values())  # one colour per class
    assert colours["FRI"] != colours["FRII"]


def test_colour_by_numeric_column_follows_a_colour_map(tmp_path):
    import matplotlib
    from matplotlib.colors import to_hex

    table = sources(20)
    table["score"][3] = np.nan
    path = tmp_path / "score.crtf"
    write_regions(table, tmp_path / "score.reg", color_by="score")
    regs = rg.Regions.read(str(tmp_path / "score.reg"), format="ds9")
    got = [colour(r) for r in regs]
    viridis = matplotlib.colormaps["viridis"]
    assert got[0] == to_hex(viridis(0.0))[1:] and got[-1] == to_hex(viridis(1.0))[1:]
    assert got[3] == "999999"  # NaN: grey
    assert len(set(got)) == len(table)  # a gradient: every score its own colour
    # CRTF: the same colours, with sky regions
    from astrofmtools.datasets import make_wcs
    wcs = make_wcs((500, 500))
    write_regions(table, path, format="crtf", wcs=wcs, color_by="score")
    assert "color=#" not in path.read_text()  # CASA refuses '#rrggbb' in CRTF
    back = rg.Regions.read(str(path), format="crtf")
    assert [colour(r) for r in back] == got


def test_colour_by_a_missing_column():
    with pytest.raises(InputError, match="color_by"):
        table_to_regions(sources(3), color_by="flux")


def test_cli_region_options():
    parser = build_parser()
    args = parser.parse_args(["sources", "image.fits", "-o", "t.ecsv", "--regions", "a.reg",
                              "--no-region-text", "--region-color-by", "snr"])
    assert args.region_text is False and args.region_color_by == "snr"
    args = parser.parse_args(["sources", "image.fits", "-o", "t.ecsv", "--region-text"])
    assert args.region_text is True and args.region_color_by is None
    args = parser.parse_args(["detect", "image.fits", "-o", "t.ecsv", "--model", "m"])
    assert args.region_text == "auto"
    args = parser.parse_args(["classify", "c.fits", "-o", "t.ecsv", "--model", "m",
                              "--region-color-by", "label"])
    assert args.region_color_by == "label"
    with pytest.raises(SystemExit):
        parser.parse_args(["sources", "image.fits", "-o", "t.ecsv", "--region-text",
                           "--no-region-text"])
