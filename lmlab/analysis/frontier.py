"""The compute-efficient frontier of a study, from its runs' validation curves.

- The envelope: at each compute on a log grid, the lowest loss any run's curve reaches at or below
  it (curves interpolated in log C, log L), and the run and size that reach it.
- The law of the frontier: L = E + (Cc/C)^alpha_C fitted to the envelope where an interior size
  wins it (Kaplan's L(C_min) with an irreducible term; the pure power law when that fit fails).
- The compute-efficient stopping point of each size from Kaplan et al.'s L(N, S_min) =
  (Nc/N)^alpha_N + (Sc/S_min)^alpha_S, fitted to every validation point past warm-up, with
  S_min = S / (1 + B_crit(L)/B) (lmlab.analysis.study): the least loss for a given N x S_min (the
  compute at the critical batch, B_crit's own drift aside) is (1 + alpha_N/alpha_S) times the
  converged (Nc/N)^alpha_N, about 10% above it for Kaplan et al.'s exponents (their App. B.5). Steps,
  tokens and compute at that point are given at the critical batch and at the batch the runs used.

Only completed runs count (stopped or unfinished curves are kept out, as in `lmlab fit`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmlab.analysis.fit import Fit, fit_law
from lmlab.analysis.laws import KAPLAN_NS, get_law, kaplan_b_crit
from lmlab.analysis.study import KAPLAN_ALPHA_B, KAPLAN_B_STAR, completed_rows, law_data
from lmlab.errors import DataError, FitError
from lmlab.runspec import COMPUTE

MIN_RUNS = 2
MIN_STOPPING_SIZES = 3
MIN_LAW_POINTS = 6  # envelope points won by an interior size, below which the law uses them all


@dataclass
class Frontier:
    table: pd.DataFrame              # the envelope: compute, loss, run_id, n_params, law_loss
    law: Fit | None                  # the frontier law fitted to the envelope
    stopping: pd.DataFrame | None    # per size: the compute-efficient stopping point
    stopping_fit: Fit | None         # Kaplan's L(N, S_min) behind it
    curves: pd.DataFrame             # the validation points used (compute, loss, run_id, n_params)
    notes: list[str]                 # what could not be done, one line each

    def to_json(self) -> dict:
        def law_json(fit):
            return None if fit is None else {"law": fit.law.name, "formula": fit.law.formula, "params": fit.params,
                                             "converged": fit.converged}

        best = self.best_size_changes()
        return {"compute": COMPUTE, "grid_points": len(self.table), "runs": int(self.curves["run_id"].nunique()),
                "frontier_law": law_json(self.law), "stopping_law": law_json(self.stopping_fit),
                "best_size_from": [{"compute": float(r.compute), "n_params": float(r.n_params)} for r in best.itertuples()],
                "stopping": None if self.stopping is None else self.stopping.to_dict(orient="records"),
                "notes": self.notes}

    def best_size_changes(self) -> pd.DataFrame:
        """The envelope's rows where the best size changes (the first row included)."""
        return self.table[self.table["n_params"].ne(self.table["n_params"].shift())]

    def figure(self):
        """Every curve coloured by size, the envelope, its law and each size's stopping point."""
        from lmlab.analysis.plots import _colorbar, _size_colors, _subplots

        fig, ax = _subplots(figsize=(7.0, 4.6))
        norm, cmap = _size_colors(ax, self.curves["n_params"])
        for _, g in self.curves.sort_values("compute").groupby("run_id", sort=False):
            ax.plot(g["compute"], g["loss"], color=cmap(norm(g["n_params"].iloc[0])), lw=0.9, alpha=0.8)
        ax.plot(self.table["compute"], self.table["loss"], color="black", lw=2.2, label="envelope (lowest loss at C)")
        if self.law is not None:
            ax.plot(self.table["compute"], self.table["law_loss"], color="crimson", ls="--", lw=1.4,
                    label=f"frontier law ({self.law.law.formula.split('=', 1)[1].strip()})")
        if self.stopping is not None:
            ax.scatter(self.stopping["compute"], self.stopping["loss_stop"], marker="*", s=90, zorder=4,
                       c=cmap(norm(self.stopping["n_params"])), edgecolors="black", linewidths=0.6,
                       label="compute-efficient stop (Kaplan L(N, S))")
        ax.set(xscale="log", yscale="log", xlabel=f"compute C ({COMPUTE}, FLOPs)", ylabel="validation loss (nats/token)",
               title="Compute-efficient frontier")
        ax.legend(loc="upper right", fontsize=8)
        _colorbar(fig, ax, norm, cmap)
        return fig


