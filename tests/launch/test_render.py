"""`lmlab launch render` without a cluster: the script's contents and bad options."""

from __future__ import annotations

import subprocess

import pytest

from lmlab.cli import main


def render(tmp_path, *args) -> str:
    out = tmp_path / "run.sbatch"
    assert main(["launch", "render", *args, "--log-dir", str(tmp_path / "logs"), "--out", str(out)]) == 0
    return out.read_text()


def test_a_multi_node_gpu_script_starts_one_task_per_gpu_and_requeues_on_usr2(tmp_path):
    text = render(tmp_path, "--nodes", "4", "--gpus-per-node", "8", "--partition", "gpu", "--account", "lab",
                  "--time", "2-00:00:00", "--setup", "module load cuda", "model.size=1.1b", "budget.flops=1e21")
    for line in ("#SBATCH --nodes=4", "#SBATCH --ntasks-per-node=8", "#SBATCH --gpus-per-node=8",
                 "#SBATCH --partition=gpu", "#SBATCH --account=lab", "#SBATCH --time=2-00:00:00",
                 "#SBATCH --requeue", "#SBATCH --signal=B:USR2@120", "module load cuda",
                 'scontrol requeue "$SLURM_JOB_ID"', "MASTER_ADDR="):
        assert line in text, line
    [srun] = [line for line in text.splitlines() if line.startswith("srun ")]
    assert "-m lmlab.train model.size=1.1b budget.flops=1e21" in srun
    assert "trainer.accelerator=gpu trainer.devices=8 trainer.nodes=4" in srun
    assert subprocess.run(["bash", "-n", str(tmp_path / "run.sbatch")]).returncode == 0  # valid shell


def test_options_come_from_a_config_file_and_the_command_line_wins(tmp_path):
    config = tmp_path / "launch.yaml"
    config.write_text("nodes: 2\ngpus_per_node: 4\ntime: '01:00:00'\noverrides: [model.size=85m]\n")
    text = render(tmp_path, "--config", str(config), "--nodes", "3")
    assert "#SBATCH --nodes=3" in text and "#SBATCH --gpus-per-node=4" in text and "model.size=85m" in text


@pytest.mark.parametrize("args, message", [
    (["--time", "90"], "time='90': expected [D-]HH:MM:SS"),
    (["--nodes", "0"], "argument --nodes: '0': expected a whole number >= 1"),
    (["--gpus-per-node", "8", "--tasks-per-node", "2"], "one task per GPU"),
    (["trainer.devices=3"], "follow --nodes/--gpus-per-node"),
    (["model.size"], "expected key=value"),
    (["--config-dir", "/nonexistent/planned"], "config_dir=/nonexistent/planned: no such directory"),
    (["model.n_layr=3"], "Key 'n_layr' not in 'ModelConfig'"),
])
def test_bad_options_are_one_clear_error(capsys, args, message):
    assert main(["launch", "render", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_an_unknown_config_key_is_named(tmp_path, capsys):
    config = tmp_path / "launch.yaml"
    config.write_text("nodes: 2\ngpu_per_node: 4\n")
    assert main(["launch", "render", "--config", str(config)]) == 2
    assert "unknown key(s) gpu_per_node" in capsys.readouterr().err
