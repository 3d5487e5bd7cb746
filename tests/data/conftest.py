"""Session fixtures for the data tests: the bundled corpus is prepared once per test session."""

from __future__ import annotations

import pytest

from lmlab.data.prepare import prepare_preset


@pytest.fixture(scope="session")
def sotu_dir(tmp_path_factory):
    """The bundled corpus prepared with the default preset (the same one `data=sotu` trains on)."""
    return prepare_preset("sotu", tmp_path_factory.mktemp("data"))
