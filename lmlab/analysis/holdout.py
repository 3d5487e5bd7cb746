"""Extrapolation testbed: fit on part of a ladder, predict the held-out runs, report the errors.

A rule names the runs to hold out:
  "max:N"       the runs at the largest value of N (any law input or table column)
  "top:3:C"     the runs with the 3 largest values of C
  "C>=1e21"     the runs where a comparison holds (>, >=, <, <=)
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from lmlab.analysis.fit import Fit, predict_interval
from lmlab.errors import FitError

_COMPARE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*$")
_OPS = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal}


def holdout_mask(rule: str, X: dict, df: pd.DataFrame | None = None) -> np.ndarray:
    """Boolean mask (True = held out) over the rows behind X, per `rule` (see the module doc)."""

    def values(name):
        if name in X:
            return np.asarray(X[name], dtype=float)
        if df is not None and name in df.columns:
            return df[name].to_numpy(dtype=float)
        raise FitError(f"holdout rule {rule!r} names {name!r}, which is neither a law input "
                       f"({', '.join(X)}) nor a table column")

    parts = rule.split(":")
    if parts[0] == "max" and len(parts) == 2:
        v = values(parts[1])
        mask = np.isclose(v, np.nanmax(v), rtol=1e-9)
    elif parts[0] == "top" and len(parts) == 3 and parts[1].isdigit():
        v = values(parts[2])
        mask = np.zeros(len(v), dtype=bool)
        mask[np.argsort(-v, kind="stable")[: int(parts[1])]] = True
    elif m := _COMPARE.match(rule):
        mask = _OPS[m.group(2)](values(m.group(1)), float(m.group(3)))
    else:
        raise FitError(f"holdout rule {rule!r} not understood; expected max:COL, top:K:COL or COL>=VALUE")
    if mask.all() or not mask.any():
        raise FitError(f"holdout rule {rule!r} holds out {int(mask.sum())} of {len(mask)} rows; "
                       f"expected some but not all")
    return mask


def holdout_report(fit: Fit, X: dict, y, labels=None) -> tuple[pd.DataFrame, dict]:
    """Per held-out point: inputs, actual, predicted, relative error and, when the fit is bootstrapped,
    the interval of the law (lo, hi) and of a single run (run_lo, run_hi: the law plus the fit's own
    scatter); and the summary (mean and max absolute relative error, share inside each interval)."""
    y = np.asarray(y, dtype=float)
    pred = fit.law.predict_theta(fit.theta, X)[0]
    table = pd.DataFrame({name: np.asarray(v, dtype=float) for name, v in X.items()})
    if labels is not None:
        table.insert(0, "label", list(labels))
    table["actual"], table["predicted"] = y, pred
    table["rel_error"] = (pred - y) / y
    summary = {"n_heldout": int(len(y)), "mean_abs_rel_error": float(np.mean(np.abs(table["rel_error"]))),
               "max_abs_rel_error": float(np.max(np.abs(table["rel_error"]))),
               "mean_rel_error": float(np.mean(table["rel_error"]))}
    if fit.bootstrap is not None:
        for prefix, single in (("", False), ("run_", True)):
            _, lo, hi = predict_interval(fit, single_run=single, **X)
            table[f"{prefix}lo"], table[f"{prefix}hi"] = lo, hi
            summary[f"share_inside_{prefix}interval"] = float(np.mean((y >= lo) & (y <= hi)))
    return table, summary
