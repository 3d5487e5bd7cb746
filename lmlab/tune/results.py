"""A study's optimisation history: a table of trials, a summary, and figures.

  trials.csv      one row per trial: number, state, value, best so far, the parameters, the run
                  directory, planned and used FLOPs, why it was pruned or failed
  summary.json    counts by state, the best trial, and the compute pruning saved
  history.png     the objective of each trial and the best so far
  slices.png      the objective against each parameter
  importance.png  each parameter's share of the objective's variance (Optuna's PED-ANOVA evaluator,
                  which needs no scikit-learn), once two trials completed
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from lmlab.io import write_atomic, write_json, write_table


def trials_table(study):
    import pandas as pd

    rows, best = [], None
    better = min if study.direction.name == "MINIMIZE" else max
    interrupted = set(study.user_attrs.get("interrupted", []))
    for t in study.get_trials(deepcopy=False):
        value = t.value if t.state.name == "COMPLETE" else None
        if value is not None:
            best = value if best is None else better(best, value)
        pruned = t.user_attrs.get("pruned") or {}
        planned = t.user_attrs.get("flops_planned")
        used = pruned.get("flops_used", planned if t.state.name == "COMPLETE" else None)
        rows.append({
            "number": t.number, "state": "interrupted" if t.number in interrupted else t.state.name.lower(),
            "value": value, "best_so_far": best,
            **{f"param.{k}": v for k, v in t.params.items()},
            "last_val_loss": value if value is not None else _last_reported(t),
            "pruned_at_milestone": pruned.get("milestone"), "flops_planned": planned, "flops_used": used,
            "duration_s": t.duration.total_seconds() if t.duration else None,
            "run_dir": t.user_attrs.get("run_dir"), "failure": t.user_attrs.get("failure"),
        })
    return pd.DataFrame(rows)


def _last_reported(trial) -> float | None:
    values = trial.intermediate_values
    return values[max(values)] if values else None


def summary(study, table) -> dict:
    counts = table["state"].value_counts().to_dict()
    pruned = table[table["state"] == "pruned"]
    planned = table["flops_planned"].dropna().sum()
    saved = (pruned["flops_planned"] - pruned["flops_used"]).dropna().sum()
    complete = table[table["state"] == "complete"]
    best = None
    if len(complete):
        row = study.best_trial
        best = {"number": row.number, "value": row.value, "params": row.params, "run_dir": row.user_attrs.get("run_dir")}
    return {
        "study": study.study_name, "direction": study.direction.name.lower(), "trials": len(table),
        "complete": counts.get("complete", 0), "pruned": counts.get("pruned", 0), "failed": counts.get("fail", 0),
        "interrupted": counts.get("interrupted", 0), "best": best,
        "flops_planned": planned, "flops_saved": saved, "flops_saved_frac": saved / planned if planned else 0.0,
    }


def importance(study) -> dict[str, float]:
    """Each searched parameter's importance (sums to 1); empty before two trials completed."""
    import optuna

    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(complete) < 2:
        return {}
    try:
        return optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())
    except (RuntimeError, ValueError):  # every completed trial took the same values: nothing to rank
        return {}


def write_report(study, out_dir: str | Path) -> dict:
    """The table, the summary and the figures into out_dir; returns the summary."""
    from lmlab.analysis.plots import png_bytes

    out = Path(out_dir)
    table = trials_table(study)
    result = {**summary(study, table), "importance": importance(study)}
    write_table(table, out / "trials.csv")
    write_json(out / "summary.json", result)
    figures = {"history": history_figure(table), "slices": slices_figure(table)}
    if result["importance"]:
        figures["importance"] = importance_figure(result["importance"])
    for name, fig in figures.items():
        write_atomic(out / f"{name}.png", png_bytes(fig))
    return result


def history_figure(table) -> Figure:
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    for state, marker, color in (("complete", "o", "C0"), ("pruned", "x", "C3")):
        rows = table[table["state"] == state]
        y = rows["value"] if state == "complete" else rows["last_val_loss"]
        ax.scatter(rows["number"], y, marker=marker, color=color, label=state if len(rows) else None)
    ax.step(table["number"], table["best_so_far"], where="post", color="k", label="best so far")
    ax.set(xlabel="trial", ylabel="final validation loss (pruned: last reported)", title="optimisation history")
    ax.legend()
    return fig


def slices_figure(table) -> Figure:
    params = [c for c in table.columns if c.startswith("param.")]
    cols = min(4, max(1, len(params)))
    rows = -(-max(1, len(params)) // cols)
    fig = Figure(figsize=(3.2 * cols, 3.0 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, sharey=True)).ravel()
    done = table[table["state"] == "complete"]
    for ax in axes[len(params):]:
        ax.set_visible(False)
    for ax, col in zip(axes, params):
        x = done[col]
        numeric = x.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)).all()
        xs = x if numeric else x.astype(str)
        ax.scatter(xs, done["value"], c=done["number"], cmap="viridis")
        if numeric and len(x) and (x > 0).all() and x.max() / x.min() > 20:
            ax.set_xscale("log")
        ax.set_xlabel(col.removeprefix("param."))
    for ax in axes[::cols]:
        ax.set_ylabel("final validation loss")
    fig.suptitle("objective by parameter (colour: trial number)")
    return fig


def importance_figure(importances: dict[str, float]) -> Figure:
    fig = Figure(figsize=(6.4, 0.5 + 0.4 * len(importances)))
    ax = fig.subplots()
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names])
    ax.set(xlabel="importance (PED-ANOVA, share)", title="parameter importance")
    return fig
