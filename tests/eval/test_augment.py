"""Augmentation of labeled text: deterministic given (seed, index), and doing what it says."""

from __future__ import annotations

import numpy as np
import pytest

from lmlab.eval.augment import augment

IDS = list(range(1000, 1400))


def test_augmentation_is_reproducible_and_varies_with_seed_and_index():
    kw = {"token_dropout": 0.1, "span_deletion": 0.05, "max_span": 3, "local_swaps": 0.1}
    first = augment(IDS, seed=7, index=3, **kw)
    assert augment(IDS, seed=7, index=3, **kw) == first
    assert augment(IDS, seed=8, index=3, **kw) != first
    assert augment(IDS, seed=7, index=4, **kw) != first


def test_each_operation_changes_what_it_should():
    dropped = augment(IDS, seed=0, index=0, token_dropout=0.2)
    assert 0.7 * len(IDS) < len(dropped) < 0.9 * len(IDS)
    assert dropped == sorted(dropped) and set(dropped) < set(IDS)  # order kept, only removals
    swapped = augment(IDS, seed=0, index=0, local_swaps=0.2)
    assert sorted(swapped) == IDS and swapped != IDS  # same tokens, some neighbours exchanged
    moved = np.abs(np.array(swapped) - np.array(IDS))
    assert moved.max() == 1  # each token moves one place at most
    spans = augment(IDS, seed=0, index=0, span_deletion=0.05, max_span=4)
    assert len(spans) < len(IDS) and spans == sorted(spans)
    assert augment(IDS, seed=0, index=0) == IDS


@pytest.mark.parametrize("p", [0.999])
def test_augmentation_never_returns_nothing(p):
    assert augment([5, 6, 7], seed=0, index=0, token_dropout=p) == [5]
