"""Several budgets from one WSD run: a constant-lr trunk and a cooldown branch per budget."""

from __future__ import annotations

import json

import lightning as L
import pytest

from lmlab.io import read_jsonl
from tests.conftest import compose, run_cli

STEPS = 80  # the full budget; branches=[0.5] adds a 40-step budget
SEQ, BATCH = 32, 8
TOKENS_PER_STEP = SEQ * BATCH
TINY = ["model.size=14k", f"model.seq_len={SEQ}", f"trainer.global_batch_size={BATCH}", f"trainer.micro_batch_size={BATCH}",
        "trainer.val_tokens=2048", "trainer.val_milestones=2", "trainer.ckpt_every_steps=5", "trainer.threads=1",
        "trainer.progress_bar=false", "logger=none", "budget=tokens", "schedule=wsd", "schedule.warmup_frac=0.05",
        "schedule.decay_frac=0.2"]
BRANCHED = [*TINY, f"budget.tokens={STEPS * TOKENS_PER_STEP}", "budget.branches=[0.5]"]


def launch(data_root, runs_dir, overrides):
    from lmlab.train.run import Run

    run = Run(compose([f"paths.data_dir={data_root}", f"paths.runs_dir={runs_dir}", *overrides]))
    return run, run.execute()


def members_by_fraction(runs_dir) -> dict[float, dict]:
    from lmlab.runs.record import RunRecord, find_runs

    results = [RunRecord(d).result() for d in find_runs(runs_dir)]
    return {r["branch_fraction"]: r for r in results if r is not None}


