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
