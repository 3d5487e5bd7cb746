from __future__ import annotations

import pytest

from tests.audit.toy import toy_run


@pytest.fixture(scope="session")
def trained_toy_run(tmp_path_factory):
    """A 25k model trained on the toy corpus of tests/audit/toy.py (once per session)."""
    return toy_run(tmp_path_factory)
