"""Reproduce Besiroglu et al.'s Chinchilla approach-3 fit on the 240 public points (see the data README)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from lmlab.analysis.fit import bootstrap
from lmlab.analysis.objective import make_objective

BEST_HUBER_FIT = {"E": 1.8172, "A": 477.8, "B": 2143.9, "alpha": 0.3473, "beta": 0.3672}
PUBLISHED_95 = {"A": (285.2, 743.6), "B": (1042.4, 5810.3), "E": (1.769, 1.871),
                "alpha": (0.317, 0.373), "beta": (0.331, 0.415)}


def test_grid_fit_recovers_the_best_huber_fit(chinchilla_fit):
    assert chinchilla_fit.n_starts == 4500
    assert chinchilla_fit.converged
    for key, value in BEST_HUBER_FIT.items():
        assert chinchilla_fit.params[key] == pytest.approx(value, rel=0.005), key
    # the allocation exponent a = beta / (alpha + beta) of the replication: 0.513
    assert chinchilla_fit.derived["a"] == pytest.approx(0.513, abs=0.002)


def test_only_a_share_of_starts_reach_the_optimum(chinchilla_fit):
    """Why a multi-start is essential (replication: most starts end elsewhere)."""
    assert 0 < chinchilla_fit.n_at_optimum < chinchilla_fit.n_starts / 2


def test_scipy_from_the_best_point_finds_nothing_lower(chinchilla_fit):
    fit = chinchilla_fit
    fun = make_objective(fit.law, fit.X, fit.y, np.ones((1, len(fit.y))), np.zeros(1, dtype=int))
    res = minimize(lambda t: fun(t[None], np.arange(1))[0][0], fit.theta, method="L-BFGS-B",
                   jac=lambda t: fun(t[None], np.arange(1))[1][0])
    assert res.fun >= fit.objective - 1e-6 * fit.objective


def test_bootstrap_intervals_overlap_the_published_ones(chinchilla_fit):
    boot = bootstrap(chinchilla_fit, 1000, seed=0)
    ours = boot.intervals(chinchilla_fit.law)
    for key, (lo, hi) in PUBLISHED_95.items():
        assert ours[key][0] < hi and lo < ours[key][1], (key, ours[key])
        # and they are of the same width, within a factor of 1.5
        assert 1 / 1.5 < (ours[key][1] - ours[key][0]) / (hi - lo) < 1.5, (key, ours[key])
    assert 0.48 < ours["a"][0] < 0.513 < ours["a"][1] < 0.56
    assert boot.n_failed == 0
