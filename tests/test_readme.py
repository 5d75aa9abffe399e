"""Every snippet in README.rst runs as written, in a temporary folder."""

import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parent.parent / "README.rst"

pytestmark = pytest.mark.skipif(not README.is_file(), reason="no README.rst here")


def literal_blocks(text):
    """The literal blocks (after a paragraph ending in ``::``), unindented."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        line = lines[i].rstrip()
        if line.endswith("::") and not line.lstrip().startswith(".."):
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            block = []
            while j < len(lines) and (not lines[j].strip() or lines[j].startswith("    ")):
                block.append(lines[j][4:])
                j += 1
            blocks.append("\n".join(block).strip("\n"))
            i = j
        else:
            i += 1
    return blocks


def snippets():
    """(kind, text): 'shell' for astrofm command lines, 'python' for code; installs left out."""
    out = []
    for block in literal_blocks(README.read_text()):
        if "pip install" in block:
            continue
        if block.lstrip().startswith("astrofm "):
            commands = block.replace("\\\n", " ").splitlines()
            out.extend(("shell", c.strip()) for c in commands if c.strip())
        else:
            out.append(("python", block))
    return out


def test_the_readme_has_commands_and_code():
    kinds = [k for k, _ in snippets()]
    assert kinds.count("shell") >= 10 and kinds.count("python") >= 2


@pytest.mark.parametrize("kind, text", snippets())
def test_every_snippet_parses(kind, text):
    """Fast: Python compiles, and every command line is one the parser accepts."""
    if kind == "python":
        compile(text, "README.rst", "exec")
    else:
        from astrofmtools.cli import build_parser
        args = build_parser().parse_args(shlex.split(text, comments=True)[1:])
        assert args.command is not None


def _inputs(folder):
    """The files README's commands name, made from the shipped FIRST image."""
    from astropy.table import QTable
    from astrofmtools.datasets import example_image_path
    from astrofmtools.sources import find_sources

    for name in ("mosaic.fits", "first.fits", "wise_w1.fits"):
        shutil.copy(example_image_path(), folder / name)
    (folder / "images").mkdir()
    shutil.copy(example_image_path(), folder / "images" / "first.fits")
    sources = find_sources(example_image_path())
    area = np.asarray(sources["area"].value)
    classes = np.where(area > np.median(area), "extended", "compact")
    QTable({"id": sources["id"], "class": classes}).write(folder / "labels.ecsv")
    rng = np.random.default_rng(0)
    QTable({"ra": sources["ra"] + rng.normal(0, 1e-4, len(sources)) * sources["ra"].unit,
            "dec": sources["dec"] + rng.normal(0, 1e-4, len(sources)) * sources["dec"].unit}
           ).write(folder / "nvss.fits")
    boxes = QTable({"image": ["first.fits"] * len(sources)})
    for name in ("bbox_xmin", "bbox_xmax", "bbox_ymin", "bbox_ymax"):
        boxes[name] = sources[name]
    boxes.write(folder / "boxes.ecsv")


@pytest.mark.slow
def test_every_snippet_runs_as_written(tmp_path, monkeypatch):
    """The README's commands in order, then its Python, each exactly as printed."""
    from astrofmtools.cli import main
    monkeypatch.chdir(tmp_path)
    _inputs(tmp_path)
    for kind, text in snippets():
        if kind == "shell":
            assert main(shlex.split(text, comments=True)[1:]) == 0, text
        else:
            exec(compile(text, "README.rst", "exec"), {"__name__": "readme"})
