"""Synthetic ladders whose truth is NOT of the fitted form, to measure how often intervals hold.

A Chinchilla-like truth whose exponents drift with scale, L = E + A/N^alpha(N) + B/D^beta(D) with
alpha(N) = alpha0 + s_N log10(N / 1e8) and beta(D) = beta0 + s_D log10(D / 1e9), sampled on an
IsoFLOP ladder of registered sizes. Each size carries its own offset (its hyperparameters are a
little off, the same at every budget) and each run its own noise. `score_intervals` fits all
budgets but the largest, then scores the default and the parameter-only intervals on the largest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmlab.analysis.allocation import chinchilla_optimal


def random_truth(rng: np.random.Generator) -> dict:
    """A truth drawn around published fits, with drifting exponents and noise of realistic size."""
    return {"E": rng.uniform(1.5, 2.1), "A": rng.uniform(250, 800), "B": rng.uniform(800, 4000),
            "alpha": rng.uniform(0.28, 0.42), "beta": rng.uniform(0.26, 0.40),
            "drift_N": rng.uniform(-0.03, 0.03), "drift_D": rng.uniform(-0.03, 0.03),
            "size_noise": rng.uniform(0.002, 0.008), "run_noise": rng.uniform(0.002, 0.006)}


def true_loss(truth: dict, n, d) -> np.ndarray:
    n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
    alpha = truth["alpha"] + truth["drift_N"] * np.log10(n / 1e8)
    beta = truth["beta"] + truth["drift_D"] * np.log10(d / 1e9)
    return truth["E"] + truth["A"] / n ** alpha + truth["B"] / d ** beta


def ladder(rng: np.random.Generator, truth: dict | None = None, budgets=None, sizes_per_decade: int = 4,
           spread: float = 8.0) -> pd.DataFrame:
    """IsoFLOP runs: per budget, the registered sizes within `spread`x of the optimum, each size
    with its offset, each run with its noise. Columns as a runs table (run_id, n_params, tokens,
    flops_6n, final_val_loss) plus true_loss (the expected loss without noise)."""
    truth = truth or random_truth(rng)
    budgets = np.geomspace(1e18, 1e21, 7) if budgets is None else np.asarray(budgets, dtype=float)
    base = {k: truth[k] for k in ("E", "A", "B", "alpha", "beta")}
    n_lo, _ = chinchilla_optimal(base, budgets.min())
    n_hi, _ = chinchilla_optimal(base, budgets.max())
    registry = 10 ** np.arange(np.log10(n_lo / spread), np.log10(n_hi * spread), 1.0 / sizes_per_decade)
    offsets = np.exp(truth["size_noise"] * rng.standard_normal(len(registry)))
    rows = []
    for c in budgets:
        n_opt, _ = chinchilla_optimal(base, c)
        for j in np.flatnonzero((registry >= n_opt / spread) & (registry <= n_opt * spread)):
            n = registry[j]
            d = c / (6.0 * n)
            clean = float(true_loss(truth, n, d))
            loss = clean * offsets[j] * np.exp(truth["run_noise"] * rng.standard_normal())
            rows.append({"run_id": f"C{c:.3g}-N{n:.3g}", "n_params": n, "tokens": d, "flops_6n": c,
                         "final_val_loss": loss, "true_loss": clean})
    return pd.DataFrame(rows)


def score_intervals(runs: pd.DataFrame, *, level: float = 0.95, n_resamples: int = 0, starts=None,
                    seed: int = 0, grid_starts: int | None = None) -> dict:
    """Fit on every budget but the largest; for the largest budget's runs, whether the default
    (extrapolation) and the parameter-only intervals hold the actual loss, and their half-widths
    relative to the prediction."""
    from lmlab.analysis.extrapolation import calibrate, honest_interval
    from lmlab.analysis.fit import bootstrap, fit_law, parameter_interval

    c = runs["flops_6n"].to_numpy()
    held = np.isclose(c, c.max(), rtol=1e-6)
    X = {"N": runs["n_params"].to_numpy(), "D": runs["tokens"].to_numpy()}
    y = runs["final_val_loss"].to_numpy()
    fit = fit_law("chinchilla", {k: v[~held] for k, v in X.items()}, y[~held], starts=starts)
    fit.extrapolation = calibrate(fit) if grid_starts is None else calibrate(fit, grid_starts=grid_starts)
    probe = {k: v[held] for k, v in X.items()}
    out = {}
    if n_resamples:
        bootstrap(fit, n_resamples, level=level, seed=seed)
        point, lo, hi = parameter_interval(fit, **probe)
        out["param_covered"], out["param_half_width"] = (y[held] >= lo) & (y[held] <= hi), (hi - lo) / (2 * point)
    point, lo, hi = honest_interval(fit, level, **probe)
    out["covered"], out["half_width"] = (y[held] >= lo) & (y[held] <= hi), (hi - lo) / (2 * point)
    out["rel_error"] = (point - y[held]) / y[held]
    return out
