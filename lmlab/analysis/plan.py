"""Plan the big run: the compute-optimal N and D for a budget, the predicted loss, a launch config.

Chinchilla's law has a closed-form optimum (`allocation.chinchilla_optimal`); any other law over
(N, D), (C, M) or (N, C) is minimised numerically along C = 6 N D. The loss interval is the one
that holds when extrapolating (extrapolation.py), never narrower than the bootstrap's; the N_opt
and D_opt intervals come from the bootstrap samples (each resampled law gives its own optimum) and
cover parameter noise only.

The experiment config also carries the prediction (`prediction_section`: the loss predicted at the
planned size and tokens, its interval, the fit's hash and the study it came from), which the run copies
into its plan.json and lmlab.runs.predictions scores once the run completes.

The planned run is `planned_run`: the registered size nearest N_opt, counted at the fit's
vocabulary, with `budget.flops` = C; its tokens, steps and compute come from the run spec
(lmlab.runspec.resolve_run) of the composed experiment config, exactly as training will see them.

Batch size and learning rate default to DeepSeek LLM's compute scaling laws (Bi et al. 2024):
B_opt = 0.292 C^0.3271 tokens and lr_opt = 0.3118 C^-0.125; override them when you have your own.
"""

from __future__ import annotations

import math
from pathlib import Path
from dataclasses import dataclass, field

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
    return ns, fit.law.predict_paired(thetas, inputs_at(fit.law, flops, ns))


@dataclass
class PlanResult:
    flops: float
    n_opt: float
    d_opt: float
    loss: float
    intervals: dict          # loss: the default interval; N_opt, D_opt: parameter-only (when bootstrapped)
    level: float
    parameter_intervals: dict = field(default_factory=dict)   # all three from the bootstrap alone


def plan_budget(fit: Fit, flops: float, level: float | None = None) -> PlanResult:
    from lmlab.analysis.extrapolation import honest_interval

    if not flops > 0 or not math.isfinite(flops):
        raise FitError(f"compute budget {flops!r} FLOPs; expected a positive finite number")
    (n,), (loss,) = optimum(fit, flops)
    n, loss, d = float(n), float(loss), flops / (6.0 * float(n))
    level = level or (fit.bootstrap.level if fit.bootstrap is not None else 0.95)
    _, lo, hi = honest_interval(fit, level, **inputs_at(fit.law, flops, np.array([n])))
    parameter = {}
    if fit.bootstrap is not None:
        b = fit.bootstrap
        thetas = b.thetas[np.all(np.isfinite(b.thetas), axis=1)]
        ns, losses = optimum(fit, flops, thetas)
        parameter = {"N_opt": b.interval(ns), "D_opt": b.interval(flops / (6.0 * ns)), "loss": b.interval(losses)}
        parameter = {k: tuple(float(x) for x in v) for k, v in parameter.items()}
        lo, hi = min(lo[0], parameter["loss"][0]), max(hi[0], parameter["loss"][1])
    intervals = {"loss": (float(np.min(lo)), float(np.max(hi))),
                 **{k: v for k, v in parameter.items() if k != "loss"}}
    return PlanResult(flops=flops, n_opt=n, d_opt=d, loss=loss, intervals=intervals, level=level,
                      parameter_intervals=parameter)


@dataclass
class PlannedRun:
    size: object             # the registry's ModelSize
    n: int                   # its N, counted as the fit's N column at the fit's vocabulary
    settings: dict           # the experiment config's values (budget.flops = the planned C)
    spec: object             # lmlab.runspec.RunSpec of that config: tokens, steps and compute as training sees them

    @property
    def tokens(self) -> int:
        return self.spec.budget.tokens

    @property
    def seq_len(self) -> int:
        return self.spec.gpt.seq_len


