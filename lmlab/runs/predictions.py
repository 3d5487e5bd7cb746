"""Predictions on record: what `lmlab plan` predicted for a run against what the run reached.

A planned run carries its prediction in plan.json (`prediction`: loss, lo, hi, level, law, fit,
fit_sha256, study; copied from its experiment config). Once the run completes, its final validation
loss scores it: inside or outside the interval, and the error in percent. Over many scored
predictions the fraction inside their intervals should match the nominal level; `calibration` gives
it per level with an exact (Clopper-Pearson) binomial interval, so a lab sees whether its ladders'
intervals can be trusted.
"""

from __future__ import annotations

from pathlib import Path

SCORED, UNSCORED = "scored", "unscored"
CI_LEVEL = 0.95  # the binomial interval's own level, around the observed coverage
COLUMNS = ["run_id", "state", "why", "predicted", "lo", "hi", "level", "actual", "inside", "error_pct", "status",
           "law", "fit", "fit_sha256", "study", "run_dir"]


def score(prediction: dict, actual: float) -> dict:
    """A completed run's score: inside the interval, and the error in percent (positive: predicted too high)."""
    return {"inside": bool(prediction["lo"] <= actual <= prediction["hi"]),
            "error_pct": 100.0 * (prediction["loss"] - actual) / actual}


def scored_columns(plan: dict | None, result: dict | None) -> dict:
    """The score as study-table columns (prediction.inside, prediction.error_pct), for a completed run
    with a prediction; empty otherwise."""
    prediction = (plan or {}).get("prediction")
    actual = final_loss(result)
    if not prediction or actual is None:
        return {}
    return {f"prediction.{k}": v for k, v in score(prediction, actual).items()}


def final_loss(result: dict | None) -> float | None:
    """The loss a prediction is scored against: a completed run's final validation loss."""
    if not result or result.get("status") != "completed":
        return None
    return result.get("final_val_loss")


def prediction_row(run_dir: Path) -> dict:
    """One run's line of the predictions table (a run without a prediction is listed, unscored)."""
    from lmlab.runs.record import RunRecord

    rec = RunRecord(run_dir)
    plan, result, status = rec.plan() or {}, rec.result(), rec.status() or {}
    prediction = plan.get("prediction")
    state = (status.get("status") or (result or {}).get("status") or "unknown")
    row = {"run_id": plan.get("run_id") or Path(run_dir).name, "status": state, "run_dir": str(run_dir)}
    if not prediction:
        return {**row, "state": UNSCORED, "why": "no prediction"}
    row.update(predicted=prediction["loss"], lo=prediction["lo"], hi=prediction["hi"], level=prediction["level"],
               **{k: prediction.get(k) for k in ("law", "fit", "fit_sha256", "study")})
    actual = final_loss(result)
    if actual is None:
        return {**row, "state": UNSCORED, "why": f"run {state}"}
    return {**row, "state": SCORED, "why": None, "actual": actual, **score(prediction, actual)}


def load_predictions(paths):
    """The predictions table (COLUMNS) as a DataFrame: one row per run found at or under `paths`, and the
    rows of each saved table a path names (a .csv or .parquet file, as `lmlab predictions -o` writes)."""
    import pandas as pd

    from lmlab.runs.collect import find_run_dirs

    tables = [_saved_table(Path(p)) for p in paths if Path(p).is_file()]
    dirs = [p for p in paths if not Path(p).is_file()]
    if dirs or not tables:
        tables.append(pd.DataFrame([prediction_row(d) for d in find_run_dirs(dirs)], columns=COLUMNS))
    return tables[0] if len(tables) == 1 else pd.concat(tables, ignore_index=True)


def _saved_table(path: Path):
    from lmlab.errors import DataError
    from lmlab.io import read_table

    table = read_table(path)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"predictions table {str(path)!r} lacks column(s) {', '.join(missing)}; "
                        f"expected a table written by `lmlab predictions -o`")
    return table[COLUMNS]


def study_predictions(study_dir):
    """A study's held-out runs as predictions-table rows (COLUMNS), all scored: fit.json's holdout points
    (what the fit made without them predicted, at the holdout's level, and the loss each reached)."""
    import hashlib

    import pandas as pd

    from lmlab.analysis.fitjson import load_fit_doc
    from lmlab.errors import DataError

    path = Path(study_dir) / "fit.json"
    doc = load_fit_doc(path)
    holdout = doc.get("holdout") or {}
    if not holdout.get("points"):
        raise DataError(f"fit file {str(path)!r} has no held-out points; expected a study's fit (`lmlab study`)")
    common = {"state": SCORED, "status": "completed", "level": holdout["summary"]["level"], "law": doc["law"],
              "fit": str(path), "fit_sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "study": str(study_dir)}
    rows = []
    for p in holdout["points"]:
        prediction = {"loss": p["predicted"], "lo": p["lo"], "hi": p["hi"]}
        rows.append({**common, "run_id": p["label"], "predicted": p["predicted"], "lo": p["lo"], "hi": p["hi"],
                     "actual": p["actual"], **score(prediction, p["actual"])})
    return pd.DataFrame(rows, columns=COLUMNS)


def calibration(table):
    """Per nominal level: how many predictions were scored, how many fell inside their intervals, that
    fraction and its exact binomial interval (at CI_LEVEL), and whether the nominal level lies inside it."""
    import pandas as pd
    from scipy.stats import binomtest

    rows = []
    scored = table[table["state"] == SCORED]
    for level, group in scored.groupby("level", sort=True):
        n, k = len(group), int(group["inside"].astype(bool).sum())
        ci = binomtest(k, n).proportion_ci(confidence_level=CI_LEVEL, method="exact")
        rows.append({"level": float(level), "n": n, "inside": k, "fraction": k / n, "ci_lo": float(ci.low),
                     "ci_hi": float(ci.high), "consistent": bool(ci.low <= level <= ci.high)})
    return pd.DataFrame(rows, columns=["level", "n", "inside", "fraction", "ci_lo", "ci_hi", "consistent"])
