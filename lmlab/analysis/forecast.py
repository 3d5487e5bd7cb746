"""Forecast where a run will end from its loss curve so far.

Two laws. `forecast_curve` uses the schedule-aware curve law (lmlab.analysis.curve_law): it knows
that a cosine or WSD run's loss keeps falling as its learning rate decays, and it fits the run's
points together with the completed runs of the same size in its study (other schedules, budgets or
seeds share the law's parameters), which is what makes an early forecast of a small run hold.
`forecast_run` is the constant-rate baseline L(D) = E + B D^-beta: for a decaying schedule it is a
bound, not a prediction. Both intervals resample curve points (or runs, given five or more), which
ignores the points' correlation along a curve; the schedule-aware one also covers the scatter of one
validation about the law (the fit's RMS residual), since the loss it is checked against carries it. `compute_efficient_tokens` is Kaplan et al.'s
compute-efficient stopping point (their App. B.5: stop about 10% above the converged loss E).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import NormalDist
from pathlib import Path

import numpy as np

from lmlab.analysis.curve_law import Curve, fit_curves, load_curve
from lmlab.analysis.fit import Fit, bootstrap, fit_law
from lmlab.analysis.laws import CURVE
from lmlab.errors import DataError, FitError

# Fewer validation points past warm-up than this in the run itself: no forecast yet.
MIN_OWN_POINTS = 3


@dataclass
class Forecast:
    final_tokens: float
    loss: float
    lo: float
    hi: float
    fit: Fit
    final_step: int | None = None
    upto_step: int | None = None           # the last step of the curve the forecast used
    actual: float | None = None            # the run's final validation loss, when it has one
    runs_used: list[str] = field(default_factory=list)   # the run itself first, then study runs

    def hopeless(self, target_loss: float) -> bool:
        """True when even the optimistic end of the interval misses the target: stop the run."""
        return self.lo > target_loss

    def to_json(self) -> dict:
        out = {"forecast": self.loss, "interval": [self.lo, self.hi], "level": _level(self.fit),
               "final_step": self.final_step, "final_tokens": self.final_tokens, "upto_step": self.upto_step,
               "law": self.fit.law.name, "params": self.fit.params, "runs_used": self.runs_used}
        if self.actual is not None:
            out.update(actual=self.actual, error=self.loss / self.actual - 1.0,
                       covered=bool(self.lo <= self.actual <= self.hi))
        return out


def _level(fit: Fit) -> float | None:
    return fit.bootstrap.level if fit.bootstrap is not None else None


def forecast_curve(curve: Curve, *, upto: float | None = None, study: list[Curve] = (), n_resamples: int = 200,
                   level: float = 0.95, seed: int = 0) -> Forecast:
    """The run's loss at its last planned step, from its validation points (those up to `upto` x its
    planned steps when given) and the completed runs `study` of the same size."""
    if upto is not None and not 0.0 < upto <= 1.0:
        raise FitError(f"upto={upto!r}; expected a fraction of the run's planned steps in (0, 1]")
    final = curve.total_steps
    seen = curve.upto(upto) if upto is not None else curve
    own = len(seen.past_warmup().steps)
    if own < MIN_OWN_POINTS:
        raise FitError(f"run {curve.run_id} has {own} validation point(s) past warm-up"
                       f"{f' in its first {upto:g}' if upto is not None else ''}; expected at least {MIN_OWN_POINTS}")
    same = [c for c in study if c.run_id != curve.run_id and c.n_params == curve.n_params]
    cf = fit_curves([seen, *same], n_resamples=n_resamples, level=level, seed=seed)
    lo, hi = cf.interval(curve, [final])
    # the law's interval, widened by the scatter of one validation about it (what "actual" will carry)
    spread = NormalDist().inv_cdf(0.5 + level / 2) * float(np.sqrt(np.mean(cf.fit.residuals() ** 2)))
    lo, hi = lo * np.exp(-spread), hi * np.exp(spread)
    reached = len(curve.steps) and curve.steps[-1] == final
    return Forecast(final_tokens=final * curve.tokens_per_step, loss=float(cf.predict(curve, [final])[0]),
                    lo=float(lo[0]), hi=float(hi[0]), fit=cf.fit, final_step=final,
                    upto_step=int(seen.steps[-1]), actual=float(curve.loss[-1]) if reached else None,
                    runs_used=[curve.run_id, *[c.run_id for c in same]])


def study_curves(run_dir: str | Path) -> list[Curve]:
    """The completed runs beside `run_dir` (its group: the study it belongs to), as curves."""
    from lmlab.runs.record import find_runs

    run_dir = Path(run_dir).resolve()
    out = []
    for other in find_runs(run_dir.parent):
        if other.resolve() == run_dir:
            continue
        try:
            curve = load_curve(other)
        except (DataError, ValueError):  # an unreadable neighbour does not stop this run's forecast
            continue
        if curve.status == "completed":
            out.append(curve)
    return out


def forecast_run(tokens, losses, final_tokens: float, *, min_tokens: float = 0.0, n_resamples: int = 200,
                 level: float = 0.95, seed: int = 0) -> Forecast:
    """Fit the constant-rate curve law to the points at or past min_tokens (set it to the end of
    warm-up: that transient fits no power law) and predict the loss at final_tokens. The law needs
    the curve's span in log D: over a decade or less, E and beta trade off and the forecast is loose."""
    tokens, losses = np.asarray(tokens, dtype=float), np.asarray(losses, dtype=float)
    if not final_tokens > 0:
        raise FitError(f"final_tokens={final_tokens!r}; expected a positive token count")
    keep = tokens >= min_tokens
    fit = fit_law(CURVE, {"D": tokens[keep]}, losses[keep], columns={"D": "tokens", "L": "loss"})
    boot = bootstrap(fit, n_resamples, level=level, seed=seed)  # points of one curve: each its own "run"
    lo, hi = boot.interval(CURVE.predict_theta(boot.thetas, {"D": np.array([final_tokens])})[:, 0])
    return Forecast(final_tokens=float(final_tokens), loss=float(fit.predict(D=final_tokens)[0]),
                    lo=float(lo), hi=float(hi), fit=fit)


def compute_efficient_tokens(params: dict, overshoot: float = 0.10) -> float:
    """Tokens at which E + B D^-beta is (1 + overshoot) E: Kaplan et al.'s compute-efficient stop."""
    if not overshoot > 0:
        raise FitError(f"overshoot={overshoot!r}; expected a positive fraction of the converged loss")
    return float((params["B"] / (overshoot * params["E"])) ** (1.0 / params["beta"]))
