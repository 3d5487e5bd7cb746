"""Compute-optimal allocation: how to split a FLOP budget C = 6 N D between parameters and tokens."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmlab.errors import FitError


@dataclass(frozen=True)
class PowerLaw:
    """y = coef * x^exponent, fitted by least squares in log-log space."""

    coef: float
    exponent: float

    def __call__(self, x):
        return self.coef * np.asarray(x, dtype=float) ** self.exponent

    def to_json(self) -> dict:
        return {"coef": self.coef, "exponent": self.exponent}


def fit_power_law(x, y) -> PowerLaw:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or len(np.unique(x)) < 2:
        raise FitError(f"a power law needs at least 2 distinct x values, got {len(np.unique(x))}")
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    return PowerLaw(coef=float(np.exp(intercept)), exponent=float(slope))


def chinchilla_optimal(params: dict, flops):
    """Closed form minimiser of E + A/N^alpha + B/D^beta subject to 6 N D = C (Hoffmann et al. eq. 4).

    N_opt = G (C/6)^(beta/(alpha+beta)), D_opt = (C/6)^(alpha/(alpha+beta)) / G,
    G = (alpha A / (beta B))^(1/(alpha+beta)). Works elementwise on arrays of parameters.
    """
    alpha, beta = np.asarray(params["alpha"], dtype=float), np.asarray(params["beta"], dtype=float)
    A, B = np.asarray(params["A"], dtype=float), np.asarray(params["B"], dtype=float)
    half = np.asarray(flops, dtype=float) / 6.0
    g = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    n_opt = g * half ** (beta / (alpha + beta))
    return n_opt, half / n_opt
