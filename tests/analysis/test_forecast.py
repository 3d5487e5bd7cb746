"""Forecasting a run's final loss from its partial curve; compute-efficient stopping."""

from __future__ import annotations

import numpy as np
import pytest

from lmlab.analysis.forecast import compute_efficient_tokens, forecast_run
from lmlab.errors import FitError

E, B, BETA = 2.4, 60.0, 0.32


def curve(d):
    return E + B * d ** -BETA


def test_forecast_from_a_third_of_the_run_lands_near_the_end():
    rng = np.random.default_rng(0)
    final = 1e9
    tokens = np.geomspace(1e6, final / 3, 60)
    losses = curve(tokens) * np.exp(0.002 * rng.standard_normal(len(tokens)))
    fc = forecast_run(np.r_[1e3, tokens], np.r_[9.0, losses], final, min_tokens=1e6)  # a warm-up point dropped
    assert fc.loss == pytest.approx(curve(final), rel=0.01)
    assert fc.lo < curve(final) < fc.hi
    assert fc.fit.params["beta"] == pytest.approx(BETA, rel=0.15)
    assert fc.hopeless(target_loss=fc.lo - 0.01) and not fc.hopeless(target_loss=fc.hi)


def test_compute_efficient_stop_is_ten_percent_above_converged():
    d = compute_efficient_tokens({"E": E, "B": B, "beta": BETA}, overshoot=0.10)
    assert curve(d) == pytest.approx(1.10 * E, rel=1e-9)
    with pytest.raises(FitError, match="overshoot=0"):
        compute_efficient_tokens({"E": E, "B": B, "beta": BETA}, overshoot=0)


def test_too_few_points_to_forecast():
    with pytest.raises(FitError, match="3 parameters but only 2"):
        forecast_run([1e5, 1e6, 2e6], [3.1, 3.0, 2.9], 1e9, min_tokens=5e5)


def test_schedule_aware_forecast_at_half_a_cosine_run():
    from lmlab.analysis.forecast import forecast_curve
    from tests.analysis.test_curve_law import synthetic

    run = synthetic("cosine", seed=3)
    final = run.loss[-1]
    alone = forecast_curve(run, upto=0.5, n_resamples=100)
    studied = forecast_curve(run, upto=0.5, study=[synthetic("constant", seed=4), synthetic("wsd", seed=5)],
                             n_resamples=100)
    for fc in (alone, studied):
        assert fc.loss == pytest.approx(final, rel=0.02) and fc.lo < fc.loss < fc.hi
        assert fc.actual == final and fc.upto_step <= run.total_steps // 2
    assert studied.lo <= final <= studied.hi and abs(studied.loss / final - 1) < abs(alone.loss / final - 1)
    assert studied.hi - studied.lo < alone.hi - alone.lo  # runs of the same size pin the law down
    assert studied.runs_used == ["cosine", "constant", "wsd"]
    assert studied.to_json()["covered"] is True


def test_schedule_aware_forecast_refuses_what_it_cannot_do():
    from lmlab.analysis.forecast import forecast_curve
    from tests.analysis.test_curve_law import synthetic

    run = synthetic("cosine")
    with pytest.raises(FitError, match=r"upto=1.5; expected a fraction"):
        forecast_curve(run, upto=1.5)
    with pytest.raises(FitError, match="validation point\\(s\\) past warm-up in its first 0.03; expected at least 3"):
        forecast_curve(run, upto=0.03)
