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
    """Minimise S independent problems from starts x0 (S, p) with L-BFGS and Armijo backtracking."""
    x = np.array(x0, dtype=float, copy=True)
    n_prob, dim = x.shape
    f, g = fun(x, np.arange(n_prob))
    status = np.full(n_prob, STATUS_MAXITER)
    n_iter = np.zeros(n_prob, dtype=int)
    s_hist = np.zeros((n_prob, memory, dim))
    y_hist = np.zeros((n_prob, memory, dim))
    rho = np.zeros((n_prob, memory))          # 0 marks an empty or skipped slot
    status[~np.isfinite(f)] = STATUS_NONFINITE
    status[np.abs(g).max(axis=1) <= gtol] = STATUS_GTOL
    active = np.flatnonzero(status == STATUS_MAXITER)
    for it in range(max_iter):
        if active.size == 0:
            break
        fa, ga, xa = f[active], g[active], x[active]
        d = -_two_loop(ga, s_hist[active], y_hist[active], rho[active], it, memory)
        slope = np.einsum("ij,ij->i", ga, d)
        uphill = ~(slope < 0)
        if uphill.any():  # a stale curvature pair: restart that problem from steepest descent
            d[uphill] = -ga[uphill]
            rho[active[uphill]] = 0.0
            slope[uphill] = -np.einsum("ij,ij->i", ga[uphill], ga[uphill])
        fresh = ~rho[active].any(axis=1)
        step = np.where(fresh, np.minimum(1.0, 1.0 / np.linalg.norm(d, axis=1)), 1.0)
        x_new, f_new, g_new, ok = _backtrack(fun, active, xa, fa, slope, d, step, max_halvings)
        n_iter[active] += 1
        failed = active[~ok]
        status[failed] = STATUS_LINESEARCH
        moved = active[ok]
        x_new, f_new, g_new = x_new[ok], f_new[ok], g_new[ok]
        s, y = x_new - x[moved], g_new - g[moved]
        sy = np.einsum("ij,ij->i", s, y)
        slot = it % memory
        good = sy > np.finfo(float).eps * np.einsum("ij,ij->i", y, y)
        s_hist[moved, slot], y_hist[moved, slot] = s, y
        rho[moved, slot] = np.where(good, 1.0 / np.where(good, sy, 1.0), 0.0)
        decrease = (f[moved] - f_new) / np.maximum(np.maximum(np.abs(f[moved]), np.abs(f_new)), np.finfo(float).tiny)
        x[moved], f[moved], g[moved] = x_new, f_new, g_new
        status[moved[decrease <= ftol]] = STATUS_FTOL
        status[moved[np.abs(g_new).max(axis=1) <= gtol]] = STATUS_GTOL
        active = active[status[active] == STATUS_MAXITER]
    return BatchResult(x=x, fun=f, grad_max=np.abs(g).max(axis=1), n_iter=n_iter, status=status)


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
