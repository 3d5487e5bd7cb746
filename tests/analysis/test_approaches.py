"""Approaches 1, 2 and 3 agree on IsoFLOP data generated from a known law; the closed-form optimum
is the numerical one."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from lmlab.analysis.allocation import chinchilla_optimal, fit_power_law
from lmlab.analysis.approaches import approach1, approach2, bootstrap_allocation, isoflop_groups
from lmlab.analysis.fit import fit_law
from lmlab.errors import FitError

from .conftest import TRUTH, chinchilla_loss, curves_for, isoflop_runs

A_TRUE = TRUTH["beta"] / (TRUTH["alpha"] + TRUTH["beta"])


@pytest.fixture(scope="module")
def ladder():
    rng = np.random.default_rng(0)
    runs = isoflop_runs(rng)
    return runs, curves_for(runs, rng)


def test_three_approaches_agree_on_generated_isoflops(ladder):
    runs, curves = ladder
    a2 = approach2(runs.n_params, runs.flops_6n, runs.final_val_loss)
    a1 = approach1(curves.run_id, curves.n_params, curves.tokens, curves.flops_6n, curves.loss)
    fit = fit_law("chinchilla", {"N": runs.n_params.to_numpy(), "D": runs.tokens.to_numpy()},
                  runs.final_val_loss.to_numpy())
    a3 = fit.derived["a"]
    for a in (a1.n_opt.exponent, a2.n_opt.exponent, a3):
        assert a == pytest.approx(A_TRUE, abs=0.02)
    assert a1.n_opt.exponent + a1.d_opt.exponent == pytest.approx(1.0, abs=0.02)  # C = 6ND
    assert a2.n_opt.exponent + a2.d_opt.exponent == pytest.approx(1.0, abs=1e-9)
    # the IsoFLOP minima sit on the true optimum
    n_true, _ = chinchilla_optimal(TRUTH, a2.flops)
    assert np.max(np.abs(np.log(a2.n_points / n_true))) < 0.15
    assert len(a2.details["parabolas"]) == 7


def test_isoflop_groups_split_budgets():
    labels = isoflop_groups([1e18, 1.05e18, 3e18, 2.9e18, 1e19])
    assert labels.tolist() == [0, 0, 1, 1, 2]


def test_approach2_needs_groups_with_a_minimum():
    with pytest.raises(FitError, match="at least 2 IsoFLOP groups"):
        approach2([1e8, 2e8], [1e19, 1e19], [3.0, 2.9])


def test_bootstrapped_allocation_interval_contains_truth(ladder):
    runs, _ = ladder
    alloc = bootstrap_allocation(2, runs.run_id, {"n": runs.n_params, "flops": runs.flops_6n,
                                                  "loss": runs.final_val_loss}, 200, seed=0)
    lo, hi = alloc.intervals()["a"]
    assert lo < A_TRUE < hi and hi - lo < 0.1


@pytest.mark.parametrize("flops", [1e19, 5.76e23])
def test_closed_form_allocation_is_the_numerical_optimum(flops):
    n_star, d_star = chinchilla_optimal(TRUTH, flops)
    res = minimize_scalar(lambda x: chinchilla_loss(np.exp(x), flops / (6 * np.exp(x))),
                          bounds=(np.log(1e3), np.log(flops / 6 / 1e3)), method="bounded", options={"xatol": 1e-10})
    assert n_star == pytest.approx(np.exp(res.x), rel=1e-4)
    assert 6 * n_star * d_star == pytest.approx(flops)


def test_power_law_fit_is_exact_on_a_power_law():
    pl = fit_power_law([1e18, 1e19, 1e20], 3.0 * np.array([1e18, 1e19, 1e20]) ** 0.5)
    assert pl.exponent == pytest.approx(0.5) and pl.coef == pytest.approx(3.0)


def test_numerical_planner_matches_closed_forms():
    """The planner's numerical optimum for a law without a coded closed form: Gadre et al.'s
    over-training law, whose optimal M = D/N is (b/a)^(1/(2 eta))."""
    from lmlab.analysis.fit import fit_law
    from lmlab.analysis.laws import OVERTRAIN
    from lmlab.analysis.plan import optimal_n

    p = {"E": 1.8, "a": 2.0e5, "b": 1.0e8, "eta": 0.3}
    n = np.geomspace(1e7, 1e9, 6)
    d = np.geomspace(1e9, 1e11, 6)
    nn, dd = (v.ravel() for v in np.meshgrid(n, d))
    X = {"C": 6 * nn * dd, "M": dd / nn}
    fit = fit_law(OVERTRAIN, X, OVERTRAIN.predict(p, **X), starts=OVERTRAIN.from_params(p))
    flops = 1e21
    m_star = (p["b"] / p["a"]) ** (1 / (2 * p["eta"]))
    assert optimal_n(fit, flops)[0] == pytest.approx(np.sqrt(flops / (6 * m_star)), rel=1e-4)
