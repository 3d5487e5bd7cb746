"""Validation schemes: holdout, k-fold splits and the bootstrap of an evaluation set, with intervals."""

from __future__ import annotations

import numpy as np
from scipy import stats

from lmlab.errors import ConfigError


def kfold(n: int, k: int, seed: int) -> list[np.ndarray]:
    """k disjoint folds that together cover range(n), in a seeded random assignment; every fold non-empty."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ConfigError(f"scheme.k={k!r}: expected an integer of at least 2 folds")
    if k > n:
        raise ConfigError(f"scheme.k={k} with {n} examples: {k - n} fold(s) would be empty, expected k <= {n}")
    perm = np.random.default_rng(seed).permutation(n)
    return [np.sort(fold) for fold in np.array_split(perm, k)]


def bootstrap_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    """[n_boot, n] example indices drawn with replacement: one resample per row."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 10:
        raise ConfigError(f"scheme.n_boot={n_boot!r}: expected an integer of at least 10 resamples")
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ConfigError(f"scheme.confidence={confidence!r}: expected a number in (0, 1), e.g. 0.95")


def percentile_interval(samples: np.ndarray, confidence: float) -> list[float]:
    """The central `confidence` share of bootstrap values (the percentile bootstrap)."""
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(samples, [tail, 100 - tail])
    return [float(lo), float(hi)]


def t_interval(values: np.ndarray, confidence: float) -> list[float]:
    """mean +- t * sd / sqrt(k) over k fold values (Student's t, k - 1 degrees of freedom)."""
    values = np.asarray(values, dtype=float)
    half = stats.t.ppf((1 + confidence) / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return [float(values.mean() - half), float(values.mean() + half)]


def fold_summary(folds: list[dict], keys, confidence: float) -> dict:
    """Per key: the mean over the folds' values, their spread (`_std`), the values (`_folds`) and the t
    interval of the mean (`_ci`); NaN values (a metric a fold cannot have) are left to NaN."""
    out = {}
    for key in keys:
        values = np.array([float(f[key]) for f in folds])
        out.update({key: float(values.mean()), f"{key}_std": float(values.std(ddof=1)),
                    f"{key}_folds": values.tolist(), f"{key}_ci": t_interval(values, confidence)})
    return out
