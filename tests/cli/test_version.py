"""`astrofm --version` and the versions tables record are the same."""

import subprocess
import sys
from pathlib import Path

import pytest

import astrofmtools
from astrofmtools.utils import provenance


def test_version_agrees_with_the_tables_provenance():
    recorded = provenance()["versions"]["astrofmtools"]
    assert astrofmtools.__version__ == recorded
    assert astrofmtools.__version__ != "0.0.0"
    out = subprocess.run([sys.executable, "-m", "astrofmtools", "--version"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"astrofmtools {recorded}"


def test_pyproject_writes_the_version_file():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    config = tomllib.loads(pyproject.read_text())["tool"]["setuptools_scm"]
    assert config["version_file"] == "astrofmtools/_version.py"