def val_points(table: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """The validation points of the table's completed runs: run_id, step, tokens, compute, loss, sizes,
    with each run's warm-up steps (from schedule.warmup_frac and its planned steps) when the table has them."""
    runs, _ = completed_rows(table)
    missing = [c for c in ("run_id", "kind", "step", "tokens", COMPUTE, "loss", "n_params") if c not in curves.columns]
    if missing:
        raise DataError(f"curves table lacks column(s) {', '.join(missing)}; expected `lmlab runs collect`'s curves")
    pts = curves[(curves["kind"] == "val") & curves["run_id"].isin(runs["run_id"])].copy()
    pts = pts.rename(columns={COMPUTE: "compute"})
    pts = pts[(pts["compute"] > 0) & (pts["step"] > 0) & np.isfinite(pts["loss"])]
    if pts["run_id"].nunique() < MIN_RUNS:
        raise FitError(f"the frontier needs validation curves of at least {MIN_RUNS} completed runs; "
                       f"found {pts['run_id'].nunique()}")
    warm = pd.Series(0.0, index=runs["run_id"])
    if {"schedule.warmup_frac", "planned_steps"} <= set(runs.columns):
        warm = pd.Series((runs["schedule.warmup_frac"] * runs["planned_steps"]).to_numpy(dtype=float),
                         index=runs["run_id"]).fillna(0.0)
    pts["warmup_steps"] = pts["run_id"].map(warm).fillna(0.0)
    return pts.sort_values(["run_id", "step"]).reset_index(drop=True)


def envelope(pts: pd.DataFrame, n_grid: int = 60) -> pd.DataFrame:
    """At each compute of a log grid over the curves' span: the lowest loss reached at or below it
    (curves interpolated in log C, log L), and the run and size that reach it."""
    grid = np.geomspace(pts["compute"].min(), pts["compute"].max(), n_grid)
    best = np.full(n_grid, np.inf)
    who = np.full(n_grid, None, dtype=object)
    size = np.full(n_grid, np.nan)
    for run_id, g in pts.groupby("run_id"):
        c, l = np.log(g["compute"].to_numpy(float)), np.log(g["loss"].to_numpy(float))
        inside = (np.log(grid) >= c[0] - 1e-12) & (np.log(grid) <= c[-1] + 1e-12)
        loss = np.full(n_grid, np.inf)
        loss[inside] = np.exp(np.interp(np.log(grid[inside]), c, l))
        better = loss < best
        best[better], who[better], size[better] = loss[better], run_id, float(g["n_params"].iloc[0])
    for i in range(1, n_grid):  # a loss reached at less compute is reachable at more: the envelope never rises
        if best[i - 1] < best[i]:
            best[i], who[i], size[i] = best[i - 1], who[i - 1], size[i - 1]
    keep = np.isfinite(best)
    return pd.DataFrame({"compute": grid[keep], "loss": best[keep], "run_id": who[keep], "n_params": size[keep]})


def frontier_law(env: pd.DataFrame) -> Fit:
    """L = E + (Cc/C)^alpha_C on the envelope (or L = (Cc/C)^alpha_C when E cannot be fitted), on the
    points won by neither the smallest nor the largest size when there are enough (as in approach 1:
    there the smallest size's early transient or the largest's approach to its own limit, not the
    frontier, sets the envelope)."""
    sizes = env["n_params"]
    interior = env[(sizes > sizes.min()) & (sizes < sizes.max())]
    use = interior if len(interior) >= MIN_LAW_POINTS else env
    X, y = {"C": use["compute"].to_numpy(float)}, use["loss"].to_numpy(float)
    try:
        return fit_law(get_law("kaplan_c_e"), X, y, columns={"C": "compute", "L": "envelope loss"})
    except FitError:
        return fit_law(get_law("kaplan_c"), X, y, columns={"C": "compute", "L": "envelope loss"})


def stopping_points(pts: pd.DataFrame) -> tuple[pd.DataFrame, Fit]:
    """Kaplan's L(N, S_min) fitted to the points past warm-up; each size's compute-efficient stop."""
    use = pts[pts["step"] > pts["warmup_steps"]].assign(batch=lambda d: d["tokens"] / d["step"])
    n_col = ("n_params_nonembedding" if "n_params_nonembedding" in use and use["n_params_nonembedding"].notna().all()
             else "n_params")  # Kaplan's N is the non-embedding count
    if use[n_col].nunique() < MIN_STOPPING_SIZES:  # two sizes cannot separate alpha_N from the rest
        raise FitError(f"Kaplan's L(N, S_min) needs curves of at least {MIN_STOPPING_SIZES} sizes; "
                       f"found {use[n_col].nunique()}")
    data = law_data(use.rename(columns={"step": "steps", "loss": "final_val_loss"}), KAPLAN_NS, {"N": n_col})
    fit = fit_law(KAPLAN_NS, data.X, data.y, columns=data.sources)
    p = fit.params
    sizes = use.groupby(n_col).agg(n_params=("n_params", "first"), batch=("batch", "median"))
    n, n_total, batch = (sizes.index.to_numpy(float), sizes["n_params"].to_numpy(float),
                         sizes["batch"].to_numpy(float))
    converged = (p["Nc"] / n) ** p["alpha_N"]
    ratio = p["alpha_N"] / p["alpha_S"]
    # the least loss for a given N x S_min has (Sc/S_min)^alpha_S = ratio x the converged loss
    s_min = p["Sc"] * (ratio * converged) ** (-1.0 / p["alpha_S"])
    loss_stop = (1.0 + ratio) * converged
    b_crit = kaplan_b_crit(loss_stop, KAPLAN_B_STAR, KAPLAN_ALPHA_B)
    steps = s_min * (1.0 + b_crit / batch)  # S = S_min (1 + B_crit / B) at the runs' batch B
    table = pd.DataFrame({
        "n_params": n_total, "n_for_law": n, "loss_converged": converged, "loss_stop": loss_stop,
        "s_min": s_min, "b_crit_tokens": b_crit, "compute_at_b_crit": 6.0 * n_total * s_min * b_crit,
        "batch_tokens": batch, "steps": steps, "tokens": steps * batch, "compute": 6.0 * n_total * steps * batch})
    return table, fit


def frontier(table: pd.DataFrame, curves: pd.DataFrame, n_grid: int = 60) -> Frontier:
    """The frontier of a study (its runs table and the curves `lmlab runs collect` wrote beside it)."""
    pts = val_points(table, curves)
    env = envelope(pts, n_grid)
    notes = []
    law = None
    try:
        law = frontier_law(env)
        env["law_loss"] = law.predict(C=env["compute"].to_numpy(float))
    except FitError as err:
        notes.append(f"no frontier law: {err}")
        env["law_loss"] = np.nan
    stopping = stopping_fit = None
    try:
        stopping, stopping_fit = stopping_points(pts)
    except FitError as err:
        notes.append(f"no stopping points: {err}")
    return Frontier(table=env, law=law, stopping=stopping, stopping_fit=stopping_fit,
                    curves=pts[["run_id", "step", "tokens", "compute", "loss", "n_params"]], notes=notes)
