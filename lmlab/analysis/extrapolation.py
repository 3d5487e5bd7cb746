"""Prediction intervals that hold when extrapolating, calibrated by backtesting inside the fit set.

Why not the bootstrap alone: resampling runs measures how much the fitted parameters move, not how
wrong the law's form is. Real curves bend (exponents drift with scale), each size's
hyperparameters are a little off, and one run scatters about the law; an interval that ignores
this covers held-out larger runs far less often than it claims. So the interval shown by default
is measured on the fit's own data, the way it will be used: by extrapolating.

1. Scale axis x: log10 of compute (6ND for laws of N and D, C when the law has it, else the
   product of the law's scale inputs); for laws of the loss (error, accuracy), x = -L.
2. Backtests: at several cuts along x, the law is refitted (same objective, warm starts) on the
   points at or below the cut and predicts the points above it. Each gives a fit-space error e
   (log of predicted / actual for loss laws) at a distance d beyond that cut's largest fitted x.
3. Error model: e ~ N(0, s0^2 + (k d)^2). s0 is one run's scatter about the law (the full fit's
   residual RMS, corrected for its degrees of freedom); k is the growth of the error per unit of
   extrapolation (per decade of compute), by maximum likelihood from the backtest errors.
4. Calibration: the multiplier m for a level q is the larger of the normal quantile and the
   conformal q-quantile of the backtest scores |e| / sigma(d): Gaussian when the model holds,
   wider when the backtests say it does not.
5. Interval at x: prediction x exp(+-m sigma(d)), d = max(0, x - largest fitted x); never
   narrower than the parameter-only (bootstrap) interval; error and accuracy stay in [0, 1].

Backtests fit on less data and extrapolate from a smaller base than the full fit does, so k
errs on the large side: the interval is meant to be conservative. Nothing here is tuned to a
data set; its coverage is measured on synthetic ladders whose truth is not of the fitted form
(`synthetic.py`, bench/interval_coverage.py) and on published IsoFLOP studies
(experiments/honest-intervals/).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.stats import norm

from lmlab.analysis.fit import Fit, parameter_interval, refit_weighted
from lmlab.analysis.objective import to_fit_space

MAX_CUTS = 6
MIN_TRAIN_SHARE = 0.4        # a backtest fits on at least this share of the points...
MIN_TRAIN_PER_PARAM = 2      # ...and at least this many points per free parameter
LEVEL_DECIMALS = 2           # x values equal to this many decimals are one level (one budget)
GRID_STARTS = 64             # a share of the law's start grid joins the warm starts of each backtest
BOUNDED_TARGETS = ("Err", "Acc")


def axis(law, X: dict) -> tuple[np.ndarray, str]:
    """The scale along which a prediction extrapolates, and its name."""
    if law.space != "log":
        return -np.asarray(X["L"], dtype=float), "-L"
    if "C" in law.inputs:
        return np.log10(np.asarray(X["C"], dtype=float)), "log10 C"
    scale = [k for k in law.inputs if k in law.positive_inputs() and k != "M"]
    x = sum(np.log10(np.asarray(X[k], dtype=float)) for k in scale)
    if {"N", "D"} <= set(scale):
        return x + math.log10(6.0), "log10 C (6ND)"
    return x, "log10 " + "*".join(scale)


@dataclass
class Calibration:
    axis: str
    x_min: float
    x_max: float
    sigma0: float                     # one run's scatter about the law, fit space
    kappa: float | None               # error growth per unit of x beyond x_max; None: not measured
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))   # |e| / sigma(d) of backtest points
    backtests: list = field(default_factory=list)
    reason: str = ""                  # why kappa was not measured

    def sigma(self, x) -> np.ndarray:
        d = np.maximum(0.0, np.asarray(x, dtype=float) - self.x_max)
        return np.sqrt(self.sigma0 ** 2 + ((self.kappa or 0.0) * d) ** 2)

    def multiplier(self, level: float) -> float:
        z = float(norm.ppf(0.5 + level / 2.0))
        n = len(self.scores)
        if n == 0:
            return z
        rank = min(1.0, math.ceil((n + 1) * level) / n)
        return max(z, float(np.quantile(self.scores, rank, method="higher")))

    def to_json(self) -> dict:
        return {"axis": self.axis, "x_min": self.x_min, "x_max": self.x_max, "sigma0": self.sigma0,
                "kappa_per_unit": self.kappa, "multiplier_95": self.multiplier(0.95),
                "scores": self.scores.tolist(), "backtests": self.backtests, "reason": self.reason,
                "method": "backtests inside the fit set: e ~ N(0, sigma0^2 + (kappa d)^2), conformal multiplier"}

    @classmethod
    def from_json(cls, doc: dict) -> "Calibration":
        return cls(axis=doc["axis"], x_min=doc["x_min"], x_max=doc["x_max"], sigma0=doc["sigma0"],
                   kappa=doc["kappa_per_unit"], scores=np.asarray(doc["scores"], dtype=float),
                   backtests=doc["backtests"], reason=doc.get("reason", ""))


def scatter(fit: Fit) -> float:
    """One run's scatter about the law: residual RMS with a degrees-of-freedom correction."""
    r = fit.residuals()
    w = fit.row_weights
    dof = max(1.0, w.sum() - fit.n_free)
    return float(np.sqrt(np.sum(w * r * r) / dof))


