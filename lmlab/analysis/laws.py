"""Scaling laws as data: a formula, its parameters, its inputs, and how to evaluate it in batch.

Each law is fitted in an internal parameterisation `theta` (logs of positive scales) where the fit
is well conditioned; `params` are the published names (E, A, B, alpha, beta, ...). Loss laws are
fitted on log-loss residuals (space "log"); accuracy and error laws on plain residuals ("linear").

Most loss laws are a sum of power-law terms, i.e. log L = LogSumExp of terms affine in theta:
`LSELaw` evaluates any of them and its exact gradient from a table of (theta index, feature) pairs.
"""

from __future__ import annotations

import itertools
from typing import Callable

import numpy as np

from lmlab.errors import FitError

Feature = Callable[[dict], np.ndarray] | None  # None: the constant 1


def _grid(*axes) -> np.ndarray:
    return np.array(list(itertools.product(*axes)), dtype=float)


def _neg_log(name: str) -> Callable[[dict], np.ndarray]:
    return lambda X: -np.log(X[name])


class Law:
    """A law with inputs (names like "N", "D"), a target, and fit/publish parameterisations."""

    name: str
    formula: str
    inputs: tuple[str, ...]
    target: str = "L"
    theta_names: tuple[str, ...]
    param_names: tuple[str, ...]
    space: str = "log"
    # fit parameters that must be > 0 (exponents of power laws): a fit that needs them <= 0 is refused
    positive_theta: tuple[str, ...] = ()

    @property
    def n_params(self) -> int:
        return len(self.theta_names)

    def prepare(self, X: dict) -> object:
        """Per-data-set precomputation reused by every evaluation."""
        raise NotImplementedError

    def value_and_vjp(self, theta: np.ndarray, prep: object):
        """Prediction in fit space (k, n) and a function mapping dObjective/dpred (k, n) to (k, p)."""
        raise NotImplementedError

    def to_params(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def from_params(self, params: dict) -> np.ndarray:
        raise NotImplementedError

    def start_grid(self, X: dict, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def positive_inputs(self) -> tuple[str, ...]:
        """Inputs that enter through a logarithm and so must be > 0."""
        return self.inputs

    def predict_theta(self, theta: np.ndarray, X: dict) -> np.ndarray:
        """Natural-space predictions (k, n) for parameter rows theta (k, p)."""
        pred, _ = self.value_and_vjp(np.atleast_2d(theta), self.prepare(_as_arrays(X)))
        return np.exp(pred) if self.space == "log" else pred

    def predict_paired(self, thetas: np.ndarray, X: dict, block: int = 64) -> np.ndarray:
        """Row i of thetas at point i of X. The batched law evaluates every row at every point, so
        take diagonals of small blocks rather than of one k x k matrix."""
        thetas = np.atleast_2d(thetas)
        X = _as_arrays(X)
        out = np.empty(len(thetas))
        for i in range(0, len(thetas), block):
            sl = slice(i, i + block)
            out[sl] = np.diagonal(self.predict_theta(thetas[sl], {k: v[sl] for k, v in X.items()}))
        return out

    def predict(self, params: dict, **inputs) -> np.ndarray:
        return self.predict_theta(self.from_params(params), inputs)[0]

    def derived(self, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Quantities people quote besides the parameters (e.g. Chinchilla's allocation exponents)."""
        return {}

    def to_json(self) -> dict:
        """What the law is, for the fit file and for people."""
        return {"name": self.name, "formula": self.formula, "inputs": list(self.inputs), "target": self.target,
                "params": list(self.param_names), "fit_parameters": list(self.theta_names),
                "residuals": self.space}


def _as_arrays(X: dict) -> dict:
    return {k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in X.items()}


class LSELaw(Law):
    """log y = LogSumExp_t( sum_j theta_j * feature_tj(X) ): a sum of power-law (and constant) terms."""

    def __init__(self, name, formula, inputs, theta_names, param_names, terms, to_params, from_params,
                 grid, derived=None, target="L", positive=()):
        self.name, self.formula, self.inputs, self.target = name, formula, tuple(inputs), target
        self.positive_theta = tuple(positive)
        self.theta_names, self.param_names = tuple(theta_names), tuple(param_names)
        self.terms = terms
        self._to_params, self._from_params, self._grid, self._derived = to_params, from_params, grid, derived

    def prepare(self, X):
        n = len(next(iter(X.values())))
        return n, [[(j, None if f is None else f(X)) for j, f in term] for term in self.terms]

    def value_and_vjp(self, theta, prep):
        n, terms = prep
        z = np.empty((len(terms), theta.shape[0], n))
        for t, term in enumerate(terms):
            _affine(theta, term, z[t])
        if len(terms) == 1:
            lse, inv_total = z[0], None
        else:  # z becomes exp(z - max); the softmax weights z / total are formed lazily in vjp
            top = z.max(axis=0)
            np.subtract(z, top, out=z)
            np.exp(z, out=z)
            total = z.sum(axis=0)
            lse = np.log(total)
            lse += top
            inv_total = np.reciprocal(total, out=total)

        def vjp(dpred):
            grad = np.zeros(theta.shape)
            scaled = dpred if inv_total is None else dpred * inv_total
            for t, term in enumerate(terms):
                q = scaled if inv_total is None else scaled * z[t]
                q_sum = None
                for j, v in term:
                    if v is None:
                        q_sum = q.sum(axis=1) if q_sum is None else q_sum
                        grad[:, j] += q_sum
                    else:
                        grad[:, j] += q @ v
            return grad

        return lse, vjp

    def to_params(self, theta):
        return self._to_params(np.asarray(theta, dtype=float))

    def from_params(self, params):
        return np.asarray(self._from_params({k: np.asarray(params[k], dtype=float) for k in self.param_names}),
                          dtype=float).T

    def start_grid(self, X, y):
        return self._grid

    def derived(self, params):
        return self._derived(params) if self._derived else {}


def _affine(theta, term, out):
    """out (k, n) = sum_j theta[:, j] * feature_j (feature None is the constant 1), in place."""
    const = np.zeros(theta.shape[0])
    first = True
    for j, v in term:
        if v is None:
            const += theta[:, j]
        elif first:
            np.multiply(theta[:, j, None], v, out=out)
            first = False
        else:
            out += theta[:, j, None] * v
    if first:
        out[:] = const[:, None]
    else:
        out += const[:, None]


def _cols(theta):
    return [theta[..., j] for j in range(theta.shape[-1])]


def _power_law(name, var, scale, exponent, irreducible):
    """Kaplan's L(X) = (Xc/X)^alpha_X, optionally + E; fitted as c - alpha log X with c = alpha log Xc."""
    if irreducible:
        def to_params(th):
            e, c, a = _cols(th)
            return {"E": np.exp(e), scale: np.exp(c / a), exponent: a}

        def from_params(p):
            return [np.log(p["E"]), p[exponent] * np.log(p[scale]), p[exponent]]

        return LSELaw(
            name, f"L = E + ({scale}/{var})^{exponent}", (var,), ("log_E", "c", exponent),
            ("E", scale, exponent), [[(0, None)], [(1, None), (2, _neg_log(var))]], to_params, from_params,
            _grid(np.arange(-1, 1.01, 0.5), np.arange(0, 26, 5), (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)),
            positive=(exponent,))

    def to_params(th):
        c, a = _cols(th)
        return {scale: np.exp(c / a), exponent: a}

    def from_params(p):
        return [p[exponent] * np.log(p[scale]), p[exponent]]

    return LSELaw(name, f"L = ({scale}/{var})^{exponent}", (var,), ("c", exponent), (scale, exponent),
                  [[(0, None), (1, _neg_log(var))]], to_params, from_params,
                  _grid((0.0, 2.0, 5.0), (0.05, 0.1, 0.3)), positive=(exponent,))


def _chinchilla_derived(p):
    total = p["alpha"] + p["beta"]
    return {"a": p["beta"] / total, "b": p["alpha"] / total}


CHINCHILLA = LSELaw(
    "chinchilla", "L = E + A/N^alpha + B/D^beta", ("N", "D"),
    ("log_A", "log_B", "log_E", "alpha", "beta"), ("E", "A", "B", "alpha", "beta"),
    [[(0, None), (3, _neg_log("N"))], [(1, None), (4, _neg_log("D"))], [(2, None)]],
    lambda th: {"E": np.exp(th[..., 2]), "A": np.exp(th[..., 0]), "B": np.exp(th[..., 1]),
                "alpha": th[..., 3], "beta": th[..., 4]},
    lambda p: [np.log(p["A"]), np.log(p["B"]), np.log(p["E"]), p["alpha"], p["beta"]],
    # Hoffmann et al. appendix D.2: a, b in {0..25 step 5}, e in {-1..1 step .5}, alpha, beta in {0..2 step .5}
    _grid(np.arange(0, 26, 5), np.arange(0, 26, 5), np.arange(-1, 1.01, 0.5),
          np.arange(0, 2.01, 0.5), np.arange(0, 2.01, 0.5)),
    derived=_chinchilla_derived, positive=("alpha", "beta"))


def _log_m_minus_log_c(X):
    return np.log(X["M"]) - np.log(X["C"])


def _minus_log_m_minus_log_c(X):
    return -np.log(X["M"]) - np.log(X["C"])


OVERTRAIN = LSELaw(
    "overtrain", "L = E + (a M^eta + b M^-eta) C^-eta, M = D/N", ("C", "M"),
    ("log_a", "log_b", "log_E", "eta"), ("E", "a", "b", "eta"),
    [[(0, None), (3, _log_m_minus_log_c)], [(1, None), (3, _minus_log_m_minus_log_c)], [(2, None)]],
    lambda th: {"E": np.exp(th[..., 2]), "a": np.exp(th[..., 0]), "b": np.exp(th[..., 1]), "eta": th[..., 3]},
    lambda p: [np.log(p["a"]), np.log(p["b"]), np.log(p["E"]), p["eta"]],
    _grid(np.arange(0, 26, 5), np.arange(0, 26, 5), np.arange(-1, 1.01, 0.5), (0.05, 0.1, 0.2, 0.3, 0.5)),
    positive=("eta",))

KAPLAN_NS = LSELaw(
    "kaplan_ns", "L = (Nc/N)^alpha_N + (Sc/S_min)^alpha_S", ("N", "S_min"),
    ("c_N", "alpha_N", "c_S", "alpha_S"), ("Nc", "alpha_N", "Sc", "alpha_S"),
    [[(0, None), (1, _neg_log("N"))], [(2, None), (3, _neg_log("S_min"))]],
    lambda th: {"Nc": np.exp(th[..., 0] / th[..., 1]), "alpha_N": th[..., 1],
                "Sc": np.exp(th[..., 2] / th[..., 3]), "alpha_S": th[..., 3]},
    lambda p: [p["alpha_N"] * np.log(p["Nc"]), p["alpha_N"], p["alpha_S"] * np.log(p["Sc"]), p["alpha_S"]],
    _grid((0.0, 2.0, 5.0), (0.05, 0.1, 0.3), (0.0, 2.0, 5.0), (0.05, 0.1, 0.3, 0.6)),
    positive=("alpha_N", "alpha_S"))

CURVE = LSELaw(
    "curve", "L = E + B D^-beta (one run's loss curve)", ("D",),
    ("log_E", "log_B", "beta"), ("E", "B", "beta"),
    [[(0, None)], [(1, None), (2, _neg_log("D"))]],
    lambda th: {"E": np.exp(th[..., 0]), "B": np.exp(th[..., 1]), "beta": th[..., 2]},
    lambda p: [np.log(p["E"]), np.log(p["B"]), p["beta"]],
    _grid(np.arange(-1, 1.51, 0.5), (0.0, 2.0, 5.0, 10.0), (0.05, 0.1, 0.2, 0.5, 1.0)), positive=("beta",))


class KaplanND(Law):
    """Kaplan et al. eq. 1.5: L(N, D) = [(Nc/N)^(alpha_N/alpha_D) + Dc/D]^alpha_D."""

    name, formula, inputs = "kaplan", "L = [(Nc/N)^(alpha_N/alpha_D) + Dc/D]^alpha_D", ("N", "D")
    theta_names = ("log_Nc", "log_Dc", "alpha_N", "alpha_D")
    param_names = ("Nc", "Dc", "alpha_N", "alpha_D")
    positive_theta = ("alpha_N", "alpha_D")

    def prepare(self, X):
        return np.log(X["N"]), np.log(X["D"])

    def value_and_vjp(self, theta, prep):
        log_n, log_d = prep
        lnc, ldc, an, ad = (theta[:, j, None] for j in range(4))
        u = lnc - log_n                      # log(Nc/N)
        z1, z2 = (an / ad) * u, ldc - log_d
        top = np.maximum(z1, z2)
        e1, e2 = np.exp(z1 - top), np.exp(z2 - top)
        lse = top + np.log(e1 + e2)
        p1, p2 = e1 / (e1 + e2), e2 / (e1 + e2)

        def vjp(dpred):
            return np.stack([(dpred * an * p1).sum(1), (dpred * ad * p2).sum(1),
                             (dpred * p1 * u).sum(1), (dpred * (lse - p1 * z1)).sum(1)], axis=1)

        return ad * lse, vjp

    def to_params(self, theta):
        theta = np.asarray(theta, dtype=float)
        return {"Nc": np.exp(theta[..., 0]), "Dc": np.exp(theta[..., 1]),
                "alpha_N": theta[..., 2], "alpha_D": theta[..., 3]}

    def from_params(self, p):
        return np.array([np.log(p["Nc"]), np.log(p["Dc"]), p["alpha_N"], p["alpha_D"]], dtype=float).T

    def start_grid(self, X, y):
        scales = (15.0, 20.0, 25.0, 30.0, 35.0)
        return _grid(scales, scales, (0.05, 0.1, 0.3, 0.6), (0.05, 0.1, 0.3, 0.6))


class DownstreamError(Law):
    """Gadre et al.: downstream top-1 error from loss, Err(L) = eps - k exp(-gamma L)."""

    name, formula, inputs, target, space = "downstream", "Err = eps - k exp(-gamma L)", ("L",), "Err", "linear"
    theta_names = ("eps", "log_k", "gamma")
    param_names = ("eps", "k", "gamma")

    def positive_inputs(self):
        return ()

    def prepare(self, X):
        return X["L"]

    def value_and_vjp(self, theta, loss):
        eps, lk, gamma = (theta[:, j, None] for j in range(3))
        term = np.exp(lk - gamma * loss)     # k exp(-gamma L)

        def vjp(dpred):
            return np.stack([dpred.sum(1), -(dpred * term).sum(1), (dpred * term) @ loss], axis=1)

        return eps - term, vjp

    def to_params(self, theta):
        theta = np.asarray(theta, dtype=float)
        return {"eps": theta[..., 0], "k": np.exp(theta[..., 1]), "gamma": theta[..., 2]}

    def from_params(self, p):
        return np.array([p["eps"], np.log(p["k"]), p["gamma"]], dtype=float).T

    def start_grid(self, X, y):
        return _grid((0.5, 0.75, 1.0), (-2.0, 0.0, 2.0, 4.0), (0.5, 1.0, 2.0, 4.0))


class OlmoSigmoid(Law):
    """Bhagia et al. (OLMo ladder) step 2: accuracy from task loss, Acc(L) = a / (1 + exp(-k (L - L0))) + b."""

    name, formula, inputs, target, space = "olmo_sigmoid", "Acc = a / (1 + exp(-k (L - L0))) + b", ("L",), "Acc", "linear"
    theta_names = param_names = ("a", "k", "L0", "b")

    def positive_inputs(self):
        return ()

    def prepare(self, X):
        return X["L"]

    def value_and_vjp(self, theta, loss):
        a, k, l0, b = (theta[:, j, None] for j in range(4))
        shifted = loss - l0
        s = 0.5 * (1.0 + np.tanh(0.5 * k * shifted))  # a sigmoid that never overflows
        ds = s * (1.0 - s)

        def vjp(dpred):
            return np.stack([(dpred * s).sum(1), (dpred * a * ds * shifted).sum(1),
                             -(dpred * a * ds * k).sum(1), dpred.sum(1)], axis=1)

        return a * s + b, vjp

    def to_params(self, theta):
        theta = np.asarray(theta, dtype=float)
        return {name: theta[..., j] for j, name in enumerate(self.param_names)}

    def from_params(self, p):
        return np.array([p[name] for name in self.param_names], dtype=float).T

    def start_grid(self, X, y):
        return _grid((0.3, 0.6, 0.9), (-10.0, -3.0, -1.0), tuple(np.quantile(X["L"], (0.25, 0.5, 0.75))), (0.0, 0.25))


LAWS: dict[str, Law] = {law.name: law for law in (
    CHINCHILLA,
    KaplanND(),
    _power_law("kaplan_n", "N", "Nc", "alpha_N", False),
    _power_law("kaplan_n_e", "N", "Nc", "alpha_N", True),
    _power_law("kaplan_d", "D", "Dc", "alpha_D", False),
    _power_law("kaplan_d_e", "D", "Dc", "alpha_D", True),
    _power_law("kaplan_c", "C", "Cc", "alpha_C", False),
    _power_law("kaplan_c_e", "C", "Cc", "alpha_C", True),
    KAPLAN_NS,
    OVERTRAIN,
    DownstreamError(),
    OlmoSigmoid(),
    CURVE,
)}


def get_law(name: str) -> Law:
    try:
        return LAWS[name]
    except KeyError:
        raise FitError(f"unknown law {name!r}: expected one of {', '.join(LAWS)}") from None


def kaplan_b_crit(loss, b_star: float = 2.0e8, alpha_b: float = 0.21):
    """Kaplan et al.'s critical batch size in tokens, B_crit(L) = B* / L^(1/alpha_B)."""
    return b_star / np.asarray(loss, dtype=float) ** (1.0 / alpha_b)


def kaplan_s_min(steps, batch_tokens, loss, b_star: float = 2.0e8, alpha_b: float = 0.21):
    """Kaplan et al.'s minimum steps, S_min = S / (1 + B_crit(L) / B), for a run at batch B tokens."""
    return np.asarray(steps, dtype=float) / (1.0 + kaplan_b_crit(loss, b_star, alpha_b) / np.asarray(batch_tokens, dtype=float))