def planned_run(flops: float, n_opt: float, n_column: str, vocab_size: int, seq_len: int | None, *,
                global_batch_size: int | None, lr: float | None, nodes: int, devices: int,
                micro_batch_size: int) -> PlannedRun:
    """The registered size nearest N_opt, trained on budget.flops = `flops`: its tokens, steps and compute
    come from the run spec of the composed experiment config, so the run spends the planned compute in
    lmlab's unit (to within one optimizer step)."""
    size, n = nearest_registered_size(n_opt, n_column, vocab_size, seq_len)
    settings = experiment_settings(size=size.name, seq_len=seq_len or size.seq_len, flops=flops,
                                   global_batch_size=global_batch_size, lr=lr, nodes=nodes, devices=devices,
                                   micro_batch_size=micro_batch_size)
    return PlannedRun(size=size, n=n, settings=settings, spec=resolve_experiment(settings, vocab_size))


def resolve_experiment(settings: dict, vocab_size: int):
    """The run spec of an experiment config, composed over lmlab's training config as lmlab-train would."""
    import tempfile

    from lmlab.config import compose_train
    from lmlab.runspec import resolve_run

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "experiment").mkdir()
        (Path(tmp) / "experiment" / "planned.yaml").write_text(experiment_config(settings, ""))
        return resolve_run(compose_train(["experiment=planned"], [tmp]), vocab_size)


def nearest_registered_size(n: float, n_column: str, vocab_size: int, seq_len: int | None):
    """The registry size closest to n in log space, counting parameters the way the fit's N did."""
    from lmlab.models.family import SIZES, count_params, nearest_size

    if n_column == NONEMBEDDING_COLUMN:
        size = nearest_size(n)
    else:
        size = min(SIZES, key=lambda s: abs(math.log(count_params(s.config(vocab_size, seq_len))["n_params"] / n)))
    counts = count_params(size.config(vocab_size, seq_len))
    return size, counts["n_params_nonembedding" if n_column == NONEMBEDDING_COLUMN else "n_params"]


def experiment_settings(*, size: str, seq_len: int, flops: float, global_batch_size: int | None,
                        lr: float | None, nodes: int, devices: int, micro_batch_size: int) -> dict:
    """The values of the planned run's experiment config. The budget is `budget.flops`, so training
    spends it in lmlab's unit of compute. The global batch is rounded up to a multiple of
    micro_batch_size x devices x nodes, which training requires."""
    per_pass = micro_batch_size * devices * nodes
    if global_batch_size is None:
        global_batch_size = round(batch_tokens_for(flops) / seq_len)
    global_batch_size = int(max(1, math.ceil(global_batch_size / per_pass)) * per_pass)
    return {
        "defaults": [{"override /budget": "flops"}, {"override /trainer": "gpu"}],
        "model": {"size": size, "seq_len": int(seq_len)},
        "budget": {"flops": float(flops)},
        "optim": {"lr": float(f"{lr if lr is not None else lr_for(flops):.3g}")},
        "trainer": {"global_batch_size": global_batch_size, "micro_batch_size": int(micro_batch_size),
                    "nodes": int(nodes), "devices": int(devices), "precision": "bf16-mixed"},
    }


def prediction_section(loss: float, interval: tuple[float, float], level: float, law: str, fit_path: str | Path,
                       study: str | None) -> dict:
    """The experiment config's `prediction:` (lmlab.config.PredictionConfig): what the run should reach,
    and which fit said so (the sha256 of the fit file's bytes, so a later refit is told apart)."""
    import hashlib

    return {"loss": float(loss), "lo": float(interval[0]), "hi": float(interval[1]), "level": float(level),
            "law": law, "fit": str(Path(fit_path).resolve()), "fit_sha256": hashlib.sha256(Path(fit_path).read_bytes()).hexdigest(),
            "study": study}


def experiment_config(settings: dict, header: str) -> str:
    """A Hydra `# @package _global_` experiment config (for `lmlab-train --config-dir DIR experiment=NAME`)."""
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return "# @package _global_\n" + comment + yaml.safe_dump(settings, sort_keys=False)
