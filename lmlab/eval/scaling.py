"""Predict a larger run's task accuracy from a study's smaller runs, with chained intervals.

Three links, each fitted on the study table's runs (`lmlab runs collect`, whose rows carry the
eval.<task>.<metric> columns of lmlab-eval): the loss law of the run's size (N, D -> L, Chinchilla
by default), the task loss as an affine function of the loss (the right answers' nats per token
follow the language-modelling loss closely on one corpus), and accuracy from the task loss (the OLMo
ladder's sigmoid, Bhagia et al. 2024). Draws are carried through the chain one by one: each draw of
the loss (a bootstrap-resampled law plus its calibrated extrapolation error) feeds a draw of the
task-loss link, that one a draw of the accuracy link, so the accuracy's interval holds the
uncertainty of every link (lmlab.analysis.extrapolation.honest_samples).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmlab.analysis.laws import Law, _grid
from lmlab.errors import FitError

CHAIN_DRAWS = 4000


class AffineTaskLoss(Law):
    """Task loss from the language-modelling loss: TL = c + s L."""

    name, formula, inputs, target, space = "task_loss_affine", "TL = c + s L", ("L",), "TL", "linear"
    theta_names = param_names = ("c", "s")

    def positive_inputs(self):
        return ()

    def prepare(self, X):
        return X["L"]

    def value_and_vjp(self, theta, loss):
        c, s = theta[:, 0, None], theta[:, 1, None]

        def vjp(dpred):
            return np.stack([dpred.sum(1), dpred @ loss], axis=1)

        return c + s * loss, vjp

    def to_params(self, theta):
        theta = np.asarray(theta, dtype=float)
        return {"c": theta[..., 0], "s": theta[..., 1]}

    def from_params(self, p):
        return np.array([p["c"], p["s"]], dtype=float).T

    def start_grid(self, X, y):
        return _grid((0.0, float(np.mean(y))), (0.5, 1.0, 2.0))


def fit_link(law: Law | str, X: dict, y: np.ndarray, columns: dict, n_resamples: int, level: float, seed: int):
    """A fitted law with its bootstrap (parameter noise) and, where backtests are possible, its
    extrapolation calibration."""
    from lmlab.analysis.extrapolation import calibrate
    from lmlab.analysis.fit import bootstrap, fit_law

    fit = fit_law(law, X, y, columns=columns)
    bootstrap(fit, n_resamples, level=level, seed=seed)
    fit.extrapolation = calibrate(fit)
    return fit


def predict_task_accuracy(table: pd.DataFrame, task: str, at: dict[str, float], *, metric: str = "accuracy",
                          loss_law: str = "chinchilla", columns: dict | None = None, level: float = 0.95,
                          n_resamples: int = 200, seed: int = 0) -> dict:
    """The accuracy (or another eval metric in [0, 1]) on `task` of a run at `at` (the loss law's inputs,
    e.g. {"N": 1e9, "D": 2e10}), from the completed runs of `table` that have eval.<task> columns.

    Returns {"loss", "task_loss", metric: {"value", "interval", "link_interval"}, "level", "n_runs", "at",
    "fits": {link: {"law", "params", "converged", "calibrated"}}}: each interval chains the links before
    it; link_interval is that link's own at the point prediction of its input (no upstream uncertainty)."""
    from lmlab.analysis.extrapolation import honest_interval, honest_samples
    from lmlab.analysis.laws import get_law
    from lmlab.analysis.study import column, completed_rows, law_data

    law = get_law(loss_law)
    missing = [k for k in law.inputs if k not in at]
    if missing:
        raise FitError(f"law {law.name!r} predicts from {', '.join(law.inputs)}; `at` lacks {', '.join(missing)}")
    rows, _ = completed_rows(table)
    tl_col, y_col = f"eval.{task}.task_loss", f"eval.{task}.{metric}"
    for col in (tl_col, y_col):
        if col not in rows.columns:
            raise FitError(f"column {col!r} is not in the table: evaluate the runs on {task} (lmlab-eval) and "
                           "collect them again")
    rows = rows[rows[tl_col].notna() & rows[y_col].notna()]
    data = law_data(rows, law, columns)
    links = {
        "loss": fit_link(law, data.X, data.y, data.sources, n_resamples, level, seed),
        "task_loss": fit_link(AffineTaskLoss(), {"L": data.y}, column(rows, tl_col), {"L": data.sources[law.target]},
                              n_resamples, level, seed),
        metric: fit_link("olmo_sigmoid", {"L": column(rows, tl_col)}, column(rows, y_col), {"L": tl_col},
                         n_resamples, level, seed),
    }
    rng = np.random.default_rng(seed)
    draws = {k: np.full(CHAIN_DRAWS, float(v)) for k, v in at.items()}
    point = {k: np.array([float(v)]) for k, v in at.items()}
    out = {"level": level, "n_runs": len(rows), "at": {k: float(v) for k, v in at.items()}, "fits": {}}
    tail = 50.0 * (1.0 - level)
    with np.errstate(all="ignore"):
        for name, fit in links.items():
            value, link_lo, link_hi = honest_interval(fit, level, **point)
            draws = {"L": honest_samples(fit, draws, CHAIN_DRAWS, rng, level)}
            point = {"L": value}
            lo, hi = np.nanpercentile(draws["L"], [tail, 100.0 - tail])
            out[name] = {"value": float(value[0]), "interval": [float(lo), float(hi)],
                         "link_interval": [float(link_lo[0]), float(link_hi[0])]}
            out["fits"][name] = {"law": fit.law.name, "params": fit.params, "converged": fit.converged,
                                 "calibrated": fit.extrapolation is not None and fit.extrapolation.kappa is not None}
    return out
