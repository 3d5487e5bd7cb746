"""Bootstrap intervals cover the truth about as often as they claim, and predictions get intervals."""

from __future__ import annotations

import numpy as np
import pytest

from lmlab.analysis.fit import bootstrap, fit_law, parameter_interval
from lmlab.analysis.laws import CHINCHILLA
from lmlab.errors import FitError

from .conftest import TRUTH, chinchilla_loss

N, D = (a.ravel() for a in np.meshgrid(np.geomspace(5e7, 5e9, 8), np.geomspace(1e9, 2e11, 8)))
N_PROBE, D_PROBE = 7e10, 1.4e12   # far outside the data: the prediction interval must still cover


def test_95_percent_intervals_cover_the_truth_about_95_percent_of_the_time():
    """100 data sets from a known law, each fitted (one warm start) and bootstrapped 200 times."""
    truth = {**TRUTH, **CHINCHILLA.derived(TRUTH)}
    truth["L_probe"] = chinchilla_loss(N_PROBE, D_PROBE)
    rng = np.random.default_rng(1)
    hits = {k: 0 for k in truth}
    draws = 100
    for i in range(draws):
        y = chinchilla_loss(N, D) * np.exp(0.01 * rng.standard_normal(len(N)))
        fit = fit_law(CHINCHILLA, {"N": N, "D": D}, y, starts=CHINCHILLA.from_params(TRUTH))
        boot = bootstrap(fit, 200, seed=i)
        intervals = boot.intervals(CHINCHILLA)
        _, lo, hi = parameter_interval(fit, N=np.array([N_PROBE]), D=np.array([D_PROBE]))
        intervals["L_probe"] = (lo[0], hi[0])
        for k in hits:
            hits[k] += intervals[k][0] <= truth[k] <= intervals[k][1]
    coverage = {k: v / draws for k, v in hits.items()}
    assert all(0.85 <= c <= 1.0 for c in coverage.values()), coverage
    assert 0.9 <= np.mean(list(coverage.values())) <= 0.99, coverage


def test_intervals_shrink_with_less_noise():
    widths = []
    for noise in (0.02, 0.005):
        rng = np.random.default_rng(0)
        y = chinchilla_loss(N, D) * np.exp(noise * rng.standard_normal(len(N)))
        fit = fit_law(CHINCHILLA, {"N": N, "D": D}, y, starts=CHINCHILLA.from_params(TRUTH))
        lo, hi = bootstrap(fit, 100).intervals(CHINCHILLA)["alpha"]
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2


def test_default_interval_adds_the_scatter_of_runs_to_the_parameter_interval():
    from lmlab.analysis.extrapolation import calibrate, honest_interval

    rng = np.random.default_rng(2)
    y = chinchilla_loss(N, D) * np.exp(0.01 * rng.standard_normal(len(N)))
    fit = fit_law(CHINCHILLA, {"N": N, "D": D}, y, starts=CHINCHILLA.from_params(TRUTH))
    bootstrap(fit, 300)
    fit.extrapolation = calibrate(fit)
    _, lo, hi = parameter_interval(fit, N=N, D=D)
    _, run_lo, run_hi = honest_interval(fit, N=N, D=D)
    assert np.all(run_lo < lo) and np.all(run_hi > hi)
    # about 95% of fresh runs fall inside the default interval, far fewer inside the parameter-only one
    fresh = chinchilla_loss(N, D) * np.exp(0.01 * rng.standard_normal(len(N)))
    assert 0.88 <= np.mean((fresh >= run_lo) & (fresh <= run_hi)) <= 1.0
    assert np.mean((fresh >= lo) & (fresh <= hi)) < 0.7


def test_prediction_interval_needs_a_bootstrap():
    fit = fit_law(CHINCHILLA, {"N": N, "D": D}, chinchilla_loss(N, D), starts=CHINCHILLA.from_params(TRUTH))
    with pytest.raises(FitError, match="no bootstrap samples"):
        parameter_interval(fit, N=np.array([1e9]), D=np.array([1e10]))
    with pytest.raises(FitError, match="at least 2 resamples"):
        bootstrap(fit, 1)


def test_a_fit_that_does_not_converge_says_so():
    y = chinchilla_loss(N, D)
    with pytest.warns(UserWarning, match="did not converge"):
        fit = fit_law(CHINCHILLA, {"N": N, "D": D}, y, starts=[[0.0, 0.0, 0.0, 0.0, 0.0]], max_iter=3)
    assert not fit.converged and fit.status == "iteration limit reached"
