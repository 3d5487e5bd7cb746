"""Fit a law to data from many starts at once (Chinchilla approach 3 for the Chinchilla law).

`fit_law` runs L-BFGS from every start of the law's grid (4,500 for Chinchilla, Hoffmann et al.
D.2) in one batch and keeps the best start whose exponents are positive (a power law with a
negative exponent grows with scale: such a fit is refused, not reported). `Fit` holds the
result; `bootstrap` refits it on resamples of independent runs (all rows of one run move
together; pinned rows stay in every resample), and `parameter_interval` reads the interval that
covers parameter noise only. The interval shown by default, which also covers extrapolation,
is built in `extrapolation.py`.
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
# Fewer independent runs than this make a bootstrap meaningless (each resample is nearly the data).
MIN_BOOTSTRAP_GROUPS = 5


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
    weights: np.ndarray | None = None     # (n,) row weights (None: all 1)
    over_penalty: float = 1.0             # cost multiplier of over-estimates (see objective.py)
    fixed: dict = field(default_factory=dict)     # theta name -> value held fixed (pinned parameters)
    extrapolation: object | None = None   # extrapolation.Calibration, when backtests were possible

    @property
    def params(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.law.to_params(self.theta).items()}

    @property
    def derived(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.law.derived(self.law.to_params(self.theta)).items()}

    @property
    def row_weights(self) -> np.ndarray:
        return np.ones(len(self.y)) if self.weights is None else self.weights

    @property
    def n_free(self) -> int:
        return self.law.n_params - len(self.fixed)

    def predict(self, **inputs) -> np.ndarray:
        return self.law.predict_theta(self.theta, inputs)[0]

    def residuals(self) -> np.ndarray:
        """Residuals in fit space (log-loss for loss laws): prediction minus observation."""
        pred = self.law.predict_theta(self.theta, self.X)[0]
        return to_fit_space(self.law, pred) - to_fit_space(self.law, self.y)

    @property
    def free(self) -> list[int]:
        """Indices of the parameters the fit moves (all but the pinned ones)."""
        return [j for j, k in enumerate(self.law.theta_names) if k not in self.fixed]

    def objective_fn(self, weight_rows: np.ndarray, problem_rows: np.ndarray):
        """(fun over the free parameters, expand to a full theta) with this fit's settings."""
        return free_objective(self.law, self.X, self.y, weight_rows, problem_rows, self.delta, self.over_penalty,
                              self.fixed)


def pin_value(law: Law, name: str, value: float) -> tuple[str, float]:
    """A published parameter (E = 1.7) or a fit parameter (log_E = 0.53) as (theta name, theta value)."""
    if name in law.theta_names:
        return name, float(value)
    if f"log_{name}" in law.theta_names:
        if not value > 0:
            raise FitError(f"pinned {name} = {value!r}; expected a positive value (the law keeps it positive)")
        return f"log_{name}", float(np.log(value))
    raise FitError(f"law {law.name!r} has no parameter {name!r} to pin; expected one of "
                   f"{', '.join(law.param_names)}")


def free_objective(law, X, y, weight_rows, problem_rows, delta, over_penalty, fixed):
    """The objective over the parameters not in `fixed`, and the map back to full thetas."""
    fun = make_objective(law, X, y, weight_rows, problem_rows, delta, over_penalty)
    idx = [law.theta_names.index(k) for k in fixed]
    free = np.array([j for j in range(law.n_params) if j not in idx], dtype=int)
    values = np.array(list(fixed.values()), dtype=float)

    def expand(t):
        full = np.empty((len(t), law.n_params))
        full[:, free] = t
        full[:, idx] = values
        return full

    def f(t, rows):
        v, g = fun(expand(t), rows)
        return v, g[:, free]

    return (f, expand) if idx else (fun, lambda t: t)


def check_data(law: Law, X: dict, y: np.ndarray, columns: dict | None = None, n_free: int | None = None,
               weights=None) -> tuple[dict, np.ndarray]:
    """Arrays of equal length, finite, > 0 where a log is taken, and more points than parameters."""
    columns = columns or {}
    X = {name: np.asarray(X[name], dtype=float) for name in law.inputs}
    y = np.asarray(y, dtype=float)
    checks = [*X.items(), (law.target, y)] + ([("weight", np.asarray(weights, dtype=float))] if weights is not None else [])
    for name, values in checks:
        col = columns.get(name, name)
        positive = name in law.positive_inputs() or (name == law.target and law.space == "log")
        bad = ~np.isfinite(values) | ((values <= 0) if positive else False) | ((values < 0) if name == "weight" else False)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            need = "finite and > 0" if positive else "finite and >= 0" if name == "weight" else "finite"
            raise FitError(f"column {col!r} has {int(bad.sum())} bad value(s) (first: row {i} = {float(values[i])!r}); "
                           f"expected {need}")
    p = law.n_params if n_free is None else n_free
    if len(y) <= p:
        raise FitError(f"law {law.name!r} has {p} parameters but only {len(y)} data point(s) were given; "
                       f"expected more than {p}")
    return X, y


