"""A loss-curve law that knows the learning-rate schedule (Tissue et al. 2024, "Scaling law with
learning rate annealing"): L(s) = L0 + A S1^-alpha - C S2 after s optimizer steps, with

  S1 = sum of the learning rates of the first s steps (the "forward area"), and
  S2 = sum of m_i, m_i = decay * m_(i-1) + (eta_(i-1) - eta_i) (the annealing area with momentum:
       a drop in learning rate lowers the loss gradually, not at once).

One set of (L0, A, alpha, C) describes every run of one model size whatever its schedule (cosine,
WSD, constant), so the curves of a few runs predict the loss at any step of another. The schedule
is rebuilt from each run's config with the function training used (lmlab.train.schedules.lr_lambda).
The momentum starts at the end of warm-up (the rising rate is not annealing), and the decay factor
is chosen per fit from DECAYS by the objective. Fitting uses lmlab's machinery (fit_law, bootstrap
over runs, or over validation points when there are too few runs); the law is not in laws.LAWS
because its inputs come from a schedule, not from a study table's columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmlab.analysis.fit import MIN_BOOTSTRAP_GROUPS, Fit, bootstrap, fit_law
from lmlab.analysis.laws import Law
from lmlab.errors import DataError, FitError

# Candidate momentum decay factors (Tissue et al. use 0.999 on runs of tens of thousands of steps;
# lmlab's small runs have hundreds, so shorter memories are tried too, down to none).
DECAYS = (0.0, 0.8, 0.95, 0.99, 0.999)


class AnnealingLaw(Law):
    """L = L0 + A S1^-alpha - C S2, fitted on log-loss residuals like the other loss laws."""

    name = "lr_annealing"
    formula = "L = L0 + A S1^-alpha - C S2 (S1: area under the LR so far; S2: annealing area with momentum)"
    inputs = ("S1", "S2")
    theta_names = ("log_L0", "log_A", "alpha", "log_C")
    param_names = ("L0", "A", "alpha", "C")
    positive_theta = ("alpha",)

    def positive_inputs(self):
        return ("S1",)

    def prepare(self, X):
        return np.log(X["S1"]), X["S2"]

    def value_and_vjp(self, theta, prep):
        log_s1, s2 = prep
        l0 = np.exp(theta[:, 0, None])
        a_term = np.exp(theta[:, 1, None] - theta[:, 2, None] * log_s1)
        c_term = np.exp(theta[:, 3, None]) * s2
        value = l0 + a_term - c_term
        with np.errstate(invalid="ignore", divide="ignore"):  # a negative loss: NaN, refused by the line search
            pred = np.where(value > 0, np.log(np.where(value > 0, value, 1.0)), np.nan)

        def vjp(dpred):
            g = dpred / value
            return np.stack([(g * l0).sum(1), (g * a_term).sum(1), -(g * a_term * log_s1).sum(1),
                             -(g * c_term).sum(1)], axis=1)

        return pred, vjp

    def to_params(self, theta):
        theta = np.asarray(theta, dtype=float)
        return {"L0": np.exp(theta[..., 0]), "A": np.exp(theta[..., 1]), "alpha": theta[..., 2],
                "C": np.exp(theta[..., 3])}

    def from_params(self, p):
        return np.array([np.log(p["L0"]), np.log(p["A"]), p["alpha"], np.log(p["C"])], dtype=float).T

    def start_grid(self, X, y):
        """Starts scaled to the data: L0 a fraction of the lowest loss, A through the first point,
        C a fraction of the loss range over the largest annealing area."""
        i = int(np.argmin(X["S1"]))
        s2_max = float(np.max(X["S2"]))
        spread = max(float(np.ptp(y)), 1e-3 * float(np.min(y)))
        log_cs = [np.log(k * spread / s2_max) for k in (0.1, 1.0)] if s2_max > 0 else [np.log(spread)]
        rows = []
        for frac in (0.3, 0.7, 0.95):
            l0 = frac * float(np.min(y))
            for alpha in (0.1, 0.3, 0.7, 1.5):
                log_a = np.log(max(float(y[i]) - l0, 1e-3)) + alpha * np.log(X["S1"][i])
                rows.extend([np.log(l0), log_a, alpha, log_c] for log_c in log_cs)
        return np.array(rows, dtype=float)


ANNEALING = AnnealingLaw()


def schedule_areas(lrs, decay: float) -> tuple[np.ndarray, np.ndarray]:
    """(S1, S2) after s = 0..len(lrs) steps; lrs[i] is the learning rate of step i + 1's update."""
    from scipy.signal import lfilter

    lrs = np.asarray(lrs, dtype=float)
    peak = int(np.argmax(lrs >= lrs.max())) if len(lrs) else 0  # warm-up ends at the first peak rate
    drops = np.zeros(len(lrs))
    drops[peak + 1:] = lrs[peak:-1] - lrs[peak + 1:]
    momentum = lfilter([1.0], [1.0, -decay], drops)
    return np.concatenate([[0.0], np.cumsum(lrs)]), np.concatenate([[0.0], np.cumsum(momentum)])


