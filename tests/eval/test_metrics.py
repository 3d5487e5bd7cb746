"""Metrics against hand-computed cases; k-fold folds; bootstrap and t intervals."""

from __future__ import annotations

import numpy as np
import pytest

from lmlab.errors import ConfigError
from lmlab.eval.metrics import classification_metrics, confusion
from lmlab.eval.schemes import bootstrap_indices, kfold, percentile_interval, t_interval

LABELS = np.array([0, 0, 0, 1, 1, 2])
PREDS = np.array([0, 0, 1, 1, 2, 2])


def test_metrics_match_a_hand_computed_case():
    # true 0: predicted 0,0,1; true 1: predicted 1,2; true 2: predicted 2.
    # tp = 2,1,1; support = 3,2,1; predicted = 2,2,2.
    m = classification_metrics(LABELS, PREDS, 3)
    assert confusion(LABELS, PREDS, 3).tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["class_precision"] == pytest.approx([1.0, 0.5, 0.5])
    assert m["class_recall"] == pytest.approx([2 / 3, 0.5, 1.0])
    assert m["class_f1"] == pytest.approx([0.8, 0.5, 2 / 3])
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx((2 / 3 + 0.5 + 1) / 3)
    assert m["f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert m["micro_f1"] == m["micro_precision"] == m["micro_recall"] == pytest.approx(4 / 6)


def test_macro_averages_skip_classes_absent_from_labels_and_predictions():
    # Class 2 never occurs; class 1 is predicted once but has no examples (recall 0 by convention).
    m = classification_metrics(np.array([0, 0]), np.array([0, 1]), 3)
    assert m["precision"] == pytest.approx((1.0 + 0.0) / 2)
    assert m["recall"] == pytest.approx((0.5 + 0.0) / 2)
    assert m["f1"] == pytest.approx((2 / 3 + 0.0) / 2)


def test_metrics_of_many_resamples_at_once_equal_one_at_a_time():
    rng = np.random.default_rng(0)
    labels, preds = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    idx = bootstrap_indices(50, 20, seed=1)
    batched = classification_metrics(labels[idx], preds[idx], 4)
    for row in range(20):
        single = classification_metrics(labels[idx[row]], preds[idx[row]], 4)
        for key in ("accuracy", "precision", "recall", "f1"):
            assert batched[key][row] == pytest.approx(single[key])


@pytest.mark.parametrize("n,k", [(10, 2), (10, 3), (7, 7), (100, 5)])
def test_kfold_folds_are_disjoint_cover_the_data_and_are_balanced(n, k):
    folds = kfold(n, k, seed=3)
    assert len(folds) == k and all(len(f) for f in folds)
    together = np.concatenate(folds)
    assert sorted(together.tolist()) == list(range(n))  # disjoint and covering
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    assert [f.tolist() for f in kfold(n, k, seed=3)] == [f.tolist() for f in folds]


def test_kfold_refuses_an_empty_fold_and_a_single_fold():
    with pytest.raises(ConfigError, match=r"scheme.k=6 with 5 examples: 1 fold\(s\) would be empty"):
        kfold(5, 6, seed=0)
    with pytest.raises(ConfigError, match="at least 2 folds"):
        kfold(5, 1, seed=0)


def test_intervals_cover_the_estimate_and_narrow_with_more_data():
    rng = np.random.default_rng(0)
    small, large = rng.random(50) < 0.7, rng.random(2000) < 0.7
    widths = []
    for correct in (small, large):
        lo, hi = percentile_interval(correct[bootstrap_indices(len(correct), 500, 0)].mean(1), 0.95)
        assert lo <= correct.mean() <= hi
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 3  # about 1/sqrt(40) as wide
    lo, hi = t_interval(np.array([0.5, 0.6, 0.7]), 0.95)
    # mean 0.6, sd 0.1, t(0.975, 2 dof) = 4.303: half-width 4.303 * 0.1 / sqrt(3)
    assert (lo, hi) == pytest.approx((0.6 - 0.24843, 0.6 + 0.24843), abs=1e-4)
