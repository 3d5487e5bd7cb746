"""The fit file: everything `lmlab fit` learned, in JSON that `plan`, `predict` and people can read.

Keys: law, formula, params, intervals (when bootstrapped), derived (e.g. Chinchilla's a and b),
columns (which table column fed each input: N is total or non-embedding), data (the points used),
diagnostics (objective, convergence, residuals), bootstrap (the resampled parameters), and
optionally holdout (the extrapolation test) and allocation (approaches 1 and 2).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lmlab.analysis.diagnostics import residual_summary
from lmlab.analysis.fit import Bootstrap, Fit
from lmlab.analysis.laws import get_law
from lmlab.errors import FitError

FORMAT = 1


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
        "data": {"n_points": int(len(fit.y)), "inputs": {k: v.tolist() for k, v in fit.X.items()},
                 "target": {"name": fit.law.target, "values": fit.y.tolist()}},
        "diagnostics": {"objective": fit.objective, "objective_form": f"sum of Huber(delta={fit.delta:g}) "
                        f"over {fit.law.space} residuals", "converged": fit.converged, "status": fit.status,
                        "n_starts": fit.n_starts, "n_starts_at_optimum": fit.n_at_optimum, "grad_max": fit.grad_max,
                        "residuals": residual_summary(fit)},
        "huber_delta": fit.delta,
    }
    if fit.bootstrap is not None:
        b = fit.bootstrap
        doc["intervals"] = b.intervals(fit.law)
        doc["level"] = b.level
        doc["bootstrap"] = {"n_resamples": int(len(b.thetas)), "seed": b.seed, "n_failed": b.n_failed,
                            "resampled": "points (runs), with replacement", "thetas": b.thetas.tolist()}
    doc.update(extra)
    return doc


def save_fit(doc: dict, path: str | Path) -> None:
    from lmlab.runs.record import write_json_atomic
    write_json_atomic(Path(path), doc)


def load_fit_doc(path: str | Path) -> dict:
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise FitError(f"fit file {str(path)!r} does not exist; expected the output of `lmlab fit -o`") from None
    except json.JSONDecodeError as err:
        raise FitError(f"fit file {str(path)!r} is not valid JSON ({err.msg} at line {err.lineno})") from None
    for key in ("law", "params"):
        if key not in doc:
            raise FitError(f"fit file {str(path)!r} has no {key!r} key; expected the output of `lmlab fit -o`")
    return doc


def fit_from_doc(doc: dict) -> Fit:
    """The Fit a fit file describes (with its bootstrap samples when it has them)."""
    law = get_law(doc["law"])
    if "theta" not in doc:
        raise FitError(f"fit file for law {doc['law']!r} (method {doc.get('method')}) holds no parametric law; "
                       f"expected a method 3 fit")
    theta = np.array([doc["theta"][k] for k in law.theta_names])
    data, diag = doc["data"], doc["diagnostics"]
    fit = Fit(law=law, theta=theta, objective=diag["objective"], converged=diag["converged"],
              status=diag["status"], n_starts=diag["n_starts"], n_at_optimum=diag["n_starts_at_optimum"],
              grad_max=diag["grad_max"],
              X={k: np.asarray(v, dtype=float) for k, v in data["inputs"].items()},
              y=np.asarray(data["target"]["values"], dtype=float), delta=doc["huber_delta"],
              columns=doc.get("columns", {}))
    if "bootstrap" in doc:
        b = doc["bootstrap"]
        fit.bootstrap = Bootstrap(thetas=np.asarray(b["thetas"], dtype=float), level=doc["level"], seed=b["seed"],
                                  n_failed=b["n_failed"])
    return fit
