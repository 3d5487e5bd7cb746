"""The local SLURM cluster (slurm/start-local.sh) and sweeps submitted to it.

Without a cluster with an idle node the SLURM tests skip, unless LMLAB_REQUIRE_SLURM=1 (CI sets it
after starting the cluster), where they fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

# A tiny model (debug=fast) on one torch thread, so that runs repeat exactly; small SLURM jobs.
TINY = ["debug=fast", "trainer.threads=1"]
SWEEP_BASE = ["-m", "cluster=slurm", *TINY, "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1",
              "hydra.launcher.timeout_min=10"]


def node_state() -> str | None:
    try:
        out = subprocess.run(["sinfo", "-h", "-n", "localhost", "-o", "%T"], capture_output=True, text=True,
                             timeout=20)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().rstrip("*~#") or None


@pytest.fixture(scope="session", autouse=True)
def slurm_cluster() -> None:
    state = node_state()
    if state in ("idle", "mixed", "allocated", "completing"):
        return
    if os.environ.get("LMLAB_REQUIRE_SLURM") == "1":
        pytest.fail(f"LMLAB_REQUIRE_SLURM=1 but the local SLURM node is {state or 'not there'} (sinfo)")
    pytest.skip("local SLURM cluster not running: make slurm-up")


@pytest.fixture
def lab(tmp_path, data_root) -> "Lab":
    return Lab(tmp_path / "runs", data_root)


class Lab:
    """A runs directory and the environment that points training (and its SLURM jobs) at it."""

    def __init__(self, runs_dir: Path, data_root: Path):
        self.runs_dir = runs_dir
        self.env = {**os.environ, "LMLAB_RUNS_DIR": str(runs_dir), "LMLAB_DATA_DIR": str(data_root),
                    "PYTHONUNBUFFERED": "1"}

    def command(self, *overrides: str, local: bool = False) -> list[str]:
        base = TINY if local else SWEEP_BASE
        return [sys.executable, "-m", "lmlab.train", *base, *overrides]

    def sweep(self, *overrides: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*overrides), cwd=REPO, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def start(self, *overrides: str, local: bool = False) -> subprocess.Popen:
        return subprocess.Popen(self.command(*overrides, local=local), cwd=REPO, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def sweep_dirs(self) -> list[Path]:
        return sorted(p.parent for p in (self.runs_dir / ".hydra" / "multirun").glob("*/*/multirun.yaml"))

    def run_dirs(self, group: str) -> list[Path]:
        return sorted(p.parent for p in (self.runs_dir / group).glob("*/config.yaml"))

    def job_logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.runs_dir.glob(".hydra/multirun/*/*/.submitit/*/*.out")))


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def wait_for(predicate, timeout: float, what: str, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def trained_steps(run_dir: Path) -> int:
    """The last optimizer step with a train row in metrics.jsonl (0 before the first)."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return 0
    steps = [json.loads(line)["step"] for line in path.read_text().splitlines() if '"train_loss"' in line]
    return steps[-1] if steps else 0


def preempt_when_training(run_dirs, timeout: float = 120) -> str:
    """Once the run has trained 10 steps, submit an exclusive job to the preempting partition.

    Returns that job's id. The run must still be far from its end, or there is nothing to preempt."""
    run_dir = wait_for(lambda: next(iter(run_dirs()), None), timeout, "the run directory")
    wait_for(lambda: trained_steps(run_dir) >= 10, timeout, "10 optimizer steps")
    assert trained_steps(run_dir) < 100, "the run finished before it could be preempted"
    high = subprocess.run(["sbatch", "--parsable", "-p", "high", "--exclusive", "-o", "/dev/null",
                           "--wrap", "sleep 1"], capture_output=True, text=True, check=True)
    return high.stdout.strip()
