"""The batched L-BFGS reaches the same optima as scipy's L-BFGS-B from the same starts."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from lmlab.analysis.laws import CHINCHILLA
from lmlab.analysis.objective import make_objective
from lmlab.analysis.solver import minimize_batch


def test_same_optimum_as_scipy_on_chinchilla_points(chinchilla_points):
    X = {"N": chinchilla_points["N"].to_numpy(), "D": chinchilla_points["D"].to_numpy()}
    y = chinchilla_points["L"].to_numpy()
    starts = CHINCHILLA.start_grid(X, y)[::150]    # 30 starts spread over the grid
    fun = make_objective(CHINCHILLA, X, y, np.ones((1, len(y))), np.zeros(len(starts), dtype=int))
    with np.errstate(all="ignore"):
        ours = minimize_batch(fun, starts)
        theirs = np.array([minimize(lambda t: fun(t[None], np.arange(1))[0][0], s, method="L-BFGS-B",
                                    jac=lambda t: fun(t[None], np.arange(1))[1][0]).fun for s in starts])
    best_ours, best_theirs = np.nanmin(ours.fun), np.nanmin(theirs)
    assert abs(best_ours - best_theirs) <= 1e-6 * best_theirs
    # paths differ (line searches differ), but both reach the optimum from several starts
    assert np.isclose(ours.fun, best_theirs, rtol=1e-6).sum() >= 2
    assert np.isclose(theirs, best_theirs, rtol=1e-6).sum() >= 2


def test_quadratic_bowls_in_one_batch():
    centers = np.random.default_rng(0).normal(size=(50, 3))
    scales = np.array([1.0, 10.0, 100.0])

    def fun(x, rows):
        diff = x - centers[rows]
        return 0.5 * (scales * diff * diff).sum(1), scales * diff

    res = minimize_batch(fun, np.zeros((50, 3)))
    assert res.converged.all()
    np.testing.assert_allclose(res.x, centers, atol=1e-5)
