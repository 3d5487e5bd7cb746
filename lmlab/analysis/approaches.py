"""Chinchilla approaches 1 and 2: compute-optimal N and D straight from runs, without a loss law.

Approach 1 (training-curve envelope): at each compute, the run whose curve is lowest there gives
N_opt(C) and D_opt(C). Approach 2 (IsoFLOP profiles): runs sharing a compute budget trace loss
against log N; a parabola's minimum gives N_opt for that budget. Both end with power laws
N_opt = k C^a and D_opt = k' C^b. Approach 3 (the parametric law) lives in `fit.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lmlab.analysis.allocation import PowerLaw, fit_power_law
from lmlab.errors import FitError

MIN_SIZES_PER_ISOFLOP = 3


@dataclass
class Allocation:
    method: int
    n_opt: PowerLaw                   # N_opt(C)
    d_opt: PowerLaw                   # D_opt(C)
    flops: np.ndarray                 # the compute points behind the power laws
    n_points: np.ndarray
    d_points: np.ndarray
    loss_points: np.ndarray
    details: dict = field(default_factory=dict)
    samples: dict | None = None       # bootstrap: {"a": (K,), "b": (K,)}
    level: float = 0.95

    def intervals(self) -> dict[str, tuple[float, float]]:
        if self.samples is None:
            return {}
        tail = 50.0 * (1.0 - self.level)
        return {k: tuple(float(x) for x in np.nanpercentile(v, [tail, 100 - tail])) for k, v in self.samples.items()}

    def to_json(self) -> dict:
        return {"method": self.method, "a": self.n_opt.exponent, "b": self.d_opt.exponent,
                "N_opt": self.n_opt.to_json(), "D_opt": self.d_opt.to_json(),
                "points": {"C": self.flops.tolist(), "N_opt": self.n_points.tolist(),
                           "D_opt": self.d_points.tolist(), "L_min": self.loss_points.tolist()},
                "intervals": self.intervals(), **({"level": self.level} if self.samples else {}),
                "details": self.details}


def isoflop_groups(flops, rtol: float = 0.1) -> np.ndarray:
    """Label runs whose compute agrees within rtol (consecutive, after sorting) with one group id."""
    flops = np.asarray(flops, dtype=float)
    order = np.argsort(flops)
    jumps = np.r_[False, flops[order][1:] > flops[order][:-1] * (1.0 + rtol)]
    labels = np.empty(len(flops), dtype=int)
    labels[order] = np.cumsum(jumps)
    return labels


def approach2(n, flops, loss, groups=None, rtol: float = 0.1, window: float | None = None) -> Allocation:
    """IsoFLOP parabolas: per compute group, fit L = p2 (log N)^2 + p1 log N + p0 and take its minimum.

    window: fit each parabola only to the sizes within `window` x of the group's lowest-loss run, so
    that far-off sizes (where a parabola in log N no longer describes the profile) do not bias the
    minimum (Open-Athena's analysis shows the bias of off-centre grids)."""
    n, flops, loss = (np.asarray(v, dtype=float) for v in (n, flops, loss))
    groups = isoflop_groups(flops, rtol) if groups is None else np.asarray(groups)
    rows, skipped = [], []
    for g in np.unique(groups):
        sel = groups == g
        if window:
            best = np.flatnonzero(sel)[np.argmin(loss[sel])]
            sel &= np.abs(np.log(n / n[best])) <= np.log(window) + 1e-12
        budget = float(np.median(flops[sel]))
        if len(np.unique(n[sel])) < MIN_SIZES_PER_ISOFLOP:
            skipped.append({"C": budget, "why": f"{len(np.unique(n[sel]))} sizes, need {MIN_SIZES_PER_ISOFLOP}"})
            continue
        p2, p1, p0 = np.polyfit(np.log(n[sel]), loss[sel], 2)
        if p2 <= 0:
            skipped.append({"C": budget, "why": "parabola opens downward (no minimum)"})
            continue
        x_min = -p1 / (2 * p2)
        inside = bool(np.log(n[sel]).min() <= x_min <= np.log(n[sel]).max())
        rows.append((budget, float(np.exp(x_min)), float(p0 - p1 * p1 / (4 * p2)), [float(p2), float(p1), float(p0)], inside,
                     int(sel.sum())))
    if len(rows) < 2:
        raise FitError(f"approach 2 needs at least 2 IsoFLOP groups with >= {MIN_SIZES_PER_ISOFLOP} sizes and a "
                       f"minimum, found {len(rows)} (groups skipped: {skipped})")
    budgets, n_opt, l_min = (np.array([r[i] for r in rows]) for i in range(3))
    d_opt = budgets / (6.0 * n_opt)
    details = {"parabolas": [{"C": r[0], "coefs": r[3], "minimum_inside_range": r[4], "n_runs": r[5]} for r in rows],
               "skipped": skipped, "window": window}
    return Allocation(2, fit_power_law(budgets, n_opt), fit_power_law(budgets, d_opt), budgets, n_opt, d_opt,
                      l_min, details)


def approach1(run_ids, n, tokens, flops, loss, n_grid: int = 100) -> Allocation:
    """Training-curve envelope: for each compute on a log grid, the run with the lowest curve there.

    Curves are interpolated in (log C, log L). Grid points won by the smallest or the largest model are
    dropped: the true optimum may lie outside the sizes trained, so they would bias the power laws.
    """
    run_ids = np.asarray(run_ids)
    n, tokens, flops, loss = (np.asarray(v, dtype=float) for v in (n, tokens, flops, loss))
    runs = np.unique(run_ids)
    if len(runs) < 3:
        raise FitError(f"approach 1 needs curves from at least 3 runs, got {len(runs)}")
    grid = np.exp(np.linspace(np.log(flops.min()), np.log(flops.max()), n_grid))
    curve_loss = np.full((len(runs), n_grid), np.inf)
    curve_tokens = np.zeros((len(runs), n_grid))
    sizes = np.empty(len(runs))
    for i, run in enumerate(runs):
        sel = run_ids == run
        order = np.argsort(flops[sel])
        c, l, d = flops[sel][order], loss[sel][order], tokens[sel][order]
        sizes[i] = n[sel][0]
        inside = (grid >= c[0]) & (grid <= c[-1])
        curve_loss[i, inside] = np.exp(np.interp(np.log(grid[inside]), np.log(c), np.log(l)))
        curve_tokens[i, inside] = np.exp(np.interp(np.log(grid[inside]), np.log(c), np.log(d)))
    covered = np.isfinite(curve_loss).any(axis=0)
    winner = curve_loss.argmin(axis=0)
    interior = covered & (sizes[winner] > sizes.min()) & (sizes[winner] < sizes.max())
    if interior.sum() < 2:
        raise FitError("approach 1 found fewer than 2 compute points won by a model that is neither the smallest "
                       "nor the largest; expected a ladder whose optimum lies inside its sizes")
    cols = np.flatnonzero(interior)
    budgets, n_opt = grid[cols], sizes[winner[cols]]
    d_opt, l_min = curve_tokens[winner[cols], cols], curve_loss[winner[cols], cols]
    return Allocation(1, fit_power_law(budgets, n_opt), fit_power_law(budgets, d_opt), budgets, n_opt, d_opt,
                      l_min, {"grid_points": n_grid, "interior_points": int(interior.sum())})


def allocation_warnings(alloc: Allocation) -> list[str]:
    """Weak points of an allocation as one line each; an allocation that means nothing is an error."""
    a = alloc.n_opt.exponent
    if not 0.0 < a < 1.0:
        raise FitError(f"approach {alloc.method} gives N_opt ~ C^{a:.3g}; expected an exponent between 0 and 1 "
                       f"(both N and D grow with compute): the minima do not trace an allocation")
    out = []
    outside = [p["C"] for p in alloc.details.get("parabolas", []) if not p["minimum_inside_range"]]
    if outside:
        out.append(f"{len(outside)} IsoFLOP parabola(s) have their minimum outside the sizes trained (C = "
                   f"{', '.join(f'{c:.3g}' for c in outside)}): those N_opt are extrapolated; add sizes around them")
    for s in alloc.details.get("skipped", []):
        out.append(f"IsoFLOP budget C = {s['C']:.3g} skipped: {s['why']}")
    return out


def _fit_once(method, run_ids, columns, kwargs) -> Allocation:
    return approach1(run_ids, **columns, **kwargs) if method == 1 else approach2(**columns, **kwargs)


def bootstrap_allocation(method: int, run_ids, columns: dict, n_resamples: int = 1000, *, level: float = 0.95,
                         seed: int = 0, **kwargs) -> Allocation:
    """Approach 1 or 2 on all runs, plus its exponents refitted on n_resamples resamples of runs.

    `columns` holds the approach's per-row arrays (approach 1: n, tokens, flops, loss; approach 2:
    n, flops, loss and optionally groups); rows of one run move together.
    """
    run_ids = np.asarray(run_ids)
    columns = {k: np.asarray(v) for k, v in columns.items()}
    full = _fit_once(method, run_ids, columns, kwargs)
    runs = np.unique(run_ids)
    rows_of = [np.flatnonzero(run_ids == r) for r in runs]
    rng = np.random.default_rng(seed)
    a, b = np.full(n_resamples, np.nan), np.full(n_resamples, np.nan)
    for k in range(n_resamples):
        picked = rng.integers(len(runs), size=len(runs))
        idx = np.concatenate([rows_of[r] for r in picked])
        copy = np.concatenate([np.full(len(rows_of[r]), j) for j, r in enumerate(picked)])  # a run drawn twice is two curves
        try:
            res = _fit_once(method, copy, {c: v[idx] for c, v in columns.items()}, kwargs)
        except FitError:
            continue  # too few groups or interior points in this resample: left as NaN and counted
        a[k], b[k] = res.n_opt.exponent, res.d_opt.exponent
    full.samples, full.level = {"a": a, "b": b}, level
    full.details["bootstrap_failed"] = int(np.isnan(a).sum())
    return full