def fit_law(law: Law | str, X: dict, y, *, starts: np.ndarray | None = None, delta: float = HUBER_DELTA,
            columns: dict | None = None, max_iter: int = 1000, weights=None, over_penalty: float = 1.0,
            fixed: dict | None = None) -> Fit:
    """Fit `law` to inputs X (name -> values) and targets y from every start (default: the law's grid).

    weights: per-row weights; over_penalty: see objective.py; fixed: {name: value} parameters held
    fixed (published names such as E, or fit names such as log_E)."""
    law = get_law(law) if isinstance(law, str) else law
    pinned = dict(pin_value(law, k, v) for k, v in (fixed or {}).items())
    X, y = check_data(law, X, y, columns, law.n_params - len(pinned), weights)
    w = None if weights is None else np.asarray(weights, dtype=float)
    starts = law.start_grid(X, y) if starts is None else np.atleast_2d(np.asarray(starts, dtype=float))
    if pinned:  # search the other parameters only, from each distinct start among them
        starts = np.unique(starts[:, [j for j, k in enumerate(law.theta_names) if k not in pinned]], axis=0)
    fun, expand = free_objective(law, X, y, (np.ones(len(y)) if w is None else w)[None],
                                 np.zeros(len(starts), dtype=int), delta, over_penalty, pinned)
    with np.errstate(all="ignore"):
        res = minimize_batch(fun, starts, max_iter=max_iter)
    x_full = expand(res.x)
    order = _admissible_order(law, x_full, res.fun, res.converged, len(starts))
    best = order[0]
    same = np.abs(res.fun[order] - res.fun[best]) <= SAME_OPTIMUM_RTOL * max(abs(res.fun[best]), 1e-300)
    converged = bool(res.converged[best] or res.converged[order[same]].any())
    fit = Fit(law=law, theta=x_full[best], objective=float(res.fun[best]), converged=converged,
              status=STATUS_NAMES[res.status[best]], n_starts=len(starts), n_at_optimum=int(same.sum()),
              grad_max=float(res.grad_max[best]), X=X, y=y, delta=delta,
              minima=_distinct_minima(x_full[order], res.fun[order]), columns=dict(columns or {}), weights=w,
              over_penalty=float(over_penalty), fixed=pinned)
    if not converged:
        warnings.warn(f"fit of {law.name!r} did not converge ({fit.status}); treat its parameters with care",
                      stacklevel=2)
    return fit


def _admissible(law: Law, x: np.ndarray, fun: np.ndarray) -> np.ndarray:
    ok = np.isfinite(fun)
    for name in law.positive_theta:
        ok &= x[:, law.theta_names.index(name)] > 0
    return ok


def _admissible_order(law, x, fun, converged, n_starts) -> np.ndarray:
    """Indices of the finite, positive-exponent results, best first. One clear error when none is,
    or when only starts that never converged are (drifting towards an exponent of 0) while others
    converge to a non-positive exponent."""
    finite = np.isfinite(fun)
    if not finite.any():
        raise FitError(f"law {law.name!r}: every one of {n_starts} starts diverged; expected a finite objective")
    ok = _admissible(law, x, fun)
    if not ok.any() or (not (ok & converged).any() and (finite & ~ok & converged).any()):
        best = np.flatnonzero(finite)[np.argmin(fun[finite])]
        shown = ", ".join(f"{k} = {x[best, law.theta_names.index(k)]:.3g}" for k in law.positive_theta)
        raise FitError(f"law {law.name!r}: no start ends with positive exponents (the best fit has {shown}); "
                       f"expected a loss that falls with scale: these points do not follow the law's form")
    return np.flatnonzero(ok)[np.argsort(fun[ok])]


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
    """Parameters refitted on resamples of independent runs, drawn with replacement."""

    thetas: np.ndarray         # (K, p); a resample with no admissible fit is a row of NaN
    level: float
    seed: int
    n_failed: int              # resamples whose best start did not converge or had no positive exponents
    resampled: str = "points (runs), with replacement"
    n_groups: int | None = None

    def samples(self, law: Law) -> dict[str, np.ndarray]:
        params = law.to_params(self.thetas)
        return {**params, **law.derived(params)}

    def interval(self, values: np.ndarray) -> tuple[float, float]:
        tail = 50.0 * (1.0 - self.level)
        with warnings.catch_warnings():  # a column of failed resamples only: NaN, said by n_failed
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanpercentile(values, [tail, 100.0 - tail], axis=0)
        return lo, hi

    def intervals(self, law: Law) -> dict[str, tuple[float, float]]:
        return {k: tuple(float(x) for x in self.interval(v)) for k, v in self.samples(law).items()}


