"""`lmlab runs status` on real sweeps run in this process's machine (cluster=local)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from lmlab.cli import main
from lmlab.runs.status import SweepStatus, RunState, expand_sweep
from tests.conftest import REPO

TINY = ["debug=fast", "trainer.threads=1"]


def test_a_sweep_expands_in_hydras_order():
    assert expand_sweep(["debug=fast", "seed=0,1", "budget.tokens=8192,16384"]) == [
        ["debug=fast", "seed=0", "budget.tokens=8192"], ["debug=fast", "seed=0", "budget.tokens=16384"],
        ["debug=fast", "seed=1", "budget.tokens=8192"], ["debug=fast", "seed=1", "budget.tokens=16384"]]


def test_rerun_commands_merge_jobs_that_differ_in_one_key_only(tmp_path):
    jobs = expand_sweep(["model.size=100k,390k", "seed=0,1,2"])
    states = ["completed", "failed", "missing", "completed", "completed", "failed"]
    status = SweepStatus(tmp_path, [RunState(f"r{i}", s, None, j) for i, (s, j) in enumerate(zip(states, jobs))],
                         ["hydra.launcher.partition=debug"])
    assert status.rerun_commands() == [
        "lmlab-train -m model.size=100k seed=1 hydra.launcher.partition=debug",
        "lmlab-train -m model.size=100k seed=2 hydra.launcher.partition=debug",
        "lmlab-train -m model.size=390k seed=2 hydra.launcher.partition=debug"]
    only_seeds = SweepStatus(tmp_path, [RunState(f"r{i}", "failed", None, j) for i, j in enumerate(jobs[:3])])
    assert only_seeds.rerun_commands() == ["lmlab-train -m model.size=100k seed=0,1,2"]


def sweep_dir(runs_dir):
    [found] = (runs_dir / ".hydra" / "multirun").glob("*/*/multirun.yaml")
    return found.parent


@pytest.mark.slow
def test_status_names_completed_missing_and_killed_runs_and_a_relaunch_finishes_them(tmp_path, data_root, capsys):
    env = {**os.environ, "LMLAB_RUNS_DIR": str(tmp_path / "runs"), "LMLAB_DATA_DIR": str(data_root)}
    # budget.tokens=1 is less than one step: that job fails before it has a run directory.
    sweep = ["-m", *TINY, "run.group=st", "budget.tokens=16384,1"]
    done = subprocess.run([sys.executable, "-m", "lmlab.train", *sweep], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 1, done.stderr[-2000:]  # the sweep ran every job; one failed, so it exits 1
    # A run killed mid-training: status.json still says running, but its process is gone.
    killed = subprocess.Popen([sys.executable, "-m", "lmlab.train", *TINY, "run.group=st", "seed=7",
                               "budget.tokens=65536", "trainer.ckpt_every_steps=5"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "runs" / "st").glob("*-s7-*/checkpoints/last.ckpt")):
        assert time.monotonic() < deadline and killed.poll() is None, "the run never wrote a checkpoint"
        time.sleep(0.2)
    killed.send_signal(signal.SIGKILL)
    killed.wait()

    assert main(["runs", "status", str(sweep_dir(tmp_path / "runs"))]) == 1
    out = capsys.readouterr().out
    assert "2 expected: 1 completed, 0 pruned, 0 stopped_early, 0 running, 0 failed, 1 missing" in out
    assert f"lmlab-train -m {' '.join(TINY)} run.group=st budget.tokens=1" in out

    assert main(["runs", "status", str(tmp_path / "runs" / "st")]) == 1
    out = capsys.readouterr().out
    assert "2 expected: 1 completed, 0 pruned, 0 stopped_early, 0 running, 1 failed, 0 missing" in out
    assert f"process {killed.pid} is gone" in out
    [command] = [line.strip() for line in out.splitlines() if line.strip().startswith("lmlab-train")]
    # The printed command resumes the killed run from its checkpoint and completes it.
    resumed = subprocess.run([sys.executable, "-m", "lmlab.train", *command.split()[1:]], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming" in resumed.stderr + resumed.stdout
    [result] = (tmp_path / "runs" / "st").glob("*-s7-*/result.json")
    assert json.loads(result.read_text())["steps"] == 128
    assert main(["runs", "status", str(tmp_path / "runs" / "st")]) == 0
