"""Study tables (read with lmlab.io.read_table): pick out a law's inputs and target by column name.

Defaults are the runs table's names (`lmlab runs collect`); any table works with other names.
Inputs a table lacks are derived when the standard relations allow (C = 6 N D, M = D / N,
Kaplan's S_min from steps, tokens per step and loss); the fit JSON records how each was obtained.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmlab.analysis.laws import Law, kaplan_s_min
from lmlab.errors import FitError
from lmlab.runspec import COMPUTE

# C defaults to the run records' one unit of compute (lmlab.runspec.COMPUTE)
DEFAULT_COLUMNS = {"N": "n_params", "D": "tokens", "C": COMPUTE, "loss": "final_val_loss",
                   "y": None, "S": "steps"}
KAPLAN_B_STAR, KAPLAN_ALPHA_B = 2.0e8, 0.21


@dataclass
class LawData:
    X: dict                  # law input name -> values
    y: np.ndarray            # the fitted quantity
    sources: dict            # law input/target name -> column or the formula that derived it


def completed_rows(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Rows of finished runs when the table has a status column (runs tables do); the rest are kept."""
    if "status" not in df.columns:
        return df, 0
    keep = df["status"] == "completed"
    return df[keep], int((~keep).sum())


def column(df: pd.DataFrame, name: str) -> np.ndarray:
    """A numeric column as floats (unparseable entries become NaN, which the fit then names)."""
    if name not in df.columns:
        raise FitError(f"column {name!r} is not in the table; available: {', '.join(map(str, df.columns))}")
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)


def query_rows(df: pd.DataFrame, expr: str, flag: str) -> pd.DataFrame:
    """The rows matching a pandas query; a bad expression or an empty result is one clear error."""
    try:
        out = df.query(expr)
    except Exception as err:  # pandas raises many types for a bad expression
        raise FitError(f"{flag} {expr!r} failed: {type(err).__name__}: {err}".splitlines()[0]) from None
    if out.empty:
        raise FitError(f"{flag} {expr!r} matches none of the {len(df)} rows; expected at least one")
    return out


def law_data(df: pd.DataFrame, law: Law, columns: dict | None = None) -> LawData:
    """The law's inputs and target from df; `columns` maps N, D, C, loss, y, S to column names."""
    cols = _with_defaults(columns)
    y_col = cols["y"] or (cols["loss"] if law.space == "log" else None)
    if y_col is None:
        raise FitError(f"law {law.name!r} fits {law.target}; expected its column via --y-col")
    get, sources = _deriver(df, cols)
    X = {name: get(name) for name in law.inputs}
    return LawData(X=X, y=column(df, y_col), sources={**{k: sources[k] for k in law.inputs}, law.target: y_col})


def standard_inputs(df: pd.DataFrame, columns: dict | None = None) -> dict:
    """Whichever of N, D and C the table gives (directly or derived): what holdout rules may name."""
    get, _ = _deriver(df, _with_defaults(columns))
    out = {}
    for key in ("N", "D", "C"):
        try:
            out[key] = get(key)
        except FitError:
            continue  # the table lacks it; a rule naming it fails with its own message
    return out


def _with_defaults(columns: dict | None) -> dict:
    return {**DEFAULT_COLUMNS, **{k: v for k, v in (columns or {}).items() if v is not None}}


def _deriver(df, cols):
    have = set(df.columns)
    values, sources = {}, {}

    def get(key):
        if key not in values:
            values[key], sources[key] = _derive(key, df, cols, have, get, sources)
        return values[key]

    return get, sources


def _derive(key, df, cols, have, get, sources):
    """One input: its column when present, else the relation that gives it from others."""
    if key == "L":
        return column(df, cols["loss"]), cols["loss"]
    if key in ("N", "D", "C") and cols[key] in have:
        return column(df, cols[key]), cols[key]
    if key == "D" and cols["C"] in have:
        return get("C") / (6.0 * get("N")), f"{cols['C']} / (6 * {cols['N']})"
    if key == "C" and cols["D"] in have:
        return 6.0 * get("N") * get("D"), f"6 * {cols['N']} * {cols['D']}"
    if key == "M":
        d = get("D")
        return d / get("N"), f"({sources['D']}) / {cols['N']}"
    if key == "S_min":
        steps, tokens, loss = column(df, cols["S"]), get("D"), column(df, cols["loss"])
        return (kaplan_s_min(steps, tokens / steps, loss, KAPLAN_B_STAR, KAPLAN_ALPHA_B),
                f"S_min = {cols['S']} / (1 + B_crit({cols['loss']}) / B), B = tokens per step, "
                f"B_crit(L) = {KAPLAN_B_STAR:g} / L^(1/{KAPLAN_ALPHA_B})")
    raise FitError(f"column {cols.get(key)!r} for input {key} is not in the table; "
                   f"available: {', '.join(map(str, df.columns))}")

