"""Sweeps through submitit on the local SLURM cluster: submit, preempt, cancel, DDP, relaunch."""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from lmlab.runs.status import sweep_status
from tests.conftest import REPO
from tests.slurm.conftest import preempt_when_training, read_json, trained_steps, wait_for

pytestmark = pytest.mark.slurm


def test_four_job_sweep_completes_and_a_relaunch_skips_every_run(lab):
    overrides = ("run.group=grid", "seed=0,1", "budget.tokens=8192,16384",
                 "hydra.callbacks.lmlab_sweep_progress.every_s=2")
    first = lab.sweep(*overrides)
    assert first.returncode == 0, first.stderr[-3000:]
    assert " jobs: " in first.stdout + first.stderr  # progress lines while the sweep waits
    runs = lab.run_dirs("grid")
    assert len(runs) == 4
    results = [read_json(r / "result.json") for r in runs]
    assert [r["status"] for r in results] == ["completed"] * 4
    assert sorted(r["tokens"] for r in results) == [8192, 8192, 16384, 16384]
    job_ids = {read_json(r / "env.json")["slurm"]["job_id"] for r in runs}
    assert len(job_ids) == 4  # one SLURM job each
    [sweep_dir] = lab.sweep_dirs()
    status = sweep_status(sweep_dir)
    assert [s.state for s in status.runs] == ["completed"] * 4 and not status.rerun_commands()

    stamps = {r: (r / "result.json").stat().st_mtime_ns for r in runs}
    again = lab.sweep(*overrides)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {r: (r / "result.json").stat().st_mtime_ns for r in runs} == stamps
    assert lab.job_logs().count("already completed") == 4


def test_a_preempted_job_resumes_and_ends_with_the_loss_of_an_uninterrupted_run(lab, tmp_path):
    overrides = ("run.group=preempt", "budget.tokens=65536")  # 128 steps of a few ms each
    reference_log = tmp_path / "reference.log"
    reference = subprocess.Popen(  # the same run without SLURM, alongside, in its own runs directory
        lab.command(*overrides, local=True), cwd=REPO,
        env={**lab.env, "LMLAB_RUNS_DIR": str(tmp_path / "reference")},
        stdout=subprocess.DEVNULL, stderr=reference_log.open("w"))
    sweep = lab.start(*overrides)
    high = preempt_when_training(lambda: lab.run_dirs("preempt"))
    [run_dir] = lab.run_dirs("preempt")
    status = wait_for(lambda: (s := read_json(run_dir / "status.json"))["status"] == "preempted" and s, 60,
                      "the run to checkpoint and mark itself preempted")
    assert status["reason"] == "SIGUSR2"
    out, err = sweep.communicate(timeout=240)
    assert sweep.returncode == 0, err[-3000:]
    assert reference.wait(timeout=240) == 0, reference_log.read_text()[-3000:]

    result = read_json(run_dir / "result.json")
    [expected] = [read_json(p) for p in (tmp_path / "reference" / "preempt").glob("*/result.json")]
    assert result["status"] == "completed" and result["steps"] == expected["steps"] == 128
    assert result["final_val_loss"] == pytest.approx(expected["final_val_loss"], abs=1e-6)
    assert read_json(run_dir / "env.json")["slurm"]["restart_count"] == "1"
    assert "resuming" in lab.job_logs()
    subprocess.run(["scancel", high], check=False)


def test_a_cancelled_job_is_reported_failed_and_the_sweep_returns(lab):
    sweep = lab.start("run.group=cancel", "budget.tokens=50000000")
    run_dir = wait_for(lambda: next(iter(lab.run_dirs("cancel")), None), 120, "the run directory")
    wait_for(lambda: trained_steps(run_dir) >= 1, 120, "the first optimizer step")
    job = read_json(run_dir / "env.json")["slurm"]["job_id"]
    subprocess.run(["scancel", job], check=True)
    out, err = sweep.communicate(timeout=120)  # never a hang: submitit learns the state from sacct
    assert sweep.returncode == 1 and "Traceback" not in out + err  # a summary, not submitit's traceback
    assert "CANCELLED" in out + err and "sweep done:" in out + err
    [sweep_dir] = lab.sweep_dirs()
    [state] = sweep_status(sweep_dir).runs
    assert state.state == "failed" and "CANCELLED" in state.reason
    assert sweep_status(sweep_dir).rerun_commands() == [
        "lmlab-train -m cluster=slurm debug=fast trainer.threads=1 run.group=cancel budget.tokens=50000000 "
        "hydra.launcher.cpus_per_task=1 hydra.launcher.mem_gb=1 hydra.launcher.timeout_min=10"]


def test_a_two_task_ddp_job_under_srun_checkpoints_on_both_ranks_when_preempted(lab):
    sweep = lab.start("run.group=ddp", "trainer.devices=2", "trainer.global_batch_size=8",
                      "trainer.micro_batch_size=4", "budget.tokens=65536")
    high = preempt_when_training(lambda: lab.run_dirs("ddp"))
    out, err = sweep.communicate(timeout=240)
    assert sweep.returncode == 0, err[-3000:]
    [run_dir] = lab.run_dirs("ddp")
    result = read_json(run_dir / "result.json")
    assert result["status"] == "completed" and result["steps"] == 128
    assert read_json(run_dir / "env.json")["slurm"]["ntasks"] == "2"
    logs = lab.job_logs()
    assert "MEMBER: 1/2" in logs and "MEMBER: 2/2" in logs  # Lightning saw both ranks from SLURM
    saved_at = re.findall(r"SIGUSR2 received: checkpointing at step (\d+)", logs)
    assert len(saved_at) == 2 and saved_at[0] == saved_at[1]  # both ranks, at the same step
    assert f"resuming {run_dir} from step {saved_at[0]}" in logs
    subprocess.run(["scancel", high], check=False)


@pytest.mark.parametrize("override, message", [
    ("hydra.launcher.partition=nosuch", "invalid partition specified: nosuch"),
    ("hydra.launcher.cpus_per_task=4096", "Requested node configuration is not available"),
    ("hydra.launcher.gpus_per_node=1", "Invalid generic resource (gres) specification"),
    ("hydra.launcher.timeout_min=???", "hydra.launcher.timeout_min is not set"),
    ("hydra.launcher.tasks_per_node=3", "tasks_per_node=3 but trainer.devices=1"),
])
def test_a_bad_request_fails_with_one_line_before_any_job_is_submitted(lab, override, message):
    since = time.strftime("%Y-%m-%dT%H:%M:%S")
    bad = lab.sweep("run.group=bad", override, timeout=120)
    assert bad.returncode == 2
    lines = [line for line in bad.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("lmlab-train: error: ") and message in lines[0], bad.stderr
    assert not list(lab.runs_dir.glob(".hydra/multirun/*/*/.submitit"))
    listed = subprocess.run(["sacct", "-a", "-X", "-n", "-P", "-o", "JobName,Submit", "-S", since],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    submitted = [line.split("|")[0] for line in listed if line.split("|")[1] >= since]  # ISO times sort
    assert "__main__" not in submitted  # the sweep's job name (hydra.job.name)