def refit_weighted(fit: Fit, weights: np.ndarray, starts: np.ndarray, max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """The law refitted under each row of `weights` from every start (free parameters), in one batch:
    per row, the best admissible optimum (NaN where none is), and whether it converged admissibly."""
    k, s = len(weights), len(starts)
    fun, expand = fit.objective_fn(weights, np.repeat(np.arange(k), s))
    with np.errstate(all="ignore"):
        res = minimize_batch(fun, np.tile(starts, (k, 1)), max_iter=max_iter)
    x_full = expand(res.x)
    ok = _admissible(fit.law, x_full, res.fun)
    best = np.where(ok, res.fun, np.inf).reshape(k, s).argmin(axis=1) + np.arange(k) * s
    out = x_full[best].copy()
    out[~ok[best]] = np.nan
    return out, res.converged[best] & ok[best]


def check_bootstrap(n_rows: int, groups=None, pinned=None) -> int:
    """The number of independent runs a bootstrap would resample; too few is one clear error."""
    free = np.ones(n_rows, dtype=bool) if pinned is None else ~np.asarray(pinned, dtype=bool)
    n = len(np.unique(np.asarray(groups)[free])) if groups is not None else int(free.sum())
    if n < MIN_BOOTSTRAP_GROUPS:
        raise FitError(f"the bootstrap has {n} independent run(s) to resample; expected at least "
                       f"{MIN_BOOTSTRAP_GROUPS} (fewer make every resample nearly the data: no interval)")
    return n


def resample_weights(rng, weights: np.ndarray, groups=None, pinned=None,
                     n_resamples: int = 1000) -> tuple[np.ndarray, int]:
    """(K, n) row weights and the number of groups: each group (run) drawn with replacement keeps
    all its rows together; pinned rows keep their weight in every resample."""
    n = len(weights)
    pinned = np.zeros(n, dtype=bool) if pinned is None else np.asarray(pinned, dtype=bool)
    groups = np.arange(n) if groups is None else np.asarray(groups)
    free = ~pinned
    check_bootstrap(n, groups, pinned)
    labels, inverse = np.unique(groups[free], return_inverse=True)
    counts = rng.multinomial(len(labels), np.full(len(labels), 1.0 / len(labels)), size=n_resamples).astype(float)
    out = np.empty((n_resamples, n))
    out[:, free] = counts[:, inverse] * weights[free]
    out[:, pinned] = weights[pinned]
    return out, len(labels)


def bootstrap(fit: Fit, n_resamples: int = 1000, *, level: float = 0.95, seed: int = 0,
              starts: np.ndarray | None = None, max_iter: int = 1000, groups=None, pinned=None,
              group_name: str | None = None) -> Bootstrap:
    """Refit on n_resamples resamples of the runs, all at once; sets and returns fit.bootstrap.

    groups: a label per row (e.g. run_id): the rows of one run (its curve's checkpoints) go in or
    out together; default: every row is its own run. pinned: rows kept in every resample (an
    anchor point). Each resample starts from the full fit's distinct local minima (or `starts`),
    which is what a fresh grid search on a resample lands on in practice, at a tiny fraction of the cost.
    """
    if n_resamples < 2:
        raise FitError(f"bootstrap needs at least 2 resamples, got {n_resamples}")
    if not 0.0 < level < 1.0:
        raise FitError(f"bootstrap level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    weights, n_groups = resample_weights(rng, fit.row_weights, groups, pinned, n_resamples)
    starts = fit.minima if starts is None else np.atleast_2d(starts)
    starts = (fit.theta[None] if starts is None else starts)[:, fit.free]
    thetas, converged = refit_weighted(fit, weights, starts, max_iter)
    what = f"runs (all rows of one {group_name} together)" if group_name else "points (runs), with replacement"
    if pinned is not None and np.any(pinned):
        what += f"; {int(np.sum(pinned))} pinned row(s) in every resample"
    fit.bootstrap = Bootstrap(thetas=thetas, level=level, seed=seed,
                              n_failed=int((~converged).sum()), resampled=what,
                              n_groups=n_groups)
    return fit.bootstrap


def parameter_interval(fit: Fit, **inputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point prediction and the parameter-only interval at the given inputs (needs fit.bootstrap).

    It covers the noise in the fitted parameters (for the law itself, the expected loss), not the
    scatter of one run nor the error of extrapolating a law that real curves do not follow
    exactly: for predictions use `extrapolation.honest_interval`."""
    if fit.bootstrap is None:
        raise FitError("this fit has no bootstrap samples; expected a fit made with --bootstrap K (K >= 2)")
    point = fit.predict(**inputs)
    with np.errstate(all="ignore"):
        samples = fit.law.predict_theta(fit.bootstrap.thetas, inputs)
    lo, hi = fit.bootstrap.interval(samples)
    return point, lo, hi
