"""`lmlab launch render` scripts judged by the local cluster's `sbatch --test-only`."""

from __future__ import annotations

import subprocess

import pytest

from lmlab.cli import main
from tests.conftest import REPO
from tests.slurm.conftest import TINY, preempt_when_training, read_json, wait_for

pytestmark = pytest.mark.slurm


def test_a_rendered_two_task_script_passes_test_only(tmp_path, capsys):
    script = tmp_path / "run.sbatch"
    code = main(["launch", "render", "--nodes", "1", "--gpus-per-node", "0", "--tasks-per-node", "2",
                 "--cpus-per-task", "1", "--time", "00:30:00", "--log-dir", str(tmp_path / "logs"),
                 "--out", str(script), "--check", "debug=fast"])
    out = capsys.readouterr().out
    assert code == 0
    assert "to start at" in out and "using 2 processors on nodes localhost" in out
    text = script.read_text()
    assert "#SBATCH --ntasks-per-node=2" in text and "trainer.devices=2" in text
    assert (tmp_path / "logs").is_dir()


@pytest.mark.parametrize("args, message", [
    (["--nodes", "4", "--gpus-per-node", "0", "--tasks-per-node", "1", "--cpus-per-task", "1"],
     "Requested node configuration is not available"),
    (["--nodes", "1", "--gpus-per-node", "8"], "Invalid generic resource (gres) specification"),
    (["--nodes", "1", "--gpus-per-node", "0", "--partition", "nosuch"], "invalid partition specified: nosuch"),
])
def test_a_script_slurm_cannot_run_is_refused_with_slurms_message(tmp_path, capsys, args, message):
    code = main(["launch", "render", *args, "--out", str(tmp_path / "run.sbatch"), "--log-dir", str(tmp_path / "logs"),
                 "--check"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("lmlab launch render: error: SLURM refuses") and message in err and err.count("\n") == 1


def test_a_rendered_job_preempted_mid_run_requeues_itself_and_resumes(lab, tmp_path):
    """USR2 reaches the batch script, is forwarded to the task, and the script requeues the job."""
    overrides = ["budget.tokens=65536", "run.group=rendered"]
    reference = subprocess.Popen(lab.command(*overrides, local=True), cwd=REPO,
                                 env={**lab.env, "LMLAB_RUNS_DIR": str(tmp_path / "reference")},
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    script = tmp_path / "run.sbatch"
    assert main(["launch", "render", "--nodes", "1", "--gpus-per-node", "0", "--tasks-per-node", "1",
                 "--cpus-per-task", "1", "--time", "00:10:00", "--log-dir", str(tmp_path / "logs"),
                 "--out", str(script), *TINY, *overrides]) == 0
    job = subprocess.run(["sbatch", "--parsable", str(script)], cwd=REPO, env=lab.env, capture_output=True,
                         text=True, check=True).stdout.strip()
    try:
        preempt_when_training(lambda: lab.run_dirs("rendered"))
        [run_dir] = lab.run_dirs("rendered")
        result = wait_for(lambda: (run_dir / "result.json").exists() and read_json(run_dir / "result.json"), 240,
                          "the requeued job to finish the run", every=1)
    finally:
        subprocess.run(["scancel", job], check=False)
    assert reference.wait(timeout=240) == 0
    [expected] = [read_json(p) for p in (tmp_path / "reference" / "rendered").glob("*/result.json")]
    assert result["status"] == "completed" and result["steps"] == expected["steps"] == 128
    assert result["final_val_loss"] == pytest.approx(expected["final_val_loss"], abs=1e-6)
    log = "\n".join(p.read_text() for p in (tmp_path / "logs").glob("*.out"))
    assert "lmlab: USR2: checkpointing, then requeue" in log and "restart 1 on localhost" in log
    assert "resuming" in log
