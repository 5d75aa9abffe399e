# Doctests in the package run in a temporary folder, so files they write vanish.
import pytest


@pytest.fixture(autouse=True)
def _doctest_in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
