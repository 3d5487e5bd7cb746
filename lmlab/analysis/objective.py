"""The fitting objective: a weighted sum of Huber losses over residuals in the law's fit space.

Following Hoffmann et al. and Besiroglu et al., loss laws are fitted on log-loss residuals with
Huber(delta = 1e-3), summed (not averaged: a mean shrinks the objective so L-BFGS stops early).
Weights are per-point counts, which is how one batch holds many bootstrap resamples at once.
"""

from __future__ import annotations

import numpy as np

from lmlab.analysis.laws import Law

HUBER_DELTA = 1e-3
# Blocks of about this many (problem, point) elements keep every temporary under glibc's 128 KiB
# mmap threshold (and in cache): several times faster than one pass over all problems.
BLOCK_ELEMENTS = 15_000


def huber_from_clipped(r: np.ndarray, clipped: np.ndarray) -> np.ndarray:
    """Huber(r) = c (r - c/2) with c = clip(r, -delta, delta); c is also its derivative."""
    return clipped * (r - 0.5 * clipped)


def to_fit_space(law: Law, y: np.ndarray) -> np.ndarray:
    return np.log(y) if law.space == "log" else np.asarray(y, dtype=float)


def make_objective(law: Law, X: dict, y: np.ndarray, weights: np.ndarray, problem_weights: np.ndarray,
                   delta: float = HUBER_DELTA):
    """fun(theta (k, p), rows) for minimize_batch; problem i uses the weight row problem_weights[i]."""
    prep = law.prepare(X)
    target = to_fit_space(law, y)

    step = max(1, BLOCK_ELEMENTS // len(target))
    unweighted = weights.shape[0] == 1 and bool(np.all(weights == 1.0))

    def fun(theta, rows):
        out = [block(theta[i:i + step], rows[i:i + step]) for i in range(0, len(rows), step)]
        return np.concatenate([v for v, _ in out]), np.concatenate([g for _, g in out])

    def block(theta, rows):
        pred, vjp = law.value_and_vjp(theta, prep)
        r = np.subtract(pred, target, out=pred if pred.base is None else None)
        clipped = np.clip(r, -delta, delta)
        terms = huber_from_clipped(r, clipped)
        if not unweighted:
            w = weights[problem_weights[rows]]
            terms *= w
            clipped *= w
        return terms.sum(axis=1), vjp(clipped)

    return fun