def cuts(x: np.ndarray, n_free: int) -> list[float]:
    """Cut points along x (fit on x <= cut): whole levels, enough points to fit, some left to test."""
    levels = np.unique(np.round(x, LEVEL_DECIMALS))
    need = max(MIN_TRAIN_PER_PARAM * n_free, math.ceil(MIN_TRAIN_SHARE * len(x)), n_free + 2)
    ok = []
    for i, level in enumerate(levels[:-1]):
        train = np.round(x, LEVEL_DECIMALS) <= level
        if train.sum() >= need and i >= 1:   # at least two levels to fit on
            ok.append(float(level))
    if len(ok) > MAX_CUTS:
        ok = [ok[i] for i in np.unique(np.linspace(0, len(ok) - 1, MAX_CUTS).round().astype(int))]
    return ok


def calibrate(fit: Fit, *, max_iter: int = 1000, grid_starts: int = GRID_STARTS) -> Calibration:
    """Backtest the fit along its scale axis and return the calibration of its intervals.

    Each backtest starts from the fit's local minima and `grid_starts` evenly spread starts of the
    law's grid (a fresh full grid per backtest would cost as much as the fit, for the same answer)."""
    x, name = axis(fit.law, fit.X)
    base = Calibration(axis=name, x_min=float(x.min()), x_max=float(x.max()), sigma0=scatter(fit), kappa=None)
    at = cuts(x, fit.n_free)
    if not at:
        base.reason = (f"too few points or levels along {name} to backtest (need >= 3 levels and "
                       f">= {max(MIN_TRAIN_PER_PARAM * fit.n_free, fit.n_free + 2)} points below a cut)")
        return base
    level_x = np.round(x, LEVEL_DECIMALS)
    train = np.array([level_x <= c for c in at])
    thetas = _refit(fit, train * fit.row_weights, max_iter, grid_starts)
    errors, dists, backtests = [], [], []
    for k, c in enumerate(at):
        test = ~train[k]
        if not np.all(np.isfinite(thetas[k])):
            backtests.append({"cut": c, "n_fit": int(train[k].sum()), "failed": True})
            continue
        pred = fit.law.predict_theta(thetas[k], {n: v[test] for n, v in fit.X.items()})[0]
        e = to_fit_space(fit.law, pred) - to_fit_space(fit.law, fit.y[test])
        d = x[test] - x[train[k]].max()
        errors.append(e)
        dists.append(d)
        backtests.append({"cut": c, "n_fit": int(train[k].sum()), "n_test": int(test.sum()),
                          "max_distance": float(d.max()), "rms_error": float(np.sqrt(np.mean(e * e))),
                          "mean_error": float(np.mean(e))})
    base.backtests = backtests
    if not errors:
        base.reason = "every backtest fit failed"
        return base
    e, d = np.concatenate(errors), np.concatenate(dists)
    base.kappa = _growth(e, d, base.sigma0)
    base.scores = np.abs(e) / base.sigma(base.x_max + d)
    return base


def _refit(fit: Fit, weights: np.ndarray, max_iter: int, grid_starts: int) -> np.ndarray:
    """The law refitted under each weight row, from the fit's minima and a share of its grid."""
    grid = fit.law.start_grid(fit.X, fit.y)
    grid = grid[np.unique(np.linspace(0, len(grid) - 1, min(grid_starts, len(grid))).astype(int))]
    starts = np.vstack([fit.minima if fit.minima is not None else fit.theta[None], grid])[:, fit.free]
    return refit_weighted(fit, weights, np.unique(starts, axis=0), max_iter)[0]