def lr_curve(schedule: dict, optim: dict, schedule_steps: int, steps: int | None = None) -> np.ndarray:
    """The learning rate of each of `steps` steps (default schedule_steps) under a schedule group of
    `schedule_steps` steps, as lmlab.train.schedules.lr_lambda gives it to training."""
    from lmlab.train.schedules import lr_lambda

    try:
        multiplier = lr_lambda(str(schedule["name"]), int(schedule_steps), float(schedule["warmup_frac"]),
                               float(optim["min_lr_ratio"]), float(schedule["decay_frac"]))
        lr = float(optim["lr"])
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"run config: cannot rebuild the learning-rate schedule ({type(err).__name__}: {err}); "
                        f"expected schedule.name/warmup_frac/decay_frac and optim.lr/min_lr_ratio") from None
    return lr * np.array([multiplier(i) for i in range(int(schedule_steps if steps is None else steps))])


def run_lrs(cfg: dict, spec) -> np.ndarray:
    """A run's learning rates (cfg: its resolved config, spec: its RunSpec). A cooldown branch or trunk
    of a branched launch follows its launch's WSD schedule, as Run._schedule sets it."""
    from lmlab.train.branches import member_schedule

    schedule, length = cfg["schedule"], spec.budget.steps
    if spec.member is not None:
        schedule, length = member_schedule(schedule, spec.member), spec.member.schedule_steps
    return lr_curve(schedule, cfg["optim"], length, spec.budget.steps)


@dataclass
class Curve:
    """One run's validation curve and its learning-rate schedule."""

    run_id: str
    steps: np.ndarray        # optimizer steps of the validations
    loss: np.ndarray         # validation loss at those steps
    lrs: np.ndarray          # learning rate of every planned step
    tokens_per_step: float
    n_params: float | None = None
    status: str | None = None

    @property
    def total_steps(self) -> int:
        return len(self.lrs)

    @property
    def warmup_steps(self) -> int:
        return int(np.argmax(self.lrs >= self.lrs.max())) + 1

    def past_warmup(self) -> "Curve":
        return self.select(self.steps > self.warmup_steps)

    def upto(self, fraction: float) -> "Curve":
        """The curve as it stood at `fraction` of the planned steps."""
        return self.select(self.steps <= fraction * self.total_steps + 1e-9)

    def select(self, keep: np.ndarray) -> "Curve":
        return Curve(self.run_id, self.steps[keep], self.loss[keep], self.lrs, self.tokens_per_step,
                     self.n_params, self.status)

    def areas(self, steps, decay: float) -> dict:
        steps = np.asarray(steps, dtype=int)
        if steps.size and (steps.min() < 1 or steps.max() > self.total_steps):
            raise FitError(f"run {self.run_id}: step {int(steps.max())} is outside its schedule of "
                           f"{self.total_steps} steps; expected 1..{self.total_steps}")
        s1, s2 = schedule_areas(self.lrs, decay)
        return {"S1": s1[steps], "S2": s2[steps]}


