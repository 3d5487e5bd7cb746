"""`lmlab runs collect DIR... -o study.parquet`: run directories -> a runs table and a curves table.

Runs table: one row per run with the flattened config (dotted keys: model.size, optim.lr, ...), the
result (n_params, n_params_nonembedding, tokens, flops_6n, flops_exact, final_val_loss, ...), the
status and its reason, and the last point of the metrics (last_tokens, last_val_loss, ...), so
running, failed and preempted runs are kept and labelled, never dropped. An evaluated run also has
its task results (eval.json) as eval.<task>.<metric> columns (lmlab.eval.results.eval_columns), and a
run audited along training its last bias audit as audit.<metric> columns (lmlab.audit.curve.audit_columns).
A planned run has its prediction (prediction.loss, .lo, .hi, ...) and, once completed, its score
(prediction.inside, prediction.error_pct; lmlab.runs.predictions).
Curves table (long form): run_id, kind (train | val), step, tokens, flops_6n, flops_exact, loss,
and each run's n_params and n_params_nonembedding. It is written beside the runs table as
<stem>.curves.<suffix>.
"""

from __future__ import annotations

import json
from pathlib import Path

STATUS_UNKNOWN = "unknown"
ENV_KEYS = ("git_commit", "git_dirty", "host")
CURVE_KEYS = ("step", "tokens", "flops_6n", "flops_exact", "elapsed_s")


def curves_path(study_path: str | Path) -> Path:
    """Where the long-form curves table of a study lives: study.parquet -> study.curves.parquet."""
    path = Path(study_path)
    return path.with_name(f"{path.stem}.curves{path.suffix}")


def find_run_dirs(paths) -> list[Path]:
    """Every run directory at or under the given paths, once each, in a stable order."""
    from lmlab.errors import DataError
    from lmlab.runs.record import find_runs

    found: dict[Path, None] = {}
    for p in map(Path, paths):
        if not p.is_dir():
            raise DataError(f"run directory {str(p)!r} does not exist; expected a run directory or a folder of them")
        dirs = find_runs(p)
        if not dirs:
            raise DataError(f"no run directories (holding config.yaml) under {str(p)!r}")
        found.update((d.resolve(), None) for d in dirs)
    return list(found)


def collect(paths):
    """(runs, curves) DataFrames from the run directories at or under `paths`."""
    import pandas as pd

    rows, curves = [], []
    for run_dir in find_run_dirs(paths):
        row, points = _collect_one(run_dir)
        rows.append(row)
        curves.extend(points)
    runs = pd.DataFrame(rows)
    curve_cols = ["run_id", "kind", *CURVE_KEYS, "loss", "n_params", "n_params_nonembedding"]
    return runs, pd.DataFrame(curves, columns=curve_cols)


def _collect_one(run_dir: Path):
    from lmlab.errors import DataError
    from lmlab.audit.curve import audit_columns
    from lmlab.eval.results import eval_columns
    from lmlab.io import read_jsonl
    from lmlab.runs.predictions import scored_columns
    from lmlab.runs.record import load_run

    try:
        record = load_run(run_dir)
        metrics = read_jsonl(Path(record["metrics_path"]))
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as err:
        raise DataError(f"run directory {str(run_dir)!r} has an unreadable record ({type(err).__name__}: {err})") from None
    if not isinstance(record["config"], dict):
        raise DataError(f"{str(run_dir / 'config.yaml')!r} holds {type(record['config']).__name__}; expected a mapping")
    result = record["result"] or {}
    status = record["status"] or {}
    row = flatten(record["config"])
    row.update(flatten(record.get("plan") or {}))  # N and the planned budget, also for unfinished runs
    row.update(result)
    row.update(scored_columns(record.get("plan"), record["result"]))  # `lmlab plan`'s prediction, scored
    row["run_id"] = result.get("run_id") or run_dir.name
    row["run_dir"] = str(run_dir)
    row["status"] = status.get("status") or result.get("status") or STATUS_UNKNOWN
    row["reason"] = status.get("reason") if record["status"] else "no status.json"
    row["updated_at"] = status.get("updated_at")
    row["has_result"] = bool(record["result"])
    for key in ENV_KEYS:
        row[key] = (record["env"] or {}).get(key)
    row["slurm_job_id"] = status.get("slurm_job_id")
    row.update(_last_points(metrics))
    row.update(eval_columns(run_dir))  # eval.<task>.<metric> from eval.json (lmlab-eval), if evaluated
    row.update(audit_columns(run_dir))  # audit.<metric> from audit_curve.jsonl (audit.every_val), if audited
    points = [_curve_point(row, m) for m in metrics if "val_loss" in m or "train_loss" in m]
    return row, points


def flatten(cfg: dict, prefix: str = "") -> dict:
    """{"model": {"size": "11m"}} -> {"model.size": "11m"}; lists become JSON text (one table cell)."""
    out = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            out[name] = json.dumps(value)
        else:
            out[name] = value
    return out


def _last_points(metrics: list[dict]) -> dict:
    """Where the run got to, from its metrics: what an unfinished run contributes."""
    val = [m for m in metrics if "val_loss" in m]
    train = [m for m in metrics if "train_loss" in m]
    last = metrics[-1] if metrics else {}
    return {"last_step": last.get("step"), "last_tokens": last.get("tokens"),
            "last_val_loss": val[-1]["val_loss"] if val else None,
            "last_train_loss": train[-1]["train_loss"] if train else None,
            "n_val_points": len(val), "n_train_points": len(train)}


def _curve_point(row: dict, m: dict) -> dict:
    kind = "val" if "val_loss" in m else "train"
    point = {"run_id": row["run_id"], "kind": kind, "loss": m["val_loss" if kind == "val" else "train_loss"],
             "n_params": row.get("n_params"), "n_params_nonembedding": row.get("n_params_nonembedding")}
    point.update({k: m.get(k) for k in CURVE_KEYS})
    return point
