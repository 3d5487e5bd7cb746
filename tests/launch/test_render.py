"""`lmlab launch render` without a cluster: the script's contents and bad options."""

from __future__ import annotations

import json
import subprocess

import pytest

from lmlab.cli import main


def render(tmp_path, *args) -> str:
    out = tmp_path / "run.sbatch"
    assert main(["launch", "render", *args, "--log-dir", str(tmp_path / "logs"), "--out", str(out)]) == 0
    return out.read_text()


def test_a_multi_node_gpu_script_starts_one_task_per_gpu_and_requeues_on_usr2(tmp_path):
    text = render(tmp_path, "--nodes", "4", "--gpus-per-node", "8", "--partition", "gpu", "--account", "lab",
                  "--time", "2-00:00:00", "--setup", "module load cuda", "trainer=gpu", "model.size=1.1b",
                  "budget.flops=1e21")
    for line in ("#SBATCH --nodes=4", "#SBATCH --ntasks-per-node=8", "#SBATCH --gpus-per-node=8",
                 "#SBATCH --partition=gpu", "#SBATCH --account=lab", "#SBATCH --time=2-00:00:00",
                 "#SBATCH --requeue", "#SBATCH --signal=B:USR2@120", "module load cuda",
                 'scontrol requeue "$SLURM_JOB_ID"', "MASTER_ADDR="):
        assert line in text, line
    [srun] = [line for line in text.splitlines() if line.startswith("srun ")]
    assert "-m lmlab.train trainer=gpu model.size=1.1b budget.flops=1e21" in srun
    assert "trainer.accelerator=gpu trainer.devices=8 trainer.nodes=4" in srun
    assert subprocess.run(["bash", "-n", str(tmp_path / "run.sbatch")]).returncode == 0  # valid shell


def test_options_come_from_a_config_file_and_the_command_line_wins(tmp_path):
    config = tmp_path / "launch.yaml"
    config.write_text("nodes: 2\ngpus_per_node: 4\ntime: '01:00:00'\n"
                      "overrides: [model.size=85m, trainer.global_batch_size=48]\n")
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
    (["--gpu", "Voodoo 3"], "GPU 'Voodoo 3' is not in lmlab's memory table"),
    (["--nodes", "3", "--gpus-per-node", "4"], "trainer.global_batch_size=16: expected a multiple of the 12 GPUs"),
    (["--nodes", "1", "--gpu", "L4", "trainer=gpu", "model.size=1.6b", "model.seq_len=2048", "trainer.strategy=ddp"],
     "trainer.strategy=ddp with micro_batch_size=32 needs"),
    (["trainer.strategy=zero3"], "trainer.strategy"),
    (["trainer=gpu", "trainer.strategy=ddp", "trainer.micro_batch_size=24"],
     "trainer.global_batch_size=256 must be a multiple of micro_batch_size x devices x nodes = 192"),
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


def _srun_overrides(text: str) -> dict:
    [srun] = [line for line in text.splitlines() if line.startswith("srun ")]
    return dict(a.split("=", 1) for a in srun.split(" lmlab.train ", 1)[1].split() if "=" in a)


def test_a_model_too_big_for_ddp_on_the_named_gpu_is_rendered_with_fsdp_at_the_largest_micro_batch_that_fits(tmp_path):
    from lmlab.launch.memory import GIB, estimate_memory, gpu_memory_bytes
    from lmlab.models.family import DEFAULT_VOCAB_SIZE, get_size

    text = render(tmp_path, "--nodes", "1", "--gpus-per-node", "8", "--gpu", "L4", "trainer=gpu", "model.size=1.6b",
                  "model.seq_len=2048", "trainer.micro_batch_size=32")
    args = _srun_overrides(text)
    assert args["trainer.strategy"] == "fsdp" and args["trainer.activation_checkpointing"] == "false"
    assert text.count("trainer.micro_batch_size=") == 1  # the plan's replaces the user's
    micro = int(args["trainer.micro_batch_size"])
    cfg = get_size("1.6b").config(vocab_size=DEFAULT_VOCAB_SIZE, seq_len=2048)
    budget = 0.9 * gpu_memory_bytes("L4") - GIB
    assert estimate_memory(cfg, 1, world_size=8)["total"] > budget  # DDP cannot fit at all
    assert estimate_memory(cfg, micro, world_size=8, strategy="fsdp")["total"] <= budget
    assert estimate_memory(cfg, 2 * micro, world_size=8, strategy="fsdp")["total"] > budget
    assert "# memory per GPU on L4" in text and "GiB with it" in text
    assert subprocess.run(["bash", "-n", str(tmp_path / "run.sbatch")]).returncode == 0


def test_the_gpu_comes_from_the_cluster_profile_and_a_small_model_gets_ddp(tmp_path, capsys):
    from lmlab.config import compose_train

    profile_gpu = compose_train(["cluster=slurm_gpu"]).trainer.gpu
    text = render(tmp_path, "--nodes", "2", "--gpus-per-node", "4", "trainer=gpu", "model.size=14k")
    assert f"# memory per GPU on {profile_gpu} " in text
    args = _srun_overrides(text)
    assert args["trainer.strategy"] == "ddp" and args["trainer.micro_batch_size"] == str(256 // 8)  # all at once
    capsys.readouterr()
    assert main(["launch", "render", "--gpus-per-node", "0", "--tasks-per-node", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["memory"] is None  # CPU tasks: nothing to size


def test_an_explicit_strategy_that_fits_is_kept_and_the_rendered_run_composes(tmp_path):
    from lightning.pytorch.strategies import FSDPStrategy

    from lmlab.config import compose_train
    from lmlab.models.gpt import GPT, Block
    from lmlab.runspec import plain
    from lmlab.train.strategy import training_strategy

    text = render(tmp_path, "--nodes", "1", "--gpus-per-node", "2", "--gpu", "H100", "trainer=gpu", "model.size=14k",
                  "trainer.strategy=fsdp", "trainer.activation_checkpointing=true", "trainer.micro_batch_size=8")
    args = _srun_overrides(text)
    assert (args["trainer.strategy"], args["trainer.micro_batch_size"]) == ("fsdp", "8")
    cfg = compose_train([f"{k}={v}" for k, v in args.items()])
    strategy = training_strategy(plain(cfg)["trainer"], None)  # what the rendered run trains with on its GPUs
    assert isinstance(strategy, FSDPStrategy) and strategy.sharding_strategy.name == "FULL_SHARD"
    assert strategy.kwargs["auto_wrap_policy"]._module_classes == {Block, GPT}
    assert strategy._activation_checkpointing_kwargs["auto_wrap_policy"]._module_classes == {Block}
