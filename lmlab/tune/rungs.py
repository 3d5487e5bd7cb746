"""Is every rung of a ladder tuned? Two checks on each rung's short learning-rate scan.

Scaling laws hold on the tuned frontier: an under-tuned rung bends the fit (OLMo's ladder fits
penalise over-estimates for this reason). Each rung (one model size N) gets a few runs at learning
rates around the transferred value (muP, or a rule in N), and `check_rungs` flags a rung when
  - edge: its best learning rate is the lowest or highest it scanned, so the optimum may lie outside
    the scan (a diverged run at the next rate up brackets the optimum, so it counts as scanned);
  - above frontier: its best loss is more than `tolerance` (relative) above the frontier the other
    rungs imply: the power law (a straight line in log N, log L) between its two neighbours, or for
    the smallest and largest rung, through its two nearest rungs. Neighbours rather than a fit to
    all rungs, so that one under-tuned rung cannot bend the frontier that judges the others far
    away (a neighbour that is itself under-tuned lifts the line: it can hide a shortfall between
    them, and raise a false flag at the end of the ladder, where the neighbour is flagged too). On
    sizes a factor ~3 apart, the bend that the irreducible loss gives E + A/N^alpha puts this
    frontier within 2% of the truth at the ends and 1% inside: hence the default tolerance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmlab.errors import ConfigError

def lr_scan(centre: float, points: int = 5, factor: float = 2.0) -> list[float]:
    """A rung's tuning budget: `points` learning rates a `factor` apart, centred on the transferred value."""
    return [centre * factor ** (i - (points - 1) / 2) for i in range(points)]


def check_rungs(runs: pd.DataFrame, tolerance: float = 0.02, n: str = "n_params", lr: str = "lr",
                loss: str = "final_val_loss") -> pd.DataFrame:
    """runs: one row per run (a study table from `lmlab runs collect`, or any table naming its
    columns n, lr, loss; a NaN loss is a diverged run). Returns one row per rung: n, best_lr,
    best_loss, scanned, edge ('', 'lowest' or 'highest'), frontier_loss, excess, above_frontier,
    flag (a sentence, empty when the rung looks tuned)."""
    missing = [c for c in (n, lr, loss) if c not in runs.columns]
    if missing:
        raise ConfigError(f"rung scans: missing column(s) {', '.join(missing)}; expected columns {n}, {lr}, {loss}")
    scans = runs[[n, lr, loss]].set_axis(["n", "lr", "loss"], axis=1).astype(float)
    rungs = [_best(size, group) for size, group in scans.groupby("n", sort=True)]
    table = pd.DataFrame(rungs)
    table["frontier_loss"] = [_frontier(table, i) for i in range(len(table))]
    table["excess"] = table["best_loss"] / table["frontier_loss"] - 1
    table["above_frontier"] = table["excess"] > tolerance
    table["flag"] = [_flag(row, tolerance) for row in table.to_dict("records")]
    return table


def _best(n: float, group: pd.DataFrame) -> dict:
    lrs = np.sort(group["lr"].unique())
    finite = group[np.isfinite(group["loss"])]
    if finite.empty:
        return {"n": n, "best_lr": np.nan, "best_loss": np.nan, "scanned": len(lrs), "edge": "every run diverged"}
    best = finite.loc[finite["loss"].idxmin()]
    edge = "lowest" if best["lr"] == lrs[0] else "highest" if best["lr"] == lrs[-1] else ""
    return {"n": n, "best_lr": best["lr"], "best_loss": best["loss"], "scanned": len(lrs), "edge": edge}


def _frontier(table: pd.DataFrame, i: int) -> float:
    """The power law through rung i's neighbours (sorted by n), evaluated at its n."""
    others = table.drop(index=i)
    others = others[np.isfinite(others["best_loss"])]
    below, above = others[others["n"] < table.loc[i, "n"]], others[others["n"] > table.loc[i, "n"]]
    if len(below) and len(above):
        pair = pd.concat([below.tail(1), above.head(1)])
    else:
        pair = above.head(2) if len(above) else below.tail(2)
    if len(pair) < 2:
        return np.nan
    slope, intercept = np.polyfit(np.log(pair["n"]), np.log(pair["best_loss"]), 1)
    return float(np.exp(intercept + slope * np.log(table.loc[i, "n"])))


def _flag(row: dict, tolerance: float) -> str:
    flags = []
    if row["edge"]:
        flags.append(f"best lr {row['best_lr']:.3g} is the {row['edge']} scanned: widen the scan"
                     if row["edge"] in ("lowest", "highest") else row["edge"])
    if row["above_frontier"]:
        flags.append(f"best loss {row['best_loss']:.4f} is {row['excess']:.1%} above the frontier of the other "
                     f"rungs ({row['frontier_loss']:.4f}; tolerance {tolerance:.0%})")
    return "; ".join(flags)
