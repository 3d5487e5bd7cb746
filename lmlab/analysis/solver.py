"""Many independent L-BFGS minimisations at once, in lockstep over numpy arrays.

A multi-start fit (4,500 starts) or a bootstrap (1,000 resamples) is thousands of small problems
that share one data set. Looping scipy over them costs Python overhead per iteration per problem;
here every iteration is a handful of array operations over all problems still running, and a
problem leaves the batch as soon as it converges.

`fun(x, rows)` returns the objective (k,) and gradient (k, p) of problems `rows` at points x (k, p).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

# scipy's L-BFGS-B default tolerances, but the relative decrease is measured against |f| alone:
# scipy's floor of 1 turns it into an absolute 2e-9, which stops a Huber sum of size ~1e-3 (the
# Chinchilla fit) after a few steps from a warm start.
FTOL = 2.220446049250313e-09
GTOL = 1e-5
ARMIJO_C1 = 1e-4

STATUS_GTOL, STATUS_FTOL, STATUS_LINESEARCH, STATUS_MAXITER, STATUS_NONFINITE = range(5)
STATUS_NAMES = ("gradient below gtol", "relative decrease below ftol", "line search failed",
                "iteration limit reached", "non-finite objective")

Objective = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class BatchResult:
    x: np.ndarray          # (S, p) final points
    fun: np.ndarray        # (S,) final objectives
    grad_max: np.ndarray   # (S,) largest absolute gradient component at x
    n_iter: np.ndarray     # (S,) iterations taken
    status: np.ndarray     # (S,) one of the STATUS_* codes

    @property
    def converged(self) -> np.ndarray:
        return self.status <= STATUS_FTOL


def minimize_batch(fun: Objective, x0: np.ndarray, *, memory: int = 10, max_iter: int = 1000,
                   ftol: float = FTOL, gtol: float = GTOL, max_halvings: int = 40) -> BatchResult:
    """Minimise S independent problems from starts x0 (S, p) with L-BFGS and Armijo backtracking.

    The working arrays hold only the problems still running (`ids`): a problem that stops is
    written to the result and dropped, so late iterations cost what their few problems cost."""
    x = np.array(x0, dtype=float, copy=True)
    n_prob, dim = x.shape
    ids = np.arange(n_prob)
    f, g = fun(x, ids)
    out = BatchResult(x=x.copy(), fun=f.copy(), grad_max=np.abs(g).max(axis=1),
                      n_iter=np.zeros(n_prob, dtype=int), status=np.full(n_prob, STATUS_MAXITER))
    hist = [np.zeros((n_prob, memory, dim)), np.zeros((n_prob, memory, dim)), np.zeros((n_prob, memory))]
    state = np.full(n_prob, STATUS_MAXITER)
    state[np.abs(g).max(axis=1) <= gtol] = STATUS_GTOL
    state[~np.isfinite(f)] = STATUS_NONFINITE
    for it in range(max_iter + 1):
        running = state == STATUS_MAXITER
        if not running.all():  # hand the stopped problems to the result, keep the others
            stop = ~running
            out.x[ids[stop]], out.fun[ids[stop]] = x[stop], f[stop]
            out.grad_max[ids[stop]], out.status[ids[stop]] = np.abs(g[stop]).max(axis=1), state[stop]
            ids, x, f, g, state = ids[running], x[running], f[running], g[running], state[running]
            hist = [h[running] for h in hist]
        if ids.size == 0 or it == max_iter:
            break
        s_hist, y_hist, rho = hist
        d = -_two_loop(g, s_hist, y_hist, rho, it, memory)
        slope = np.einsum("ij,ij->i", g, d)
        uphill = ~(slope < 0)
        if uphill.any():  # a stale curvature pair: restart that problem from steepest descent
            d[uphill] = -g[uphill]
            rho[uphill] = 0.0
            slope[uphill] = -np.einsum("ij,ij->i", g[uphill], g[uphill])
        fresh = ~rho.any(axis=1)
        step = np.where(fresh, np.minimum(1.0, 1.0 / np.linalg.norm(d, axis=1)), 1.0)
        x_new, f_new, g_new, ok = _backtrack(fun, ids, x, f, slope, d, step, max_halvings)
        out.n_iter[ids] += 1
        state[~ok] = STATUS_LINESEARCH
        s, y = x_new - x, g_new - g
        sy = np.einsum("ij,ij->i", s, y)
        good = ok & (sy > np.finfo(float).eps * np.einsum("ij,ij->i", y, y))
        slot = it % memory
        s_hist[ok, slot], y_hist[ok, slot] = s[ok], y[ok]
        rho[ok, slot] = np.where(good, 1.0 / np.where(good, sy, 1.0), 0.0)[ok]
        scale = np.maximum(np.maximum(np.abs(f), np.abs(f_new)), np.finfo(float).tiny)
        decrease = (f - f_new) / scale
        x[ok], f[ok], g[ok] = x_new[ok], f_new[ok], g_new[ok]
        state[ok & (decrease <= ftol)] = STATUS_FTOL
        state[ok & (np.abs(g).max(axis=1) <= gtol)] = STATUS_GTOL
    out.x[ids], out.fun[ids], out.grad_max[ids] = x, f, np.abs(g).max(axis=1)
    return out


def _two_loop(g, s_hist, y_hist, rho, it, memory):
    """The L-BFGS product H g for every problem, newest pair first; empty slots (rho 0) are no-ops."""
    q = g.copy()
    order = [(it - 1 - k) % memory for k in range(min(it, memory))]
    alphas = []
    for j in order:
        a = rho[:, j] * np.einsum("ij,ij->i", s_hist[:, j], q)
        q -= a[:, None] * y_hist[:, j]
        alphas.append(a)
    if order:
        j = order[0]
        yy = np.einsum("ij,ij->i", y_hist[:, j], y_hist[:, j])
        gamma = np.where(rho[:, j] > 0, 1.0 / np.where(rho[:, j] > 0, rho[:, j] * yy, 1.0), 1.0)
        q *= gamma[:, None]
    for j, a in zip(reversed(order), reversed(alphas)):
        b = rho[:, j] * np.einsum("ij,ij->i", y_hist[:, j], q)
        q += (a - b)[:, None] * s_hist[:, j]
    return q


def _backtrack(fun, rows, x, f, slope, d, step, max_halvings):
    """Armijo backtracking for all problems at once: halve the step of those not yet accepted."""
    x_new, f_new, g_new = x.copy(), f.copy(), np.zeros_like(x)
    ok = np.zeros(len(rows), dtype=bool)
    todo = np.arange(len(rows))
    for _ in range(max_halvings):
        trial = x[todo] + step[todo, None] * d[todo]
        ft, gt = fun(trial, rows[todo])
        accept = np.isfinite(ft) & (ft <= f[todo] + ARMIJO_C1 * step[todo] * slope[todo])
        hit = todo[accept]
        x_new[hit], f_new[hit], g_new[hit] = trial[accept], ft[accept], gt[accept]
        ok[hit] = True
        todo = todo[~accept]
        if todo.size == 0:
            break
        step[todo] *= 0.5
    return x_new, f_new, g_new, ok
