"""Data augmentation for labeled text, on token ids: token dropout, span deletion, local swaps.

Deterministic: the same (seed, index) always gives the same result, whatever else ran before, so
an augmented fine-tuning run is reproducible and resumable. Pass index = epoch * n + example to
see a different augmentation of each example in every epoch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lmlab.errors import ConfigError


def check_augment(cfg: dict) -> None:
    for key in ("token_dropout", "span_deletion", "local_swaps"):
        if not 0 <= cfg[key] < 1:
            raise ConfigError(f"augment.{key}={cfg[key]!r}: expected a probability in [0, 1)")
    if cfg["max_span"] < 1:
        raise ConfigError(f"augment.max_span={cfg['max_span']!r}: expected a positive number of tokens")


def augment(ids: Sequence[int], seed: int, index: int, token_dropout: float = 0.0, span_deletion: float = 0.0,
            max_span: int = 3, local_swaps: float = 0.0) -> list[int]:
    """ids with each token dropped with probability token_dropout, a span of 1..max_span tokens deleted
    at each position with probability span_deletion, and neighbours swapped with probability
    local_swaps (non-overlapping pairs). Never returns an empty list (the first token is kept if all else went)."""
    rng = np.random.default_rng([seed, index])
    ids = list(ids)
    keep = rng.random(len(ids)) >= token_dropout
    starts = np.flatnonzero(rng.random(len(ids)) < span_deletion)
    for start, length in zip(starts, rng.integers(1, max_span + 1, size=len(starts))):
        keep[start:start + length] = False
    out = [t for t, k in zip(ids, keep) if k] or ids[:1]
    swaps = rng.random(len(out)) < local_swaps
    i = 0
    while i < len(out) - 1:
        if swaps[i]:  # pairs do not overlap, so no token moves more than one place
            out[i], out[i + 1] = out[i + 1], out[i]
            i += 1
        i += 1
    return out
