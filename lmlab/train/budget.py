"""Budgets in tokens, Chinchilla multiples or FLOPs; the optimizer step count follows."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lmlab.errors import ConfigError

CHINCHILLA_TOKENS_PER_PARAM = 20


@dataclass(frozen=True)
class BudgetPlan:
    tokens: int  # tokens actually trained: steps * tokens_per_step
    steps: int
    tokens_per_step: int
    tag: str  # short label for run ids, e.g. "t1.0M", "cx1", "f1e15"


def _tag_tokens(tokens: float) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if tokens >= scale:
            return f"t{tokens / scale:.3g}{unit}"
    return f"t{int(tokens)}"


def plan_budget(budget: dict, n_params: int, flops_per_token: float, tokens_per_step: int) -> BudgetPlan:
    """budget: the config's budget group, exactly one of tokens / chinchilla_multiple / flops set."""
    given = {k: v for k, v in budget.items() if v is not None}
    if len(given) != 1:
        raise ConfigError(
            f"budget: set exactly one of budget.tokens, budget.chinchilla_multiple, budget.flops (got {given or 'none'})")
    (key, value), = given.items()
    if not value > 0:
        raise ConfigError(f"budget.{key}={value}: expected a positive number")
    if key == "tokens":
        tokens, tag = float(value), _tag_tokens(value)
    elif key == "chinchilla_multiple":
        tokens, tag = value * CHINCHILLA_TOKENS_PER_PARAM * n_params, f"cx{value:g}"
    else:
        tokens, tag = value / flops_per_token, f"f{value:.0e}".replace("+", "")
    steps = math.floor(tokens / tokens_per_step)
    if steps < 1:
        raise ConfigError(
            f"budget.{key}={value:g} gives {tokens:,.0f} tokens, fewer than one optimizer step "
            f"({tokens_per_step:,} tokens = trainer.global_batch_size x model.seq_len)")
    return BudgetPlan(tokens=steps * tokens_per_step, steps=steps, tokens_per_step=tokens_per_step, tag=tag)
