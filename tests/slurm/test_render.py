"""`lmlab launch render` scripts judged by the local cluster's `sbatch --test-only`."""

from __future__ import annotations

import pytest

from lmlab.cli import main

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
    code = main(["launch", "render", *args, "--out", str(tmp_path / "run.sbatch"), "--check"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("lmlab: error: SLURM refuses") and message in err and err.count("\n") == 1
