"""Forecast where one run will end from its partial loss curve, L(D) = E + B D^-beta.

A library function for notebooks and scripts (no lmlab command calls it yet): it tells when a run
is hopeless (the forecast's whole interval is above a target) and finds Kaplan et al.'s
compute-efficient stopping point (their App. B.5: stop about 10% above the converged loss E). The interval resamples curve points, which ignores their correlation along the
curve, and a run whose learning rate still has to decay (cosine, WSD) will end lower than a
constant-rate extrapolation: read the forecast as a bound for such runs, not a point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmlab.analysis.fit import Fit, bootstrap, fit_law
from lmlab.analysis.laws import CURVE
from lmlab.errors import FitError


@dataclass
class Forecast:
    final_tokens: float
    loss: float
    lo: float
    hi: float
    fit: Fit

    def hopeless(self, target_loss: float) -> bool:
        """True when even the optimistic end of the interval misses the target: stop the run."""
        return self.lo > target_loss


def forecast_run(tokens, losses, final_tokens: float, *, min_tokens: float = 0.0, n_resamples: int = 200,
                 level: float = 0.95, seed: int = 0) -> Forecast:
    """Fit the curve law to the points at or past min_tokens (set it to the end of warm-up: that
    transient fits no power law) and predict the loss at final_tokens. The law needs the curve's
    span in log D: over a decade or less, E and beta trade off and the forecast is loose."""
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
