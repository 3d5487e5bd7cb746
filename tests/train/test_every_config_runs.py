"""Every shipped option of the training groups fast-runs a few real steps on the bundled corpus."""

from __future__ import annotations

import importlib.util
import math

import pytest

from lmlab.errors import ConfigError
from lmlab.io import read_jsonl
from lmlab.train.run import Run
from tests.conftest import CONF, compose

pytestmark = pytest.mark.slow

FEW_STEPS = ["model.size=14k", "budget.tokens=8192"]  # 8 steps of 16 x 64 tokens
BUDGET_VALUES = {"tokens": "budget.tokens=8192", "chinchilla": "budget.chinchilla_multiple=0.02",
                 "flops": "budget.flops=2e10"}


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def cases() -> list[list[str]]:
    out = [[f"model={o}", *FEW_STEPS] for o in options("model")]
    out += [[f"schedule={o}", *FEW_STEPS] for o in options("schedule")]
    out += [[f"budget={o}", "model.size=14k", BUDGET_VALUES[o]] for o in options("budget")]
    out += [[f"logger={o}", *FEW_STEPS] for o in options("logger") if o != "wandb"]
    out += [[f"experiment={o}", *FEW_STEPS] for o in options("experiment")]
    out += [[f"debug={o}", *FEW_STEPS] for o in options("debug")]
    out += [["trainer.precision=bf16-mixed", "model=llama", *FEW_STEPS],
            ["trainer.global_batch_size=16", "trainer.micro_batch_size=4", *FEW_STEPS]]
    return out


@pytest.mark.parametrize("overrides", cases(), ids=lambda o: o[0])
def test_config_fast_runs(train_overrides, overrides):
    run = Run(compose([*train_overrides, *overrides]))
    result = run.execute()
    assert result["status"] == "completed", result["reason"]
    assert math.isfinite(result["final_val_loss"]) and result["steps"] >= 1
    rows = read_jsonl(run.record.metrics_path)
    assert rows[-1]["step"] == result["steps"]


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed: nothing to refuse")
def test_a_logger_whose_package_is_missing_is_one_clear_error(train_overrides):
    with pytest.raises(ConfigError, match=r"logger.name=wandb needs the wandb package: pip install -e '.\[wandb\]'"):
        Run(compose([*train_overrides, "logger=wandb", *FEW_STEPS])).execute()
