"""A metric against scale across a study: a log-linear trend (y = a + b log10 x) and its figure.

Shared by the bias audit and the compression study: both ask whether a larger model (or more
compute) will score higher or lower before that model is trained. `bias_figure` draws the bias
metrics of a study table: the table of `lmlab audit bias -o`, or a collected runs table whose runs
were audited along training (audit.<metric> columns, prefix "audit.").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmlab.io import atomic_path
from lmlab.runs.record import RunRecord

SCALES = {"n_params": "parameters N", "flops_6n": "compute C (FLOPs, 6ND)"}


def run_scale(run_dir) -> dict:
    """A run's id, size and compute from its records: result.json when it finished, else plan.json
    and the tokens status.json says it reached (an audit can run mid-training)."""
    rec = RunRecord(Path(run_dir))
    result, plan, status = rec.result() or {}, rec.plan() or {}, rec.status() or {}
    tokens = result.get("tokens", status.get("tokens"))
    fpt = result.get("flops_per_token_6n", plan.get("flops_per_token_6n"))
    return {"run_dir": str(run_dir), "run_id": result.get("run_id", plan.get("run_id", Path(run_dir).name)),
            "model": result.get("model"), "n_params": result.get("n_params", plan.get("n_params")),
            "n_params_nonembedding": result.get("n_params_nonembedding", plan.get("n_params_nonembedding")),
            "tokens": tokens, "flops_6n": tokens * fpt if tokens is not None and fpt is not None else None}


def loglinear(x, y) -> dict | None:
    """Least-squares y = intercept + slope * log10(x) over the finite points; None with fewer than two
    distinct x."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0)
    if len(np.unique(x[ok])) < 2:
        return None
    lx = np.log10(x[ok])
    slope, intercept = np.polyfit(lx, y[ok], 1)
    resid = y[ok] - (intercept + slope * lx)
    total = np.sum((y[ok] - y[ok].mean()) ** 2)
    return {"slope_per_decade": float(slope), "intercept": float(intercept), "points": int(ok.sum()),
            "r2": float(1 - np.sum(resid**2) / total) if total > 0 else None}


def trends(df, metrics: list[str]) -> dict:
    """metric -> scale -> its log-linear fit (see loglinear)."""
    return {m: {s: loglinear(df[s], df[m]) for s in SCALES if s in df} for m in metrics if m in df}


def figure(df, metrics: list[str], labels: dict[str, str], series: str | None = None):
    """One row per metric, one column per scale: the points and each fitted line (one per value of
    `series` when given)."""
    from matplotlib.figure import Figure

    scales = [s for s in SCALES if s in df and df[s].notna().any()]
    fig = Figure(figsize=(5.2 * len(scales), 3.6 * len(metrics)))
    axes = np.atleast_2d(fig.subplots(len(metrics), len(scales), squeeze=False))
    groups = list(df.groupby(series, sort=True)) if series else [(None, df)]
    for row, metric in enumerate(metrics):
        for col, scale in enumerate(scales):
            ax = axes[row, col]
            for name, part in groups:
                fit = loglinear(part[scale], part[metric])
                label = "" if name is None else f"{name} "
                if fit:
                    label += f"slope {fit['slope_per_decade']:+.3g}/decade"
                    xs = np.geomspace(part[scale].min(), part[scale].max(), 50)
                    line = ax.plot(xs, fit["intercept"] + fit["slope_per_decade"] * np.log10(xs), lw=1)[0]
                    ax.scatter(part[scale], part[metric], color=line.get_color(), s=18, label=label)
                else:
                    ax.scatter(part[scale], part[metric], s=18, label=label or None)
            ax.set_xscale("log")
            ax.set_xlabel(SCALES[scale])
            ax.set_ylabel(labels.get(metric, metric))
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[1]:
                ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def save_png(fig, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    return path


def bias_metrics(df, prefix: str = "") -> list[str]:
    """The bias metrics a study table holds values for: the stereotype share, then each dimension's gap."""
    names = [c for c in df.columns if c == f"{prefix}stereotype_share" or c.startswith(f"{prefix}gap.")]
    return [c for c in names if df[c].notna().any()]


def bias_figure(df, path: str | Path, prefix: str = "") -> dict:
    """The bias metrics of `df` against parameters and compute with their log-linear trends, saved as a
    PNG at `path`; returns metric -> scale -> trend ({} and no figure when `df` has no bias metric)."""
    metrics = bias_metrics(df, prefix)
    if not metrics:
        return {}
    labels = {m: ("share preferring the stereotype" if m.endswith("stereotype_share")
                  else f"{m.removeprefix(prefix + 'gap.')}: preference gap (nats)") for m in metrics}
    save_png(figure(df, metrics, labels), path)
    return trends(df, metrics)
