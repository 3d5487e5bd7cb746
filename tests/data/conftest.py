"""Fixtures for the data tests: the bundled corpus as prepared once per session in tests/conftest.py."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def sotu_dir(data_root):
    """The bundled corpus prepared with the default preset (the same one `data=sotu` trains on)."""
    return data_root / "sotu"


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """Shard verification stamps (and any other lmlab cache) go to the test's own directory."""
    path = tmp_path / "cache"
    monkeypatch.setenv("LMLAB_CACHE_DIR", str(path))
    return path
