"""trainer.strategy and trainer.activation_checkpointing: what the Trainer gets, and that recomputing
the blocks' activations changes memory, not the numbers."""

from __future__ import annotations

import pytest

from lmlab.errors import ConfigError
from lmlab.io import read_jsonl
from lmlab.runs.load import load_state
from lmlab.train.run import Run
from tests.conftest import compose, run_cli

TINY = ["model.size=14k", "model.seq_len=32", "trainer.global_batch_size=8", "trainer.micro_batch_size=4",
        "budget.tokens=3072", "trainer.val_tokens=1024", "trainer.log_every_steps=1", "logger=none"]


@pytest.mark.slow
def test_activation_checkpointing_gives_the_same_training_and_a_plain_checkpoint(train_overrides, tmp_path):
    losses = {}
    for ckpt in (False, True):
        run = Run(compose([*train_overrides, *TINY, f"trainer.activation_checkpointing={str(ckpt).lower()}",
                           f"paths.runs_dir={tmp_path / str(ckpt)}"]))
        result = run.execute()
        assert result["status"] == "completed" and result["steps"] == 12
        losses[ckpt] = [r["train_loss"] for r in read_jsonl(run.record.metrics_path) if "train_loss" in r]
        keys = load_state(run.record.checkpoint)["state_dict"]
        assert not [k for k in keys if "checkpoint_wrapped" in k]  # loads into a plain GPT (lmlab compress, audit)
        ids = run.id
    assert losses[True] == pytest.approx(losses[False], abs=1e-5) and len(losses[True]) == 12
    assert ids == run.id  # how devices share the work is not part of a run's identity


@pytest.mark.slow
def test_fsdp_on_a_cpu_run_is_one_line_and_writes_nothing(train_overrides, tmp_path):
    proc = run_cli(["-m", "lmlab.train", *train_overrides, *TINY, "trainer.strategy=fsdp", "data.verify_checksums=false",
                    f"paths.runs_dir={tmp_path / 'runs'}"], timeout=300)
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert len(errors) == 1 and "trainer.strategy=fsdp with trainer.accelerator=cpu: Lightning's FSDP needs CUDA " \
                                 "GPUs" in errors[0], proc.stderr[-2000:]
    assert not list((tmp_path / "runs").glob("*/*/config.yaml"))


def test_an_unknown_strategy_fails_at_composition_naming_the_key():
    with pytest.raises(ConfigError, match="trainer.strategy.*zero3"):
        compose(["trainer.strategy=zero3"])
