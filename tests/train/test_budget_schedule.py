"""Budgets turn into step counts; schedules have the shapes their names promise."""

from __future__ import annotations

import math

import pytest

from lmlab.errors import ConfigError
from lmlab.budget import plan_budget
from lmlab.train.schedules import lr_lambda

NONE = {"tokens": None, "chinchilla_multiple": None, "flops": None}


def test_token_budget_rounds_down_to_whole_steps():
    plan = plan_budget({**NONE, "tokens": 10_000}, n_params=1000, flops_per_token=6000, tokens_per_step=2048)
    assert (plan.steps, plan.tokens) == (4, 8192)


def test_chinchilla_multiple_is_twenty_tokens_per_parameter():
    plan = plan_budget({**NONE, "chinchilla_multiple": 2.0}, n_params=100_000, flops_per_token=6e5,
                       tokens_per_step=1000)
    assert plan.steps == 2 * 20 * 100_000 // 1000


def test_flop_budget_divides_by_flops_per_token():
    plan = plan_budget({**NONE, "flops": 6e12}, n_params=1, flops_per_token=6e6, tokens_per_step=1000)
    assert plan.tokens == 1_000_000 and plan.steps == 1000


def test_budget_below_one_step_is_refused_with_the_numbers():
    with pytest.raises(ConfigError, match=r"budget.tokens=100 .*fewer than one optimizer step \(2,048 tokens"):
        plan_budget({**NONE, "tokens": 100}, n_params=1, flops_per_token=6, tokens_per_step=2048)


@pytest.mark.parametrize("budget", [NONE, {**NONE, "tokens": 1e6, "flops": 1e15}])
def test_exactly_one_budget_key(budget):
    with pytest.raises(ConfigError, match="exactly one"):
        plan_budget(budget, n_params=1, flops_per_token=6, tokens_per_step=1)


def test_cosine_warms_up_linearly_then_decays_to_the_floor():
    f = lr_lambda("cosine", total_steps=100, warmup_frac=0.1, min_ratio=0.1, decay_frac=0)
    assert [f(s) for s in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    assert f(9) == 1.0
    assert f(100) == pytest.approx(0.1)
    values = [f(s) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_wsd_holds_then_decays_linearly_over_the_last_fraction():
    f = lr_lambda("wsd", total_steps=100, warmup_frac=0.05, min_ratio=0.0, decay_frac=0.2)
    assert all(f(s) == 1.0 for s in range(5, 80))
    assert f(89) == pytest.approx(0.5)
    assert f(99) == pytest.approx(0.0)


def test_constant_after_warmup():
    f = lr_lambda("constant", total_steps=50, warmup_frac=0.1, min_ratio=0.1, decay_frac=0)
    assert f(0) == pytest.approx(0.2) and all(f(s) == 1.0 for s in range(5, 50))
    assert not math.isnan(f(1000))