def _growth(e: np.ndarray, d: np.ndarray, sigma0: float) -> float:
    """Maximum-likelihood k in e ~ N(0, sigma0^2 + (k d)^2) (k >= 0)."""
    s2 = max(sigma0, 1e-12) ** 2

    def nll(log_k):
        v = s2 + (math.exp(log_k) * d) ** 2
        return float(np.sum(np.log(v) + e * e / v))

    if not np.any(d > 0):
        return 0.0
    res = minimize_scalar(nll, bounds=(math.log(1e-8), math.log(10.0)), method="bounded")
    k = math.exp(res.x)
    return k if nll(res.x) < nll(math.log(1e-8)) else 0.0


def honest_interval(fit: Fit, level: float | None = None, **inputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point prediction and the interval that holds when extrapolating (see the module doc).

    Without a calibration (too few points to backtest) it is the run-scatter interval around the
    point, still widened to the parameter-only interval when the fit is bootstrapped."""
    level = level or (fit.bootstrap.level if fit.bootstrap is not None else 0.95)
    cal = fit.extrapolation or Calibration(axis="", x_min=np.nan, x_max=np.inf, sigma0=scatter(fit), kappa=None)
    point = fit.predict(**inputs)
    x, _ = axis(fit.law, inputs)
    half = cal.multiplier(level) * cal.sigma(x)
    centre = to_fit_space(fit.law, point)
    lo, hi = _from_fit_space(fit.law, centre - half), _from_fit_space(fit.law, centre + half)
    if fit.bootstrap is not None:
        _, p_lo, p_hi = parameter_interval(fit, **inputs)
        lo, hi = np.fmin(lo, p_lo), np.fmax(hi, p_hi)
    return point, *bounded(fit.law, lo, hi)


def honest_samples(fit: Fit, X: dict, n: int, rng: np.random.Generator, level: float = 0.95) -> np.ndarray:
    """n draws of the prediction at X (arrays of length n, one point per draw): a resampled law
    (or the fit) plus the calibrated extrapolation error, for chaining one law into another."""
    if fit.bootstrap is not None:
        thetas = fit.bootstrap.thetas[np.all(np.isfinite(fit.bootstrap.thetas), axis=1)]
    else:
        thetas = np.zeros((0, fit.law.n_params))
    thetas = thetas if len(thetas) else fit.theta[None]
    thetas = thetas[rng.integers(len(thetas), size=n)]
    pred = fit.law.predict_paired(thetas, X)
    cal = fit.extrapolation or Calibration(axis="", x_min=np.nan, x_max=np.inf, sigma0=scatter(fit), kappa=None)
    x, _ = axis(fit.law, X)
    spread = cal.sigma(x) * cal.multiplier(level) / float(norm.ppf(0.5 + level / 2.0))
    out = _from_fit_space(fit.law, to_fit_space(fit.law, pred) + spread * rng.standard_normal(n))
    return np.clip(out, 0.0, 1.0) if fit.law.target in BOUNDED_TARGETS else out


def _from_fit_space(law, v):
    return np.exp(v) if law.space == "log" else v


def bounded(law, lo, hi):
    """Error and accuracy intervals never leave [0, 1]."""
    if law.target in BOUNDED_TARGETS:
        return np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)
    return lo, hi


def beyond_evidence(cal: Calibration | None, x: float, what: str = "the prediction") -> str | None:
    """A warning when x lies further beyond the fitted range than the fit itself spans."""
    if cal is None or not math.isfinite(cal.x_max):
        return None
    span, d = cal.x_max - cal.x_min, float(x) - cal.x_max
    if d <= max(span, 0.0):
        return None
    unit = "decade(s) of compute" if cal.axis.startswith("log10") else f"units of {cal.axis}"
    return (f"{what} extrapolates {d:.2g} {unit} beyond the largest fitted run, further than the {span:.2g} the "
            f"fit spans: weakly supported (the interval grows with the distance; a larger run would tell)")


def distance(cal: Calibration | None, x: float) -> float | None:
    """How far beyond the fitted range x lies (0 inside it), in units of the calibration's axis."""
    return None if cal is None or not math.isfinite(cal.x_max) else max(0.0, float(x) - cal.x_max)
