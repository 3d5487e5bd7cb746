"""Training's overfitting controls, wired through lmlab-train: early stopping on validation loss, an L1
penalty, task evaluation at the validation milestones, epochs and the gap flag in the result."""

from __future__ import annotations

import json

import pytest

from lmlab.io import read_jsonl
from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def test_early_stopping_in_loop_tasks_and_the_learning_curve(train_overrides, data_root, tmp_path):
    # min_delta larger than any improvement: the second validation already counts as no progress
    proc = run_cli(["-m", "lmlab.train", *train_overrides, "model.size=14k", "budget.tokens=40960",
                    "trainer.val_milestones=6", "trainer.early_stopping_patience=1",
                    "trainer.early_stopping_min_delta=10", "optim.l1=1e-5", "eval.tasks=[cloze]",
                    "eval.n_examples=16"], timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [run_dir] = (tmp_path / "runs" / "default").iterdir()
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "stopped_early" and "early stopping" in result["reason"]
    assert result["steps"] < result["planned_steps"]
    train_tokens = json.loads((data_root / "sotu" / "manifest.json").read_text())["splits"]["train"]["tokens"]
    assert result["epochs"] == pytest.approx(result["tokens"] / train_tokens)
    assert isinstance(result["gap_growing"], bool)
    assert (run_dir / "learning_curve.png").stat().st_size > 0
    curve = read_jsonl(run_dir / "eval_curve.jsonl")
    val_steps = [r["step"] for r in read_jsonl(run_dir / "metrics.jsonl") if "val_loss" in r]
    assert curve and {r["step"] for r in curve} <= set(val_steps)
    status = run_cli(["-m", "lmlab.cli", "runs", "status", str(run_dir.parent)])
    assert status.returncode == 0 and "stopped_early" in status.stdout  # ended on purpose: nothing to rerun


def test_bad_overfitting_settings_are_one_line(train_overrides):
    proc = run_cli(["-m", "lmlab.train", *train_overrides, "optim.l1=-1"])
    assert proc.returncode == 2 and proc.stderr.strip() == "lmlab-train: error: optim.l1=-1.0: expected a non-negative number (0: no L1 penalty)"
