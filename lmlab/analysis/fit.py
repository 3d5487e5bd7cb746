"""Fit a law to data from many starts at once (Chinchilla approach 3 for the Chinchilla law).

`fit_law` runs L-BFGS from every start of the law's grid (4,500 for Chinchilla, Hoffmann et al.
D.2) in one batch and keeps the best; `Fit` holds the result, its diagnostics and, once
`bootstrap` has run, the resampled parameters from which every interval is read.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from lmlab.analysis.laws import Law, get_law
from lmlab.analysis.objective import HUBER_DELTA, make_objective, to_fit_space
from lmlab.analysis.solver import STATUS_NAMES, minimize_batch
from lmlab.errors import FitError

# Two minima closer than this (relative, in objective) are the same optimum.
SAME_OPTIMUM_RTOL = 1e-6
MAX_KEPT_MINIMA = 4


@dataclass
class Fit:
    law: Law
    theta: np.ndarray                     # (p,) best point, fit parameterisation
    objective: float
    converged: bool
    status: str
    n_starts: int
    n_at_optimum: int                     # starts that ended at the best objective
    grad_max: float                       # largest gradient component at the best point
    X: dict                               # inputs used, name -> (n,)
    y: np.ndarray                         # targets used (natural space)
    delta: float = HUBER_DELTA
    minima: np.ndarray | None = None      # distinct local minima, best first (warm starts for resamples)
    columns: dict = field(default_factory=dict)   # law input name -> table column it came from
    bootstrap: "Bootstrap | None" = None

    @property
    def params(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.law.to_params(self.theta).items()}

    @property
    def derived(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.law.derived(self.law.to_params(self.theta)).items()}

    def predict(self, **inputs) -> np.ndarray:
        return self.law.predict_theta(self.theta, inputs)[0]

    def residuals(self) -> np.ndarray:
        """Residuals in fit space (log-loss for loss laws): prediction minus observation."""
        pred = self.law.predict_theta(self.theta, self.X)[0]
        return to_fit_space(self.law, pred) - to_fit_space(self.law, self.y)


def check_data(law: Law, X: dict, y: np.ndarray, columns: dict | None = None) -> tuple[dict, np.ndarray]:
    """Arrays of equal length, finite, > 0 where a log is taken, and more points than parameters."""
    columns = columns or {}
    X = {name: np.asarray(X[name], dtype=float) for name in law.inputs}
    y = np.asarray(y, dtype=float)
    for name, values in [*X.items(), (law.target, y)]:
        col = columns.get(name, name)
        positive = name in law.positive_inputs() or (name == law.target and law.space == "log")
        bad = ~np.isfinite(values) | ((values <= 0) if positive else False)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            need = "finite and > 0" if positive else "finite"
            raise FitError(f"column {col!r} has {int(bad.sum())} bad value(s) (first: row {i} = {float(values[i])!r}); "
                           f"expected {need}")
    if len(y) < law.n_params:
        raise FitError(f"law {law.name!r} has {law.n_params} parameters but only {len(y)} data point(s) were "
                       f"given; expected at least {law.n_params}")
    return X, y


def fit_law(law: Law | str, X: dict, y, *, starts: np.ndarray | None = None, delta: float = HUBER_DELTA,
            columns: dict | None = None, max_iter: int = 1000) -> Fit:
    """Fit `law` to inputs X (name -> values) and targets y from every start (default: the law's grid)."""
    law = get_law(law) if isinstance(law, str) else law
    X, y = check_data(law, X, y, columns)
    starts = law.start_grid(X, y) if starts is None else np.atleast_2d(np.asarray(starts, dtype=float))
    fun = make_objective(law, X, y, np.ones((1, len(y))), np.zeros(len(starts), dtype=int), delta)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        res = minimize_batch(fun, starts, max_iter=max_iter)
    finite = np.isfinite(res.fun)
    if not finite.any():
        raise FitError(f"law {law.name!r}: every one of {len(starts)} starts diverged; expected a finite objective")
    order = np.flatnonzero(finite)[np.argsort(res.fun[finite])]
    best = order[0]
    same = np.abs(res.fun[order] - res.fun[best]) <= SAME_OPTIMUM_RTOL * max(abs(res.fun[best]), 1e-300)
    converged = bool(res.converged[best] or res.converged[order[same]].any())
    fit = Fit(law=law, theta=res.x[best], objective=float(res.fun[best]), converged=converged,
              status=STATUS_NAMES[res.status[best]], n_starts=len(starts), n_at_optimum=int(same.sum()),
              grad_max=float(res.grad_max[best]),
              X=X, y=y, delta=delta, minima=_distinct_minima(res.x[order], res.fun[order]),
              columns=dict(columns or {}))
    if not converged:
        warnings.warn(f"fit of {law.name!r} did not converge ({fit.status}); treat its parameters with care",
                      stacklevel=2)
    return fit


def _distinct_minima(xs: np.ndarray, fs: np.ndarray) -> np.ndarray:
    kept = [0]
    for i in range(1, len(fs)):
        if len(kept) == MAX_KEPT_MINIMA:
            break
        if abs(fs[i] - fs[kept[-1]]) > SAME_OPTIMUM_RTOL * max(abs(fs[kept[-1]]), 1e-300):
            kept.append(i)
    return xs[kept]


@dataclass
class Bootstrap:
    """Parameters refitted on resamples of the data points (runs), drawn with replacement."""

    thetas: np.ndarray         # (K, p)
    level: float
    seed: int
    n_failed: int              # resamples whose best start did not converge (kept, but counted)

    def samples(self, law: Law) -> dict[str, np.ndarray]:
        params = law.to_params(self.thetas)
        return {**params, **law.derived(params)}

    def interval(self, values: np.ndarray) -> tuple[float, float]:
        tail = 50.0 * (1.0 - self.level)
        lo, hi = np.nanpercentile(values, [tail, 100.0 - tail], axis=0)
        return lo, hi

    def intervals(self, law: Law) -> dict[str, tuple[float, float]]:
        return {k: tuple(float(x) for x in self.interval(v)) for k, v in self.samples(law).items()}


def bootstrap(fit: Fit, n_resamples: int = 1000, *, level: float = 0.95, seed: int = 0,
              starts: np.ndarray | None = None, max_iter: int = 1000) -> Bootstrap:
    """Refit on n_resamples resamples of the points, all at once; sets and returns fit.bootstrap.

    Each resample starts from the full fit's distinct local minima (or `starts`), which is what a
    fresh grid search on a resample lands on in practice, at a tiny fraction of the cost.
    """
    if n_resamples < 2:
        raise FitError(f"bootstrap needs at least 2 resamples, got {n_resamples}")
    if not 0.0 < level < 1.0:
        raise FitError(f"bootstrap level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    n = len(fit.y)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples).astype(float)
    starts = fit.minima if starts is None else np.atleast_2d(starts)
    n_starts = len(starts)
    problem_weights = np.repeat(np.arange(n_resamples), n_starts)
    fun = make_objective(fit.law, fit.X, fit.y, counts, problem_weights, fit.delta)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        res = minimize_batch(fun, np.tile(starts, (n_resamples, 1)), max_iter=max_iter)
    values = np.where(np.isfinite(res.fun), res.fun, np.inf).reshape(n_resamples, n_starts)
    best = values.argmin(axis=1) + np.arange(n_resamples) * n_starts
    fit.bootstrap = Bootstrap(thetas=res.x[best], level=level, seed=seed,
                              n_failed=int((~res.converged[best]).sum()))
    return fit.bootstrap


def predict_interval(fit: Fit, *, single_run: bool = False, **inputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point prediction and the bootstrap interval at the given inputs (needs fit.bootstrap).

    By default the interval is for the law itself (the expected loss). With single_run, each
    resampled law also gets one of the fit's residuals added, so the interval is for one new run,
    which scatters about the law as the fitted runs did."""
    if fit.bootstrap is None:
        raise FitError("this fit has no bootstrap samples; expected a fit made with --bootstrap K (K >= 2)")
    point = fit.predict(**inputs)
    samples = fit.law.predict_theta(fit.bootstrap.thetas, inputs)
    if single_run:
        rng = np.random.default_rng(fit.bootstrap.seed)
        noise = rng.choice(fit.residuals(), size=samples.shape)
        samples = samples * np.exp(-noise) if fit.law.space == "log" else samples - noise
    lo, hi = fit.bootstrap.interval(samples)
    return point, lo, hi
