"""Learning-rate multipliers by optimizer step: cosine with warmup, warmup-stable-decay, constant."""

from __future__ import annotations

import math
from functools import partial


def _warmup(step: int, warmup: int) -> float:
    return (step + 1) / warmup if step < warmup else 1.0


def cosine(step: int, total: int, warmup: int, min_ratio: float) -> float:
    if step < warmup:
        return _warmup(step, warmup)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def wsd(step: int, total: int, warmup: int, min_ratio: float, decay_steps: int) -> float:
    """Hagele et al. 2024: warm up, hold, then decay linearly to min_ratio over the last decay_steps."""
    if step < warmup:
        return _warmup(step, warmup)
    decay_start = total - decay_steps
    if step < decay_start:
        return 1.0
    progress = min(1.0, (step - decay_start + 1) / max(1, decay_steps))
    return 1.0 - (1.0 - min_ratio) * progress


def constant(step: int, total: int, warmup: int, min_ratio: float) -> float:
    return _warmup(step, warmup)


def warmup_steps(total_steps: int, warmup_frac: float) -> int:
    return max(1, round(warmup_frac * total_steps)) if warmup_frac > 0 else 0


def decay_steps(total_steps: int, decay_frac: float) -> int:
    """The length of a WSD run's cooldown."""
    return max(1, round(decay_frac * total_steps))


def lr_lambda(name: str, total_steps: int, warmup_frac: float, min_ratio: float, decay_frac: float):
    """The multiplier function for torch's LambdaLR."""
    warmup = warmup_steps(total_steps, warmup_frac)
    if name == "cosine":
        return partial(cosine, total=total_steps, warmup=warmup, min_ratio=min_ratio)
    if name == "wsd":
        decay = decay_steps(total_steps, decay_frac)
        return partial(wsd, total=total_steps, warmup=warmup, min_ratio=min_ratio, decay_steps=decay)
    if name == "constant":
        return partial(constant, total=total_steps, warmup=warmup, min_ratio=min_ratio)
    raise ValueError(f"unknown schedule {name!r}")
