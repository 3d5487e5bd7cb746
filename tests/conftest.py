"""Fixtures shared across areas: the bundled corpus prepared once per session, composed configs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """The bundled corpus prepared (preset `sotu`) into a session directory."""
    from lmlab.data.prepare import prepare_preset

    root = tmp_path_factory.mktemp("data")
    prepare_preset("sotu", root)
    return root


def compose(overrides: list[str]):
    """conf/train.yaml with overrides, as lmlab-train composes it."""
    from lmlab.train.config import compose_train

    return compose_train(overrides)


def run_cli(args: list[str], env: dict | None = None, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """Run a command of this venv (e.g. ["-m", "lmlab.train", ...]) and capture its output."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=REPO, env=full_env, capture_output=True, text=True,
                          timeout=timeout, **kwargs)
