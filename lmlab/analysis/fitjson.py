"""The fit file: everything `lmlab fit` learned, in JSON that `plan`, `predict` and people can read.

Keys: law, formula, params, intervals (parameter-only, when bootstrapped), derived (e.g.
Chinchilla's a and b), columns (which table column fed each input: N is total or non-embedding),
compute (the run-record field that holds C), vocab_size and data (what the runs were counted at,
when the table says: `data` is the data set's name), points (the points used), fit_options (weights, Huber delta, over-penalty,
pinned parameters), diagnostics, extrapolation (the backtest calibration behind the default
intervals), bootstrap (the resampled parameters, what was resampled, how many failed), warnings,
and optionally holdout (held-out points: predicted, lo, hi, actual, with lo/hi the default
interval) and allocation (approaches 1 and 2). A fit made with --by holds one such document per
group under `groups`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from lmlab.analysis.diagnostics import residual_summary
from lmlab.analysis.fit import Bootstrap, Fit
from lmlab.analysis.laws import get_law
from lmlab.errors import FitError

FORMAT = 2


def fit_to_json(fit: Fit, **extra) -> dict:
    doc = {
        "format": FORMAT,
        "law": fit.law.name,
        "formula": fit.law.formula,
        "law_form": fit.law.to_json(),
        "params": fit.params,
        "derived": fit.derived,
        "theta": {k: float(v) for k, v in zip(fit.law.theta_names, fit.theta)},
        "columns": fit.columns,
        "points": {"n_points": int(len(fit.y)), "inputs": {k: v.tolist() for k, v in fit.X.items()},
                 "target": {"name": fit.law.target, "values": fit.y.tolist()}},
        "diagnostics": {"objective": fit.objective, "objective_form": f"sum of Huber(delta={fit.delta:g}) "
                        f"over {fit.law.space} residuals", "converged": fit.converged, "status": fit.status,
                        "n_starts": fit.n_starts, "n_starts_at_optimum": fit.n_at_optimum, "grad_max": fit.grad_max,
                        "residuals": residual_summary(fit)},
        "huber_delta": fit.delta,
        "fit_options": {"over_penalty": fit.over_penalty, "pinned": fit.fixed,
                        "weights": None if fit.weights is None else fit.weights.tolist()},
    }
    if fit.extrapolation is not None:
        doc["extrapolation"] = fit.extrapolation.to_json()
    if fit.bootstrap is not None:
        b = fit.bootstrap
        doc["intervals"] = b.intervals(fit.law)
        doc["intervals_cover"] = "parameter noise only (bootstrap of runs)"
        doc["level"] = b.level
        doc["bootstrap"] = {"n_resamples": int(len(b.thetas)), "seed": b.seed, "n_failed": b.n_failed,
                            "n_groups": b.n_groups, "resampled": b.resampled, "thetas": b.thetas.tolist()}
    doc.update(extra)
    return doc


def save_fit(doc: dict, path: str | Path) -> None:
    from lmlab.io import write_json
    write_json(Path(path), doc)


def load_fit_doc(path: str | Path) -> dict:
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise FitError(f"fit file {str(path)!r} does not exist; expected the output of `lmlab fit -o`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FitError(f"fit file {str(path)!r} is not valid JSON ({err})") from None
    if not isinstance(doc, dict) or "law" not in doc or ("params" not in doc and "groups" not in doc):
        raise FitError(f"fit file {str(path)!r} has no 'law' and 'params'; expected the output of `lmlab fit -o`")
    return doc


def select_group(doc: dict, group: str | None, path: str = "") -> dict:
    """The document of one group of a --by fit (or the document itself for a plain fit)."""
    if "groups" not in doc:
        if group is not None:
            raise FitError(f"--group {group!r}: fit file {path!r} holds one fit, not one per group")
        return doc
    names = list(doc["groups"])
    if group is None or group not in doc["groups"]:
        raise FitError(f"fit file {path!r} holds one fit per {doc['by']!r}; expected --group with one of: "
                       f"{', '.join(names)}" + (f" (not {group!r})" if group is not None else ""))
    return {**doc["groups"][group], **{k: doc[k] for k in ("compute", "vocab_size", "data") if k in doc}}


def fit_from_doc(doc: dict) -> Fit:
    """The Fit a fit file describes (with its bootstrap samples and calibration when it has them)."""
    from lmlab.analysis.extrapolation import Calibration

    law = get_law(doc["law"])
    if "theta" not in doc:
        raise FitError(f"fit file for law {doc['law']!r} (method {doc.get('method')}) holds no parametric law; "
                       f"expected a method 3 fit")
    theta = np.array([doc["theta"][k] for k in law.theta_names])
    data, diag = doc.get("points") or doc["data"], doc["diagnostics"]  # format 1 kept the points under data
    options = doc.get("fit_options", {})
    weights = options.get("weights")
    fit = Fit(law=law, theta=theta, objective=diag["objective"], converged=diag["converged"],
              status=diag["status"], n_starts=diag["n_starts"], n_at_optimum=diag["n_starts_at_optimum"],
              grad_max=diag["grad_max"],
              X={k: np.asarray(v, dtype=float) for k, v in data["inputs"].items()},
              y=np.asarray(data["target"]["values"], dtype=float),
              delta=math.inf if doc["huber_delta"] is None else doc["huber_delta"],  # JSON holds no inf
              columns=doc.get("columns", {}), weights=None if weights is None else np.asarray(weights, dtype=float),
              over_penalty=options.get("over_penalty", 1.0), fixed=options.get("pinned", {}))
    if "bootstrap" in doc:
        b = doc["bootstrap"]
        fit.bootstrap = Bootstrap(thetas=np.asarray(b["thetas"], dtype=float), level=doc["level"], seed=b["seed"],
                                  n_failed=b["n_failed"], resampled=b.get("resampled", ""), n_groups=b.get("n_groups"))
    if doc.get("extrapolation"):
        fit.extrapolation = Calibration.from_json(doc["extrapolation"])
    return fit
