"""Fixtures for the data tests: the bundled corpus as prepared once per session in tests/conftest.py."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def sotu_dir(data_root):
    """The bundled corpus prepared with the default preset (the same one `data=sotu` trains on)."""
    return data_root / "sotu"