@pytest.fixture(scope="module")
def uninterrupted(data_root, tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("branched") / "runs"
    launch(data_root, runs_dir, BRANCHED)
    return runs_dir


@pytest.mark.slow
def test_every_budget_is_a_completed_run_with_honest_compute(uninterrupted):
    from lmlab.runs.collect import collect
    from lmlab.runs.record import RunRecord
    from lmlab.runs.status import rerun_overrides

    found = members_by_fraction(uninterrupted)
    assert sorted(found) == [0.5, 1.0]  # the trunk is out of sight of collect
    trunk_dir = next((uninterrupted / "default" / ".trunks").iterdir())
    trunk = RunRecord(trunk_dir).result()
    assert trunk["status"] == "completed" and trunk["role"] == "trunk"
    assert trunk["steps"] == STEPS - round(0.2 * STEPS)  # up to where the full budget's cooldown begins
    for f, result in found.items():
        steps = round(f * STEPS)
        start = steps - round(0.2 * steps)
        assert result["status"] == "completed" and result["tokens"] == steps * TOKENS_PER_STEP
        assert result["branch_of"] == trunk["run_id"] == trunk_dir.name
        assert result["branched_at_step"] == start
        assert result["trained_tokens"] == (steps - start) * TOKENS_PER_STEP  # the cooldown only
        assert result["trunk_tokens"] == trunk["tokens"]
        curve = read_jsonl(uninterrupted / "default" / result["run_id"] / "metrics.jsonl")
        assert {r["step"] for r in curve if r.get("from_trunk")} and max(r["step"] for r in curve) == steps
        lrs = [r["lr"] for r in curve if "lr" in r and not r.get("from_trunk")]
        assert lrs == sorted(lrs, reverse=True) and lrs[-1] == pytest.approx(3e-3 * 0.1)  # decayed to min_lr_ratio
    half = uninterrupted / "default" / found[0.5]["run_id"]
    assert "budget.branch=0.5" in rerun_overrides(half)  # relaunch (lmlab runs status) lands in the same directory
    runs, _ = collect([uninterrupted])
    assert sorted(runs["tokens"]) == sorted(r["tokens"] for r in found.values())
    assert set(runs["status"]) == {"completed"}


@pytest.mark.slow
def test_branch_agrees_with_an_independent_wsd_run(uninterrupted, data_root, tmp_path):
    branch = members_by_fraction(uninterrupted)[0.5]
    # the same budget and cooldown fraction, warming up over the trunk's steps (5% of the full budget)
    _, alone = launch(data_root, tmp_path / "runs", [*TINY, f"budget.tokens={STEPS // 2 * TOKENS_PER_STEP}",
                                                     f"schedule.warmup_frac={round(0.05 * STEPS) / (STEPS // 2)}"])
    assert alone["tokens"] == branch["tokens"] and alone["run_id"] != branch["run_id"]
    assert branch["final_val_loss"] == pytest.approx(alone["final_val_loss"], rel=0.01)
    assert branch["trained_tokens"] < alone["tokens"] / 4


class Crash(L.Callback):
    """Stops one member of the launch at a step, as a killed process would (fault injection)."""

    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            raise RuntimeError(f"crash at step {self.step}")


@pytest.mark.slow
def test_a_killed_trunk_and_branch_resume_to_the_uninterrupted_losses(uninterrupted, data_root, tmp_path, monkeypatch):
    from lmlab.train import run as run_module

    real = run_module.Run._branch_callbacks
    crash_at: dict = {}

    def with_crash(self):
        callbacks = real(self)
        if self.spec.member.fraction in crash_at:
            callbacks.append(Crash(crash_at.pop(self.spec.member.fraction)))
        return callbacks

    monkeypatch.setattr(run_module.Run, "_branch_callbacks", with_crash)
    runs_dir = tmp_path / "runs"
    crash_at[None] = 27  # the trunk, between checkpoints
    with pytest.raises(RuntimeError, match="crash at step 27"):
        launch(data_root, runs_dir, BRANCHED)
    crash_at[0.5] = 37  # the 40-step branch (it leaves the trunk at 32, checkpoints at 35)
    with pytest.raises(RuntimeError, match="crash at step 37"):
        launch(data_root, runs_dir, BRANCHED)
    waiting = members_by_fraction(runs_dir)
    assert waiting[0.5]["status"] == "failed" and 1.0 not in waiting  # the full budget has not begun
    _, result = launch(data_root, runs_dir, [*BRANCHED, "budget.branch=0.5"])  # a branch's own config relaunches
    assert result["branch_fraction"] == 0.5
    done, ref = members_by_fraction(runs_dir), members_by_fraction(uninterrupted)
    for f in (0.5, 1.0):
        assert done[f]["run_id"] == ref[f]["run_id"]
        assert done[f]["final_val_loss"] == pytest.approx(ref[f]["final_val_loss"], rel=1e-4)
    steps = [r["step"] for r in read_jsonl(runs_dir / "default" / done[0.5]["run_id"] / "metrics.jsonl")
             if "train_loss" in r]
    assert steps == sorted(set(steps))  # no step twice in the resumed curve


@pytest.mark.slow
@pytest.mark.parametrize("bad, named", [(["schedule=cosine", "budget.branches=[0.5]"], "schedule=wsd"),
                                        (["schedule=wsd", "budget.branches=[0.5,1.5]"], "1.5")])
def test_bad_branches_are_one_line(data_root, tmp_path, bad, named):
    out = run_cli(["-m", "lmlab.train", f"paths.data_dir={data_root}", f"paths.runs_dir={tmp_path}", *TINY[:-3],
                   "budget.tokens=30720", *bad])
    assert out.returncode == 2 and "budget.branches" in out.stderr and named in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "default").exists()


def test_ordinary_run_ids_do_not_change_with_the_branch_keys(tmp_path):
    from lmlab.runs.record import config_hash
    from lmlab.runspec import plain, resolve_run

    cfg = plain(compose([f"paths.runs_dir={tmp_path}", *TINY, "budget.tokens=30720"]))
    without = json.loads(json.dumps(cfg))
    del without["budget"]["branches"], without["budget"]["branch"]
    assert resolve_run(cfg, 4096).run_id.endswith(config_hash(without)[:8])
