"""Session fixtures: tiny runs trained once on the prepared corpus (a brief one, a longer one with
in-loop evaluation), shared by the slow evaluation tests."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.conftest import compose

TINY = ["model.size=100k", "model.seq_len=64", "trainer.global_batch_size=16", "trainer.micro_batch_size=16",
        "trainer.val_tokens=4096", "trainer.ckpt_every_steps=1000", "trainer.log_every_steps=10",
        "trainer.progress_bar=false", "trainer.threads=1", "logger=none"]
BRIEF_TOKENS = 5 * 16 * 64
LONG_TOKENS = 1000 * 16 * 64
IN_LOOP = {"tasks": ["cloze"], "n_examples": 60, "batch_size": 64}


def train(data_root: Path, runs_dir: Path, tokens: int, extra_callbacks=lambda run, callbacks: [], group="eval"):
    """A completed tiny run; extra_callbacks(run, callbacks) adds callbacks to the run's trainer (the
    way run.py would once it wires them)."""
    from lmlab.train.run import Run

    torch.set_num_threads(1)
    run = Run(compose([f"paths.data_dir={data_root}", f"paths.runs_dir={runs_dir}", f"run.group={group}",
                       f"budget.tokens={tokens}", *TINY]))
    make_trainer = run.trainer
    run.trainer = lambda callbacks, *rest: make_trainer([*callbacks, *extra_callbacks(run, callbacks)], *rest)
    result = run.execute()
    assert result["status"] == "completed", result["reason"]
    return run


def pytest_collection_modifyitems(items):
    """The tests that need the long run share one xdist worker (`make test`), so it is trained once."""
    for item in items:
        if "eval_runs" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("eval_long_run"), append=False)


@pytest.fixture(scope="session")
def brief_run(data_root, tmp_path_factory) -> SimpleNamespace:
    """A 5-step run (seconds): enough for fine-tuning mechanics and bad input, without the long run."""
    run = train(data_root, tmp_path_factory.mktemp("brief_run"), BRIEF_TOKENS)
    return SimpleNamespace(dir=run.record.dir, data_dir=run.data_dir)


@pytest.fixture(scope="session")
def eval_runs(brief_run, data_root, tmp_path_factory):
    """brief: 5 steps (brief_run); long: 1000 steps (validation loss about 4.9, where a 2-layer model
    starts to use its context), with the cloze task scored at every validation milestone."""
    from lmlab.eval.callback import InLoopEval
    from lmlab.train.run import val_milestones

    runs_dir = brief_run.dir.parent.parent  # <runs dir>/<group>/<run id>: collect finds both runs

    def in_loop(run, callbacks):
        steps = val_milestones(run.plan.steps, run.cfg["trainer"]["val_milestones"])
        return [InLoopEval(run.record.dir, run.data_dir, IN_LOOP, steps, run.plan.tokens_per_step)]

    long = train(data_root, runs_dir, LONG_TOKENS, in_loop)
    return SimpleNamespace(brief=brief_run.dir, long=long.record.dir, data_dir=long.data_dir, runs_dir=runs_dir)
