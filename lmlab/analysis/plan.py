"""Plan the big run: the compute-optimal N and D for a budget, the predicted loss, a launch config.

Chinchilla's law has a closed-form optimum (`allocation.chinchilla_optimal`); any other law over
(N, D), (C, M) or (N, C) is minimised numerically along C = 6 N D. Intervals come from the fit's
bootstrap samples: each resampled law gives its own optimum and loss.

Batch size and learning rate default to DeepSeek LLM's compute scaling laws (Bi et al. 2024):
B_opt = 0.292 C^0.3271 tokens and lr_opt = 0.3118 C^-0.125; override them when you have your own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import yaml
from scipy.optimize import minimize_scalar

from lmlab.analysis.allocation import chinchilla_optimal
from lmlab.analysis.fit import Fit
from lmlab.errors import FitError

NONEMBEDDING_COLUMN = "n_params_nonembedding"


def batch_tokens_for(flops: float) -> float:
    return 0.292 * flops ** 0.3271


def lr_for(flops: float) -> float:
    return 0.3118 * flops ** -0.125


def inputs_at(law, flops, n):
    """All law inputs at size n under budget flops (C = 6 N D)."""
    d = flops / (6.0 * n)
    values = {"N": n, "D": d, "C": np.full_like(n, flops), "M": d / n}
    missing = set(law.inputs) - set(values)
    if missing:
        raise FitError(f"law {law.name!r} has inputs {', '.join(sorted(missing))}; planning needs a law of "
                       f"N, D, C or M")
    return {k: values[k] for k in law.inputs}


def optimal_n(fit: Fit, flops: float, thetas: np.ndarray | None = None) -> np.ndarray:
    """N minimising the law's loss at compute `flops`, for the fit (or for each row of thetas)."""
    thetas = np.atleast_2d(fit.theta if thetas is None else thetas)
    if fit.law.name == "chinchilla":
        return chinchilla_optimal(fit.law.to_params(thetas), flops)[0]
    if not {"N", "D"} <= set(fit.law.inputs) and not {"C", "M"} <= set(fit.law.inputs):
        raise FitError(f"law {fit.law.name!r} does not trade N against D; expected a law of (N, D) or (C, M)")

    def best(theta):
        def loss(log_n):
            n = np.array([math.exp(log_n)])
            return float(fit.law.predict_theta(theta, inputs_at(fit.law, flops, n))[0, 0])
        hi = math.log(flops / 6.0)   # N up to C/6 (then D = 1 token)
        res = minimize_scalar(loss, bounds=(0.0, hi), method="bounded", options={"xatol": 1e-8})
        return math.exp(res.x)

    return np.array([best(theta) for theta in thetas])


def optimum(fit: Fit, flops: float, thetas: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Compute-optimal N and the loss there, for the fit (or each row of thetas)."""
    thetas = np.atleast_2d(fit.theta if thetas is None else thetas)
    ns = optimal_n(fit, flops, thetas)
    return ns, paired_predict(fit.law, thetas, inputs_at(fit.law, flops, ns))


def paired_predict(law, thetas: np.ndarray, X: dict, block: int = 64) -> np.ndarray:
    """Row i of thetas at point i of X. The batched law evaluates every row at every point, so take
    diagonals of small blocks rather than of one k x k matrix."""
    out = np.empty(len(thetas))
    for i in range(0, len(thetas), block):
        sl = slice(i, i + block)
        out[sl] = np.diagonal(law.predict_theta(thetas[sl], {k: v[sl] for k, v in X.items()}))
    return out


@dataclass
class PlanResult:
    flops: float
    n_opt: float
    d_opt: float
    loss: float
    intervals: dict          # name -> (lo, hi), when the fit has bootstrap samples
    level: float | None


def plan_budget(fit: Fit, flops: float) -> PlanResult:
    if not flops > 0 or not math.isfinite(flops):
        raise FitError(f"compute budget {flops!r} FLOPs; expected a positive finite number")
    (n,), (loss,) = optimum(fit, flops)
    n, loss, d = float(n), float(loss), flops / (6.0 * float(n))
    intervals, level = {}, None
    if fit.bootstrap is not None:
        b = fit.bootstrap
        ns, losses = optimum(fit, flops, b.thetas)
        intervals = {"N_opt": b.interval(ns), "D_opt": b.interval(flops / (6.0 * ns)), "loss": b.interval(losses)}
        intervals = {k: tuple(float(x) for x in v) for k, v in intervals.items()}
        level = b.level
    return PlanResult(flops=flops, n_opt=n, d_opt=d, loss=loss, intervals=intervals, level=level)


def nearest_registered_size(n: float, n_column: str, vocab_size: int, seq_len: int | None):
    """The registry size closest to n in log space, counting parameters the way the fit's N did."""
    from lmlab.models.family import SIZES, count_params, nearest_size

    if n_column == NONEMBEDDING_COLUMN:
        size = nearest_size(n)
    else:
        size = min(SIZES, key=lambda s: abs(math.log(count_params(s.config(vocab_size, seq_len))["n_params"] / n)))
    counts = count_params(size.config(vocab_size, seq_len))
    return size, counts["n_params_nonembedding" if n_column == NONEMBEDDING_COLUMN else "n_params"]


def experiment_config(*, size: str, seq_len: int, tokens: int, flops: float, global_batch_size: int | None,
                      lr: float | None, num_nodes: int, devices: int, micro_batch_size: int, header: str) -> str:
    """A Hydra `# @package _global_` experiment config for the planned run (conf/experiment/).

    The global batch is rounded up to a multiple of micro_batch_size x devices x num_nodes, which
    training requires."""
    per_pass = micro_batch_size * devices * num_nodes
    if global_batch_size is None:
        global_batch_size = round(batch_tokens_for(flops) / seq_len)
    global_batch_size = int(max(1, math.ceil(global_batch_size / per_pass)) * per_pass)
    cfg = {
        "defaults": [{"override /budget": "tokens"}, {"override /trainer": "gpu"}],
        "model": {"size": size, "seq_len": int(seq_len)},
        "budget": {"tokens": int(tokens)},
        "optim": {"lr": float(f"{lr if lr is not None else lr_for(flops):.3g}")},
        "trainer": {"global_batch_size": global_batch_size, "micro_batch_size": int(micro_batch_size),
                    "num_nodes": int(num_nodes),
                    "devices": int(devices), "precision": "bf16-mixed"},
    }
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return "# @package _global_\n" + comment + yaml.safe_dump(cfg, sort_keys=False)
