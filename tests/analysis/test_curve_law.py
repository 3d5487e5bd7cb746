"""The schedule-aware loss-curve law (Tissue et al. 2024): areas, gradient, recovery on synthetic curves."""

from __future__ import annotations

import numpy as np
import pytest

from lmlab.analysis.curve_law import ANNEALING, Curve, fit_curves, lr_curve, schedule_areas
from lmlab.errors import FitError

TRUTH = {"L0": 2.2, "A": 1.1, "alpha": 0.45, "C": 3.0}
DECAY = 0.99
STEPS = 2000


def lrs_of(schedule: str) -> np.ndarray:
    return lr_curve({"name": schedule, "warmup_frac": 0.05, "decay_frac": 0.25}, {"lr": 1e-3, "min_lr_ratio": 0.1},
                    STEPS)


def synthetic(schedule: str, noise: float = 0.002, seed: int = 0, n: int = 40) -> Curve:
    lrs = lrs_of(schedule)
    steps = np.unique(np.geomspace(20, STEPS, n).round().astype(int))
    s1, s2 = schedule_areas(lrs, DECAY)
    truth = ANNEALING.predict(TRUTH, S1=s1[steps], S2=s2[steps])
    loss = truth * np.exp(noise * np.random.default_rng(seed).standard_normal(len(steps)))
    return Curve(schedule, steps, loss, lrs, tokens_per_step=1024.0)


def test_areas_of_simple_schedules():
    s1, s2 = schedule_areas(np.full(10, 0.5), 0.9)
    assert s1[4] == pytest.approx(2.0) and not s2.any()  # no annealing at a constant rate
    lrs = np.r_[0.5, 1.0, 1.0, np.linspace(0.9, 0.1, 9)]  # warm-up, hold, linear decay
    s1, s2 = schedule_areas(lrs, 0.0)
    # without momentum the annealing area is the drop so far, peak minus the current rate (the
    # warm-up's rise is no annealing); with full momentum it is the area between peak and schedule
    assert s2 == pytest.approx(np.r_[0.0, 0.0, 1.0 - lrs[1:]], abs=1e-12)
    _, full = schedule_areas(lrs, 1.0)
    assert full == pytest.approx(np.r_[0.0, np.cumsum(np.r_[0.0, 1.0 - lrs[1:]])], abs=1e-12)


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    X = {"S1": rng.uniform(0.05, 1.5, 30), "S2": rng.uniform(0.0, 0.3, 30)}
    y = ANNEALING.predict(TRUTH, **X) * (1 + 0.01 * rng.standard_normal(30))
    theta = ANNEALING.from_params(TRUTH)[None]
    prep = ANNEALING.prepare(X)

    def loss(t):
        pred, _ = ANNEALING.value_and_vjp(t, prep)
        return 0.5 * np.sum((pred - np.log(y)) ** 2)

    pred, vjp = ANNEALING.value_and_vjp(theta, prep)
    grad = vjp(pred - np.log(y))[0]
    eps = 1e-6
    numeric = [(loss(theta + eps * e) - loss(theta - eps * e)) / (2 * eps) for e in np.eye(4)[:, None, :]]
    assert grad == pytest.approx(numeric, rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("schedule", ["cosine", "wsd", "constant"])
def test_recovers_its_parameters_from_one_schedule(schedule):
    fit = fit_curves([synthetic(schedule)], decays=(0.95, DECAY, 0.999))
    recovered = ("L0", "A", "alpha") if schedule == "constant" else ("L0", "A", "alpha", "C")
    for name in recovered:  # a constant rate never anneals: C is not identifiable from it
        assert fit.params[name] == pytest.approx(TRUTH[name], rel=0.15), name
    if schedule != "constant":
        assert fit.decay == DECAY


def test_curves_of_two_schedules_predict_a_third_at_every_step():
    fit = fit_curves([synthetic("cosine", seed=1), synthetic("constant", seed=2)], n_resamples=50)
    wsd = synthetic("wsd", noise=0.0)
    pred = fit.predict(wsd, wsd.steps)
    past = wsd.steps > wsd.warmup_steps
    assert np.max(np.abs(pred[past] / wsd.loss[past] - 1)) < 0.01
    lo, hi = fit.interval(wsd, [STEPS])
    assert lo[0] <= pred[-1] <= hi[0] and hi[0] - lo[0] < 0.05 * pred[-1]


def test_too_few_points_and_steps_outside_the_schedule():
    curve = synthetic("cosine")
    with pytest.raises(FitError, match="4 parameters but the runs give 3 validation point"):
        fit_curves([curve.select(np.arange(len(curve.steps)) >= len(curve.steps) - 3)])
    fit = fit_curves([curve], decays=(DECAY,))
    with pytest.raises(FitError, match=f"step {STEPS + 1} is outside its schedule of {STEPS} steps"):
        fit.predict(curve, [STEPS + 1])
