"""Dependencies point downstream only: the import graph of the stages, and no torch."""

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import astrofmtools

PACKAGE = Path(astrofmtools.__file__).parent

#: The torch-free stages, upstream first (ARCHITECTURE.md): each may import the ones
#: before it, never one after it.
ORDER = ("schema", "io", "background", "stretch", "sources", "cutouts", "catalog", "evaluate")

#: Shared modules every stage may import (they import no stage).
SHARED = {"exceptions", "utils"}

TORCH = ("torch", "torchvision", "torchmetrics", "timm", "transformers", "safetensors")


def _imports(path, source=None):
    """
    (line, target, module level?) for each import of a module: the target is the
    astrofmtools subpackage (``'io'``) or ``':'`` and the top-level name of another
    package (``':torch'``). Imports inside functions count (lazy imports are edges too).
    """
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    package = parts[:-1]  # the package a module (or an __init__) belongs to
    tree = ast.parse(path.read_text() if source is None else source, filename=str(path))
    top = {id(node) for node in tree.body}
    for node in tree.body:  # module-level imports inside if/try blocks count as module level
        if isinstance(node, (ast.If, ast.Try)):
            top.update(id(n) for n in ast.walk(node))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                target = base + tuple((node.module or "").split(".") if node.module else ())
            else:
                target = tuple((node.module or "").split("."))
            names = [target] if node.module or not node.level else [
                target + (alias.name,) for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [tuple(alias.name.split(".")) for alias in node.names]
        else:
            continue
        for name in names:
            if name[0] == "astrofmtools":
                yield node.lineno, name[1] if len(name) > 1 else "", id(node) in top
            else:
                yield node.lineno, ":" + name[0], id(node) in top


def _edges():
    for stage in ORDER:
        folder = PACKAGE / stage
        for path in sorted(folder.rglob("*.py")):
            for line, target, module_level in _imports(path):
                yield stage, path.relative_to(PACKAGE.parent), line, target, module_level


def test_every_stage_is_checked():
    for stage in ORDER:
        assert (PACKAGE / stage / "__init__.py").exists(), stage


def test_no_upstream_import_among_the_torch_free_stages():
    bad = []
    for stage, path, line, target, _ in _edges():
        if target.startswith(":") or target == stage:
            continue
        if target in ORDER:
            if ORDER.index(target) > ORDER.index(stage):
                bad.append(f"{path}:{line}: {stage} imports {target}, which is downstream")
        elif stage == "schema" and target not in SHARED:
            bad.append(f"{path}:{line}: schema imports {target} (it may import only "
                       "numpy, astropy and astrofmtools.exceptions and .utils)")
        elif target not in SHARED:
            bad.append(f"{path}:{line}: {stage} imports {target}, which is not a torch-free "
                       f"stage before it ({', '.join(ORDER)})")
    assert not bad, "\n".join(bad)


def test_no_module_level_torch_import():
    bad = [f"{path}:{line}: imports {target[1:]} at module level"
           for _, path, line, target, module_level in _edges()
           if module_level and target[1:] in TORCH]
    assert not bad, "\n".join(bad)


def test_schema_imports_only_numpy_and_astropy():
    allowed = {"numpy", "astropy", "dataclasses", "functools"}
    bad = [f"{path}:{line}: {target[1:]}" for stage, path, line, target, _ in _edges()
           if stage == "schema" and target.startswith(":") and target[1:] not in allowed]
    assert not bad, "\n".join(bad)


def test_the_graph_parser_sees_lazy_and_relative_imports():
    """The check catches a downstream stage imported inside a function, as stretch did."""
    source = ("import torch\n"
              "from . import core\n"
              "def f():\n"
              "    from ..cutouts import CutoutStack\n"
              "    import astrofmtools.catalog.tables\n")
    found = list(_imports(PACKAGE / "stretch" / "probe.py", source))
    assert found == [(1, ":torch", True), (2, "stretch", True), (4, "cutouts", False),
                     (5, "catalog", False)]


@pytest.mark.slow
def test_torch_free_stages_work_with_torch_blocked():
    """Import and use one function of each torch-free stage in a process without torch.

    (Setting ``sys.modules["torch"] = None`` would block it too, but breaks scipy, whose
    array-API helpers look torch up in ``sys.modules``.)
    """
    code = textwrap.dedent(f"""
        import sys

        class NoTorch:  # "import torch" raises ImportError, as where torch is not installed
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {TORCH!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)")

        sys.meta_path.insert(0, NoTorch())
        from pathlib import Path
        import numpy as np
        import astropy.units as u
        from astropy.table import QTable

        import astrofmtools
        from astrofmtools.schema import parse_positions
        from astrofmtools.io import load_image
        from astrofmtools.background import estimate_background
        from astrofmtools.stretch import Stretch
        from astrofmtools.sources import find_sources
        from astrofmtools.cutouts import make_cutouts
        from astrofmtools.catalog import crossmatch, table_to_regions, write_table
        from astrofmtools.evaluate import classification_metrics, match_positions

        pos = parse_positions(QTable({{"l": [0.0], "b": [0.0]}}), kind="sky")
        assert abs(pos.sky.ra.deg[0] - 266.405) < 1e-3
        image = load_image(Path(astrofmtools.__file__).parent / "data" / "first_example.fits")
        maps = estimate_background(image)
        assert maps.rms.shape == image.data.shape
        assert Stretch("asinh")(image.data).max() <= 1
        sources = find_sources(image)
        assert len(sources) > 0
        stack = make_cutouts(image, sources, size=16)
        assert stack.data.shape == (len(sources), 16, 16)
        matched = crossmatch(sources, sources, max_sep=1 * u.arcsec)
        assert len(matched) == len(sources)
        assert len(table_to_regions(sources)) == len(sources)
        write_table(sources, "sources.ecsv")
        pred, true, _ = match_positions(sources, sources, max_sep=1)
        assert len(pred) == len(sources)
        assert classification_metrics([0, 1, 1], [0, 1, 0])["accuracy"] > 0.6
        loaded = sorted(n for n in sys.modules if n.split(".")[0] in {TORCH!r})
        assert not loaded, loaded
        print("torch-free: ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "torch-free: ok" in done.stdout


#: The torch stages, upstream first: each may import the torch-free stages and the torch
#: stages before it, never one after it (a backbone family knows nothing of the detector
#: that uses its pyramid; the strategies know no backbone class).
TORCH_ORDER = ("backbones", "adapt", "classify", "pretrain", "detect", "embed", "study")


def test_no_upstream_import_among_the_torch_stages():
    bad = []
    for stage in TORCH_ORDER:
        for path in sorted((PACKAGE / stage).rglob("*.py")):
            for line, target, _ in _imports(path):
                if target in TORCH_ORDER and TORCH_ORDER.index(target) > TORCH_ORDER.index(stage):
                    bad.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {stage} imports "
                               f"{target}, which is downstream")
                elif target in ("pipeline", "cli", "datasets", "visualization"):
                    bad.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {stage} imports "
                               f"{target}")
    assert not bad, "\n".join(bad)
