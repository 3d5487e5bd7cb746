"""The fitting objective: a weighted sum of Huber losses over residuals in the law's fit space.

Following Hoffmann et al. and Besiroglu et al., loss laws are fitted on log-loss residuals with
Huber(delta = 1e-3), summed (not averaged: a mean shrinks the objective so L-BFGS stops early).
Weights are per-point counts, which is how one batch holds many bootstrap resamples at once.

Two options steer it. `delta` (default 1e-3, Hoffmann et al.) is the Huber threshold in fit-space
units: log-loss for loss laws, plain units for error/accuracy laws (whose noise is ~0.01, so a
delta near 0.01-0.05 suits them); delta = inf is least squares. `over_penalty` K multiplies the
cost of every residual where the law predicts more than was observed (an over-estimate): K > 1
lets the law pass below runs that sit above the frontier (under-tuned small runs) instead of
being pulled up by them.
"""

from __future__ import annotations

import numpy as np

from lmlab.analysis.laws import Law, LSELaw

HUBER_DELTA = 1e-3
# Blocks of about this many (problem, point) elements keep temporaries in cache and each matmul
# below OpenBLAS's threading threshold (past it, spinning threads double the CPU time).
BLOCK_ELEMENTS = 30_000


def huber_from_clipped(r: np.ndarray, clipped: np.ndarray) -> np.ndarray:
    """Huber(r) = c (r - c/2) with c = clip(r, -delta, delta); c is also its derivative."""
    return clipped * (r - 0.5 * clipped)


def to_fit_space(law: Law, y: np.ndarray) -> np.ndarray:
    return np.log(y) if law.space == "log" else np.asarray(y, dtype=float)


def make_objective(law: Law, X: dict, y: np.ndarray, weights: np.ndarray, problem_weights: np.ndarray,
                   delta: float = HUBER_DELTA, over_penalty: float = 1.0):
    """fun(theta (k, p), rows) for minimize_batch; problem i uses the weight row problem_weights[i]."""
    prep = law.prepare(X)
    target = to_fit_space(law, y)

    step = max(1, BLOCK_ELEMENTS // len(target))
    unweighted = weights.shape[0] == 1 and bool(np.all(weights == 1.0))
    fused = _FusedLSE(law, prep, target, delta, over_penalty) if isinstance(law, LSELaw) else None

    def fun(theta, rows):
        out = [block(theta[i:i + step], rows[i:i + step]) for i in range(0, len(rows), step)]
        return np.concatenate([v for v, _ in out]), np.concatenate([g for _, g in out])

    def block(theta, rows):
        w = None if unweighted else weights[problem_weights[rows]]
        if fused is None:
            return generic(theta, w)
        f, g = fused(theta, w)
        bad = ~np.isfinite(f)
        if bad.any():  # an exp over- or underflowed: redo those rows with the max-shifted LogSumExp
            f[bad], g[bad] = generic(theta[bad], None if w is None else w[bad])
        return f, g

    def generic(theta, w):
        pred, vjp = law.value_and_vjp(theta, prep)
        r = np.subtract(pred, target, out=pred if pred.base is None else None)
        clipped = np.clip(r, -delta, delta)
        terms = huber_from_clipped(r, clipped)
        if over_penalty != 1.0:
            w = _asymmetric(r, over_penalty) if w is None else w * _asymmetric(r, over_penalty)
        if w is not None:
            terms *= w
            clipped *= w
        return terms.sum(axis=1), vjp(clipped)

    return fun


def _asymmetric(r: np.ndarray, over_penalty: float) -> np.ndarray:
    return np.where(r > 0, over_penalty, 1.0)


class _FusedLSE:
    """Huber objective and gradient of an LSELaw computed together, sharing the exp and log terms.

    The exponents of every term that varies with the data come from one matmul theta @ phi, and the
    gradient from one matmul back. Unlike LSELaw.value_and_vjp there is no max shift, and a term
    constant in the data stays one number per problem; a row whose exp overflows or underflows
    gets a non-finite value, which the caller recomputes the stable way."""

    def __init__(self, law: LSELaw, prep, target: np.ndarray, delta: float, over_penalty: float = 1.0):
        _, terms = prep
        self.target, self.delta, self.over_penalty = target, delta, over_penalty
        n = len(target)
        varying = [term for term in terms if any(v is not None for _, v in term)]
        constant = [term for term in terms if all(v is None for _, v in term)]
        self.n_varying = len(varying)
        # phi[j, t*n:(t+1)*n]: the feature that theta_j multiplies in varying term t (1 for a constant)
        self.phi = np.zeros((law.n_params, len(varying) * n))
        for t, term in enumerate(varying):
            for j, v in term:
                self.phi[j, t * n:(t + 1) * n] += 1.0 if v is None else v
        self.phi_t = np.ascontiguousarray(self.phi.T)
        # const[j, t] = 1 where theta_j is (part of) the data-independent term t
        self.const = np.zeros((law.n_params, len(constant)))
        for t, term in enumerate(constant):
            for j, _ in term:
                self.const[j, t] += 1.0

    def __call__(self, theta: np.ndarray, w: np.ndarray | None):
        k, n = theta.shape[0], len(self.target)
        exps = np.exp(theta @ self.phi).reshape(k, self.n_varying, n)
        total = exps.sum(axis=1)
        const_exps = np.exp(theta @ self.const)
        if const_exps.shape[1]:
            total += const_exps.sum(axis=1, keepdims=True)
        r = np.log(total)
        r -= self.target
        c = np.clip(r, -self.delta, self.delta)
        dpred = c if w is None else c * w
        if self.over_penalty != 1.0:
            dpred = dpred * _asymmetric(r, self.over_penalty)
        # sum w Huber(r) = sum w c (r - c/2): two fused row dots instead of four element passes
        f = np.einsum("ij,ij->i", dpred, r) - 0.5 * np.einsum("ij,ij->i", dpred, c)
        # df/dtheta: dpred times each term's softmax weight exp / total, summed against its features
        s = np.divide(dpred, total, out=total)
        grad = np.multiply(exps, s[:, None, :], out=exps).reshape(k, -1) @ self.phi_t
        if const_exps.shape[1]:
            grad += (const_exps * s.sum(axis=1, keepdims=True)) @ self.const.T
        return f, grad