def load_curve(run_dir: str | Path) -> Curve:
    """A run directory's validation curve (metrics.jsonl) and schedule (config.yaml, plan.json)."""
    from lmlab.io import read_jsonl
    from lmlab.runs.record import load_run

    from lmlab.errors import LmlabError
    from lmlab.runspec import resolve_run

    run_dir = Path(run_dir)
    record = load_run(run_dir)
    plan = record["plan"] or {}
    if not plan.get("vocab_size"):
        raise DataError(f"run directory {str(run_dir)!r} has no plan.json with vocab_size; "
                        f"expected a run started by lmlab-train")
    try:
        spec = resolve_run(record["config"], vocab_size=plan["vocab_size"])
    except LmlabError as err:
        raise DataError(f"run directory {str(run_dir)!r}: its config.yaml does not resolve ({err})") from None
    rows = [r for r in read_jsonl(Path(record["metrics_path"])) if "val_loss" in r] \
        if Path(record["metrics_path"]).exists() else []
    status = (record["status"] or {}).get("status") or (record["result"] or {}).get("status")
    return Curve(run_id=spec.run_id,
                 steps=np.array([r["step"] for r in rows], dtype=int),
                 loss=np.array([r["val_loss"] for r in rows], dtype=float),
                 lrs=run_lrs(record["config"], spec), tokens_per_step=float(spec.budget.tokens_per_step),
                 n_params=spec.n_params, status=status)


@dataclass
class CurveFit:
    """The law fitted to some runs' curves; predicts any step of any schedule of the same size."""

    fit: Fit
    decay: float
    run_ids: list[str]

    @property
    def params(self) -> dict[str, float]:
        return self.fit.params

    def predict(self, curve: Curve, steps) -> np.ndarray:
        return self.fit.predict(**curve.areas(steps, self.decay))

    def interval(self, curve: Curve, steps) -> tuple[np.ndarray, np.ndarray]:
        """The bootstrap interval (the fit's level) of the law at `steps` of `curve`."""
        if self.fit.bootstrap is None:
            raise FitError("this curve fit has no bootstrap; expected fit_curves(..., n_resamples >= 2)")
        with np.errstate(all="ignore"):
            samples = self.fit.law.predict_theta(self.fit.bootstrap.thetas, curve.areas(steps, self.decay))
        return self.fit.bootstrap.interval(samples)


def fit_curves(curves: list[Curve], *, decays=DECAYS, n_resamples: int = 0, level: float = 0.95,
               seed: int = 0) -> CurveFit:
    """Fit the law jointly to the validation points past warm-up of `curves` (runs of one size),
    trying each momentum decay; with n_resamples, bootstrap over runs (over points if < 5 runs)."""
    used = [c.past_warmup() for c in curves]
    used = [c for c in used if len(c.steps)]
    n = sum(len(c.steps) for c in used)
    if n <= ANNEALING.n_params:
        raise FitError(f"the curve law has {ANNEALING.n_params} parameters but the runs give {n} validation "
                       f"point(s) past warm-up; expected more than {ANNEALING.n_params}")
    y = np.concatenate([c.loss for c in used])
    best = None
    for decay in decays:
        X = {k: np.concatenate([c.areas(c.steps, decay)[k] for c in used]) for k in ANNEALING.inputs}
        try:
            fit = fit_law(ANNEALING, X, y, columns={"S1": "lr_area", "S2": "annealing_area", "L": "val_loss"})
        except FitError:
            continue
        if best is None or fit.objective < best[0].objective:
            best = (fit, decay)
    if best is None:
        raise FitError(f"the curve law fits none of {len(used)} run(s) with any momentum decay in {tuple(decays)}; "
                       f"expected validation losses that fall as training goes on")
    fit, decay = best
    if n_resamples:
        groups = np.concatenate([[c.run_id] * len(c.steps) for c in used])
        by_run = len(used) >= MIN_BOOTSTRAP_GROUPS
        bootstrap(fit, n_resamples, level=level, seed=seed, groups=groups if by_run else None,
                  group_name="run" if by_run else None)
    return CurveFit(fit=fit, decay=decay, run_ids=[c.run_id for c in used])
