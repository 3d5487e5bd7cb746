"""End to end on the bundled corpus: a real model trains, records itself, skips, resumes exactly."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from lmlab.data.shards import open_split
from lmlab.io import read_jsonl
from lmlab.train.run import Run
from tests.conftest import REPO, compose, run_cli

pytestmark = pytest.mark.slow

BUDGET = ["budget.tokens=200000"]  # 195 steps of 16 x 64 tokens


def unigram_entropy(tokens: np.ndarray) -> float:
    counts = np.bincount(tokens.astype(np.int64))
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


@pytest.fixture
def trained(train_overrides):
    cfg = compose([*train_overrides, *BUDGET])
    run = Run(cfg)
    return run, run.execute()


def test_training_beats_the_unigram_entropy_and_records_everything(trained, data_root):
    run, result = trained
    val = np.concatenate(open_split(data_root / "sotu", "validation"))
    assert result["status"] == "completed" and result["reason"] is None
    assert result["final_val_loss"] < unigram_entropy(val) - 0.5
    assert result["steps"] == 195 and result["tokens"] == 195 * 16 * 64
    assert result["flops_exact"] == result["tokens"] * result["flops_per_token_exact"]
    tensors = torch.load(run.record.checkpoint, weights_only=False)["state_dict"].values()
    unique = {t.untyped_storage().data_ptr(): t.numel() for t in tensors}  # a tied matrix counts once
    model_params = sum(unique.values())
    assert result["n_params"] == model_params

    rows = read_jsonl(run.record.metrics_path)
    train_rows = [r for r in rows if "train_loss" in r]
    val_rows = [r for r in rows if "val_loss" in r]
    assert [r["step"] for r in train_rows][:3] == [10, 20, 30] and train_rows[-1]["step"] == 195
    for key in ("tokens", "flops_6n", "lr", "grad_norm", "tokens_per_s", "mfu", "elapsed_s", "data_wait_frac"):
        assert all(np.isfinite(r[key]) for r in train_rows), key
    val_steps = [r["step"] for r in val_rows]
    assert val_steps == sorted(set(val_steps)) and len(val_steps) >= 6 and val_steps[-1] == 195
    gaps = np.diff(np.log(val_steps[:-1]))
    assert gaps.max() / gaps.min() < 3, "validations are roughly log-spaced"
    assert val_rows[-1]["val_loss"] == result["final_val_loss"]
    assert val_rows[0]["val_loss"] > val_rows[-1]["val_loss"] + 1

    plan = json.loads((run.record.dir / "plan.json").read_text())
    assert {k: plan[k] for k in ("n_params", "n_params_nonembedding", "flops_per_token_exact")} == \
        {k: result[k] for k in ("n_params", "n_params_nonembedding", "flops_per_token_exact")}
    assert (plan["planned_steps"], plan["planned_tokens"]) == (195, result["tokens"])

    with open(run.record.dir / "config.yaml") as f:
        assert yaml.safe_load(f) == run.cfg
    env = json.loads((run.record.dir / "env.json").read_text())
    assert env["versions"]["torch"] == torch.__version__.split("+")[0] or env["versions"]["torch"] == torch.__version__
    assert len(env["git_commit"] or "") == 40
    assert json.loads((run.record.dir / "status.json").read_text())["status"] == "completed"


def test_relaunching_a_completed_run_skips_it(trained, train_overrides):
    run, result = trained
    before = run.record.metrics_path.read_bytes()
    started = time.perf_counter()
    again = Run(compose([*train_overrides, *BUDGET]))
    assert again.record.dir == run.record.dir
    assert again.execute() == result
    assert run.record.metrics_path.read_bytes() == before
    assert time.perf_counter() - started < 20


def train_cli(overrides: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lmlab.train", *overrides], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_killed_run_resumes_to_the_same_final_loss(train_overrides, tmp_path):
    overrides = [*train_overrides, *BUDGET, "trainer.ckpt_every_steps=10"]
    reference = Run(compose(overrides)).execute()

    killed_runs = tmp_path / "killed"
    killed = [o for o in overrides if not o.startswith("paths.runs_dir=")] + [f"paths.runs_dir={killed_runs}"]
    proc = train_cli(killed)
    status = None
    deadline = time.time() + 300
    while time.time() < deadline:
        found = list(killed_runs.glob("*/*/status.json"))
        status = json.loads(found[0].read_text()) if found else None
        if status and status.get("step", 0) >= 60:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    run_dir = found[0].parent
    assert not (run_dir / "result.json").exists(), "the run must be killed before it finishes"
    assert 60 <= status["step"] < 195

    resumed = train_cli(killed)
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out
    result = json.loads((run_dir / "result.json").read_text())
    resumed_from = int(re.search(rf"resuming {re.escape(str(run_dir))} from step (\d+)", out).group(1))
    assert resumed_from >= status["step"]
    assert abs(result["final_val_loss"] - reference["final_val_loss"]) < 1e-6
    steps = [r["step"] for r in read_jsonl(run_dir / "metrics.jsonl") if "train_loss" in r]
    assert steps == sorted(set(steps)), "no step is recorded twice after the resume"


def test_a_diverging_run_fails_with_the_reason_and_keeps_a_good_checkpoint(train_overrides):
    cfg = compose([*train_overrides, *BUDGET, "optim.lr=1e4", "optim.grad_clip=0", "schedule=constant",
                   "schedule.warmup_frac=0", "trainer.ckpt_every_steps=1"])
    run = Run(cfg)
    result = run.execute()
    assert result["status"] == "failed"
    assert result["reason"].startswith(f"parameters became NaN or infinite by step {result['steps']}")
    state = torch.load(run.record.checkpoint, weights_only=False)
    assert 1 <= state["global_step"] < result["steps"]
    assert all(torch.isfinite(t).all() for t in state["state_dict"].values())
    assert json.loads((run.record.dir / "status.json").read_text())["status"] == "failed"
    assert result["final_val_loss"] is None


def test_hydra_habits_cfg_job_and_multirun(train_overrides, tmp_path):
    shown = run_cli(["-m", "lmlab.train", *train_overrides, "model.size=14k", "--cfg", "job"])
    assert shown.returncode == 0 and yaml.safe_load(shown.stdout)["model"]["size"] == "14k"

    sweep = run_cli(["-m", "lmlab.train", "-m", *train_overrides, "budget.tokens=8192", "seed=0,1",
                     "model.size=14k,25k"])
    assert sweep.returncode == 0, sweep.stdout[-3000:] + sweep.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("default/*/result.json")]
    assert sorted((r["model"], r["seed"]) for r in results) == [("14k", 0), ("14k", 1), ("25k", 0), ("25k", 1)]
    assert all(r["status"] == "completed" for r in results)
    # the sweep ends with a table of its runs, and no framework banner was printed on the way
    output = sweep.stdout + sweep.stderr
    assert "sweep done:" in output and "4 expected: 4 completed, 0 pruned" in output
    assert all(f"{r['run_id']}  completed" in output for r in results)
    assert not any(banner in output for banner in ("GPU available", "TPU available", "max_steps=", "Tip:"))


@pytest.mark.parametrize("bar", [True, False])
def test_progress_is_a_bar_on_a_terminal_and_log_lines_elsewhere(train_overrides, bar):
    proc = run_cli(["-m", "lmlab.train", *train_overrides, "model.size=14k", "budget.tokens=20480",
                    f"trainer.progress_bar={str(bar).lower()}"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    output = proc.stdout + proc.stderr
    bar_shown = re.search(r"Epoch 0: .*loss=[\d.]+.*tok/s=[\d.]+", output) is not None
    lines_shown = re.search(r"step 10/20  tokens 0.0102M  loss [\d.]+  lr [\d.e+-]+  \d+ tok/s", output) is not None
    assert (bar_shown, lines_shown) == (bar, not bar)


def test_ctrl_c_marks_the_run_interrupted_and_a_relaunch_finishes_it(train_overrides, tmp_path):
    overrides = [*train_overrides, *BUDGET, "trainer.ckpt_every_steps=10"]
    proc = train_cli(overrides)
    deadline, status = time.time() + 300, None
    while time.time() < deadline and not (status and status.get("step", 0) >= 20):
        found = list((tmp_path / "runs").glob("*/*/status.json"))
        status = json.loads(found[0].read_text()) if found else None
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    run_dir = found[0].parent
    assert proc.returncode != 0 and not (run_dir / "result.json").exists(), out[-2000:]
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "interrupted" and "relaunch to resume" in status["reason"]
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] >= 20

    shown = run_cli(["-m", "lmlab.cli", "runs", "status", str(run_dir.parent)])
    assert "1 failed" in shown.stdout and "relaunch to resume" in shown.stdout, shown.stdout
    again = train_cli(overrides)
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0, out[-2000:]
    assert json.loads((run_dir / "result.json").read_text())["status"] == "completed"
