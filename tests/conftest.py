import os
from pathlib import Path

import astropy
import pytest

# torch on 1 thread: small models run no faster on 2, and up to 30 times slower when
# the machine is busy (set before any test module imports torch)
os.environ.setdefault("OMP_NUM_THREADS", "1")

ASTROPY_DATA = Path(os.path.dirname(astropy.__file__))


@pytest.fixture
def astropy_test_file():
    """A real FITS file from astropy's own test data (skip if the wheel lacks it)."""
    def find(relative):
        path = ASTROPY_DATA / relative
        if not path.exists():
            pytest.skip(f"astropy test file {relative} not installed")
        return path
    return find


@pytest.fixture(autouse=True)
def _in_tmp_path(request, tmp_path, monkeypatch):
    """Run every test (and doctest) in its own temporary folder."""
    monkeypatch.chdir(tmp_path)
    # feature caches go to the test's folder, and nothing may reach the network
    monkeypatch.setenv("ASTROFM_CACHE", str(tmp_path / "astrofm-cache"))
    monkeypatch.setenv("ASTROFM_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # numbers in tests and examples are CPU numbers; tests/test_gpu.py asks for CUDA itself
    monkeypatch.setenv("ASTROFM_DEVICE", "cpu")
