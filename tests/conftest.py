"""Fixtures shared across areas: the bundled corpus prepared once per session, composed configs."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# lmlab's user cache (shard stamps, CPU peak) goes to a scratch dir, set before any lmlab module reads it
os.environ["LMLAB_CACHE_DIR"] = tempfile.mkdtemp(prefix="lmlab-test-cache-")
if "PYTEST_XDIST_WORKER" in os.environ:  # `make test` runs one worker per core: one thread each
    os.environ.setdefault("OMP_NUM_THREADS", "1")
CONF = REPO / "conf"


def pytest_configure(config):
    # registered here too, so that the marks added below are known when a run disables xdist (-p no:xdist)
    config.addinivalue_line("markers", "xdist_group(name): tests run on one xdist worker")


@pytest.hookimpl(tryfirst=True)  # before xdist's worker hook reads the groups into node ids
def pytest_collection_modifyitems(items):
    """Under `pytest -n K --dist loadgroup`, a file's tests share one worker (its module fixtures are
    built once) and all SLURM tests share one worker (they queue on the one local node)."""
    for item in items:
        group = "slurm" if item.get_closest_marker("slurm") else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """The bundled corpus prepared (preset `sotu`) into a session directory."""
    from lmlab.data.prepare import prepare_preset

    root = tmp_path_factory.mktemp("data")
    prepare_preset("sotu", root)
    return root


def compose(overrides: list[str]):
    """conf/train.yaml with overrides, as lmlab-train composes it."""
    from lmlab.config import compose_train

    return compose_train(overrides)


def run_cli(args: list[str], env: dict | None = None, timeout: float = 600, cwd=None,
            **kwargs) -> subprocess.CompletedProcess:
    """Run a command of this venv (e.g. ["-m", "lmlab.train", ...]) and capture its output. It runs in
    a scratch directory (never the checkout), with lmlab's default data and runs directories there."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=cwd or os.environ["LMLAB_TEST_SCRATCH"], env=full_env,
                          capture_output=True, text=True, timeout=timeout, **kwargs)


OUTPUT_DIRS = ("runs", "outputs", "multirun", "data", "studies")  # what lmlab writes by default, relative to cwd


@pytest.fixture(scope="session", autouse=True)
def nothing_written_into_the_checkout(tmp_path_factory):
    """Tests write only to temporary directories: default data and runs directories point at a scratch
    directory, and the session fails if the checkout gained any of lmlab's output directories."""
    scratch = tmp_path_factory.mktemp("scratch")
    before = {d for d in OUTPUT_DIRS if (REPO / d).exists()}
    saved = {k: os.environ.get(k) for k in ("LMLAB_TEST_SCRATCH", "LMLAB_RUNS_DIR", "LMLAB_DATA_DIR")}
    os.environ.update(LMLAB_TEST_SCRATCH=str(scratch), LMLAB_RUNS_DIR=str(scratch / "runs"),
                      LMLAB_DATA_DIR=str(scratch / "data"))
    yield scratch
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    added = sorted({d for d in OUTPUT_DIRS if (REPO / d).exists()} - before)
    assert not added, f"tests wrote {added} into the checkout {REPO}"
