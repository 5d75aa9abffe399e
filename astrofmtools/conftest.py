# Doctests in the package run in a temporary folder, so files they write vanish.
import os

import pytest

# torch on 1 thread: small models run no faster on 2, and up to 30 times slower when
# the machine is busy (set before any test module imports torch)
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _doctest_in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # feature caches go to the test's folder, and nothing may reach the network
    monkeypatch.setenv("ASTROFM_CACHE", str(tmp_path / "astrofm-cache"))
    monkeypatch.setenv("ASTROFM_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # numbers in tests and examples are CPU numbers; tests/test_gpu.py asks for CUDA itself
    monkeypatch.setenv("ASTROFM_DEVICE", "cpu")
