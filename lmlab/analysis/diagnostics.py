"""Residual diagnostics: how far, and how systematically, a fitted law misses its own data."""

from __future__ import annotations

import numpy as np

from lmlab.analysis.fit import Fit


def residual_summary(fit: Fit) -> dict:
    """Summary of fit-space residuals (log-loss for loss laws), the relative error in natural units,
    and the slope of the residuals against each input's log: a trend means the form is wrong."""
    r = fit.residuals()
    pred = fit.law.predict_theta(fit.theta, fit.X)[0]
    out = {
        "space": fit.law.space,
        "n": int(len(r)),
        "mean": float(r.mean()),
        "std": float(r.std(ddof=1)) if len(r) > 1 else 0.0,
        "rmse": float(np.sqrt(np.mean(r * r))),
        "max_abs": float(np.abs(r).max()),
        "mean_abs_rel_error": float(np.mean(np.abs(pred - fit.y) / np.abs(fit.y))),
    }
    for name, values in fit.X.items():
        x = np.log(values) if name in fit.law.positive_inputs() else values
        if np.ptp(x) > 0:
            out[f"trend_vs_{'log_' if name in fit.law.positive_inputs() else ''}{name}"] = float(np.polyfit(x, r, 1)[0])
    return out


# Guard-rail thresholds: loose on purpose (they flag fits that are not identified, not fits that
# differ from the papers). Published loss-law exponents lie within 0.05-1.
MAX_PLAUSIBLE_EXPONENT = 2.0
MIN_EXPONENT = 1e-2
MIN_E_SHARE = 0.02            # E below this share of the lowest loss sits at its bound, 0
MIN_STARTS_AT_OPTIMUM = 3


def fit_warnings(fit: Fit) -> list[str]:
    """One line per reason to distrust the fit: a parameter at a bound, an optimum that few starts
    reach, or barely more points than parameters."""
    out = []
    theta = dict(zip(fit.law.theta_names, fit.theta))
    for name in fit.law.positive_theta:
        if name in fit.fixed:
            continue
        if theta[name] > MAX_PLAUSIBLE_EXPONENT:
            out.append(f"{name} = {theta[name]:.3g} is far above any published exponent (0.05-1): the runs do "
                       f"not identify it; add sizes or budgets, or pin a parameter (--pin)")
        elif theta[name] < MIN_EXPONENT:
            out.append(f"{name} = {theta[name]:.3g} sits at its bound (0): the loss barely falls along it")
    if "log_E" in theta and "log_E" not in fit.fixed and np.exp(theta["log_E"]) < MIN_E_SHARE * np.min(fit.y):
        out.append(f"E = {np.exp(theta['log_E']):.3g} sits at its bound (0): the irreducible loss is not "
                   f"identified by these runs; pin it (--pin E=...) or add larger runs")
    if fit.n_starts >= 10 * MIN_STARTS_AT_OPTIMUM and fit.n_at_optimum < MIN_STARTS_AT_OPTIMUM:
        out.append(f"only {fit.n_at_optimum} of {fit.n_starts} starts reach the best optimum: the fit is "
                   f"fragile (see --compare)")
    if len(fit.y) < 2 * fit.n_free:
        out.append(f"{len(fit.y)} points for {fit.n_free} parameters: the fit is weakly determined")
    return out
