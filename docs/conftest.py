# The .rst pages' examples run as doctests in a temporary folder.
import pytest

collect_ignore = ["conf.py", "_build"]


@pytest.fixture(autouse=True)
def _doctest_in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
