"""Budgets in tokens, Chinchilla multiples or FLOPs; the optimizer step count follows."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lmlab.errors import ConfigError

CHINCHILLA_TOKENS_PER_PARAM = 20
BUDGET_KEYS = ("tokens", "chinchilla_multiple", "flops")  # exactly one is set; branches/branch qualify it


@dataclass(frozen=True)
class BudgetPlan:
    tokens: int  # tokens actually trained: steps * tokens_per_step
    steps: int
    tokens_per_step: int
    tag: str  # short label for run ids, e.g. "t1M", "cx1", "f1e15"


def _tag_tokens(tokens: float) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if tokens >= scale:
            return f"t{tokens / scale:.3g}{unit}"
    return f"t{int(tokens)}"


def the_budget(budget: dict) -> tuple[str, float]:
    """(key, value) of the config's budget group, where exactly one of its keys must be set."""
    given = {k: budget.get(k) for k in BUDGET_KEYS if budget.get(k) is not None}
    if len(given) != 1:
        raise ConfigError(
            f"budget: set exactly one of budget.tokens, budget.chinchilla_multiple, budget.flops (got {given or 'none'})")
    (key, value), = given.items()
    if not value > 0:
        raise ConfigError(f"budget.{key}={value}: expected a positive number")
    return key, value


def budget_tag(budget: dict) -> str:
    """The budget's short label in run ids: "t1M" (tokens), "cx2" (Chinchilla multiple), "f1e15" (FLOPs);
    a cooldown branch's (budget.branch = f) is the label of f x the budget."""
    key, value = the_budget(budget)
    value *= budget.get("branch") or 1.0
    if key == "tokens":
        return _tag_tokens(value)
    if key == "chinchilla_multiple":
        return f"cx{value:g}"
    return f"f{value:.0e}".replace("+", "")


def plan_budget(budget: dict, n_params: int, flops_per_token: float, tokens_per_step: int) -> BudgetPlan:
    """budget: the config's budget group, exactly one of tokens / chinchilla_multiple / flops set."""
    key, value = the_budget(budget)
    tag = budget_tag(budget)
    if key == "tokens":
        if value != int(value):
            raise ConfigError(f"budget.tokens={value!r}: expected a whole number of tokens")
        tokens = float(value)
    elif key == "chinchilla_multiple":
        tokens = value * CHINCHILLA_TOKENS_PER_PARAM * n_params
    else:
        tokens = value / flops_per_token  # flops_per_token in the unit of compute (lmlab.runspec.COMPUTE)
    steps = math.floor(tokens / tokens_per_step)
    if steps < 1:
        raise ConfigError(
            f"budget.{key}={value:g} gives {tokens:,.0f} tokens, fewer than one optimizer step "
            f"({tokens_per_step:,} tokens = trainer.global_batch_size x model.seq_len)")
    return BudgetPlan(tokens=steps * tokens_per_step, steps=steps, tokens_per_step=tokens_per_step, tag=tag)
