"""Assign whole documents to train/validation/test, deterministically from (seed, document id)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from lmlab.errors import ConfigError, DataError

TRAIN = "train"


def check_fractions(fractions: Mapping[str, float]) -> None:
    for name, frac in fractions.items():
        if name == TRAIN or not isinstance(frac, (int, float)) or not 0.0 <= float(frac) < 1.0:
            raise ConfigError(f"splits.{name}: got {frac!r}, expected a held-out split with a fraction in [0, 1)")
    if sum(float(f) for f in fractions.values()) >= 1.0:
        raise ConfigError(f"splits: held-out fractions {dict(fractions)} sum to 1 or more, leaving no train split")


def split_sizes(n_docs: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Documents per split: each held-out split gets round(fraction * n), at least one; train the rest."""
    check_fractions(fractions)
    sizes = {name: max(1, round(float(frac) * n_docs)) for name, frac in fractions.items() if float(frac) > 0}
    if n_docs - sum(sizes.values()) < 1:
        raise DataError(f"corpus: {n_docs} documents left after cleaning, expected at least {sum(sizes.values()) + 1} "
                        f"to fill train and {', '.join(sizes)}")
    return {TRAIN: n_docs - sum(sizes.values()), **sizes}


def assign_splits(ids: Sequence[str], fractions: Mapping[str, float], seed: int) -> list[str]:
    """The split of each document. Documents are ranked by a salted hash of their id, so the choice
    depends only on the ids and the seed (not on order), and no document lands in two splits."""
    sizes = split_sizes(len(ids), fractions)
    rank = sorted(range(len(ids)), key=lambda i: hashlib.sha256(f"{seed}:{ids[i]}".encode()).digest())
    out = [TRAIN] * len(ids)
    start = 0
    for name, size in sizes.items():
        if name == TRAIN:
            continue
        for i in rank[start:start + size]:
            out[i] = name
        start += size
    return out
