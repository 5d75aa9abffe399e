# The .rst pages' examples run as doctests in a temporary folder.
import pytest

collect_ignore = ["conf.py", "_build"]


@pytest.fixture(autouse=True)
def _doctest_in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # feature caches go to the test's folder, and nothing may reach the network
    monkeypatch.setenv("ASTROFM_CACHE", str(tmp_path / "astrofm-cache"))
    monkeypatch.setenv("ASTROFM_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
