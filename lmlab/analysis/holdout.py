"""Extrapolation testbed: fit on part of a ladder, predict the held-out runs, report the errors.

A rule names the runs to hold out:
  "max:N"       the runs at the largest value of N (any law input or table column)
  "top:3:C"     the runs with the 3 largest values of C
  "C>=1e21"     the runs where a comparison holds (>, >=, <, <=)
  "query:EXPR"  the runs matching a pandas query on the table, e.g. "query:dataset == 'c4' and C > 1e20"

`lmlab fit` applies the rule to the whole table, before --query selects the rows to fit, so a
held-out run need not match the fitting selection.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from lmlab.analysis.extrapolation import honest_interval
from lmlab.analysis.fit import Fit, parameter_interval
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
    if parts[0] == "query" and len(parts) > 1:
        if df is None:
            raise FitError(f"holdout rule {rule!r} needs the table")
        from lmlab.analysis.study import query_rows
        mask = df.index.isin(query_rows(df, rule.partition(":")[2], "--holdout query").index)
    elif parts[0] == "max" and len(parts) == 2:
        v = values(parts[1])
        mask = np.isclose(v, np.nanmax(v), rtol=1e-9)
    elif parts[0] == "top" and len(parts) == 3 and parts[1].isdigit():
        v = values(parts[2])
        mask = np.zeros(len(v), dtype=bool)
        mask[np.argsort(-v, kind="stable")[: int(parts[1])]] = True
    elif m := _COMPARE.match(rule):
        mask = _OPS[m.group(2)](values(m.group(1)), float(m.group(3)))
    else:
        raise FitError(f"holdout rule {rule!r} not understood; expected max:COL, top:K:COL, COL>=VALUE or query:EXPR")
    if mask.all() or not mask.any():
        raise FitError(f"holdout rule {rule!r} holds out {int(mask.sum())} of {len(mask)} rows; "
                       f"expected some but not all")
    return mask


def holdout_report(fit: Fit, X: dict, y, labels=None, level: float = 0.95) -> tuple[pd.DataFrame, dict]:
    """Per held-out point: inputs, actual, predicted, relative error, the default interval (lo, hi:
    it holds when extrapolating, see extrapolation.py) and, when the fit is bootstrapped, the
    parameter-only interval (param_lo, param_hi); and the summary (errors, share of the points
    inside each interval, median half-width relative to the prediction)."""
    y = np.asarray(y, dtype=float)
    pred, lo, hi = honest_interval(fit, level, **X)
    table = pd.DataFrame({name: np.asarray(v, dtype=float) for name, v in X.items()})
    if labels is not None:
        table.insert(0, "label", list(labels))
    table["actual"], table["predicted"] = y, pred
    table["rel_error"] = (pred - y) / y
    table["lo"], table["hi"] = lo, hi
    summary = {"n_heldout": int(len(y)), "mean_abs_rel_error": float(np.mean(np.abs(table["rel_error"]))),
               "max_abs_rel_error": float(np.max(np.abs(table["rel_error"]))),
               "mean_rel_error": float(np.mean(table["rel_error"])), "level": level,
               "interval": "extrapolation (backtest-calibrated)" if fit.extrapolation is not None
               and fit.extrapolation.kappa is not None else "parameter noise and run scatter (no backtest)",
               "share_inside_interval": float(np.mean((y >= lo) & (y <= hi))),
               "median_half_width": float(np.median((hi - lo) / (2 * np.abs(pred))))}
    if fit.bootstrap is not None:
        _, p_lo, p_hi = parameter_interval(fit, **X)
        table["param_lo"], table["param_hi"] = p_lo, p_hi
        summary["share_inside_parameter_interval"] = float(np.mean((y >= p_lo) & (y <= p_hi)))
        summary["median_parameter_half_width"] = float(np.median((p_hi - p_lo) / (2 * np.abs(pred))))
    return table, summary
