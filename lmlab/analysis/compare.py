"""`lmlab fit --compare`: how much the answer moves with the method (Chinchilla's law).

At a target compute, N*, D* and the predicted loss from
  approach 3            the parametric law, Huber on log residuals from Hoffmann et al.'s grid;
  variable projection   the same law, but E, A and B solved exactly (non-negative least squares
                        on relative residuals) for each (alpha, beta), and only the two exponents
                        searched: far better conditioned (Open-Athena's analysis);
  approach 2            IsoFLOP parabolas (N_opt, D_opt power laws; the loss from Kaplan's
                        L = E + (Cc/C)^alpha through the parabolas' minima, a plain power law
                        when there are fewer than 4 budgets);
  approach 3, E pinned  at a few values around the fitted E (0.9x to 1.1x, below the lowest loss):
                        how much the answer leans on the one parameter the runs barely determine.
The spread across the methods and across the pinned E (max/min of N* and D*, the range of the
loss) is part of the answer.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize, nnls

from lmlab.analysis.allocation import chinchilla_optimal, fit_power_law
from lmlab.errors import FitError

E_PIN_FACTORS = (0.9, 0.95, 1.05, 1.1)
VARPRO_GRID = np.linspace(0.05, 1.2, 24)


def varpro(n, d, y) -> dict:
    """Chinchilla's law by variable projection: (E, A, B) >= 0 exactly for each (alpha, beta)."""
    n, d, y = (np.asarray(v, dtype=float) for v in (n, d, y))

    def solve(exps):
        alpha, beta = exps
        design = np.column_stack([np.ones_like(y), n ** -alpha, d ** -beta]) / y[:, None]
        coef, resid = nnls(design, np.ones_like(y))
        return coef, resid ** 2

    grid = [(a, b) for a in VARPRO_GRID for b in VARPRO_GRID]
    best = min(grid, key=lambda e: solve(e)[1])
    res = minimize(lambda e: solve(e)[1] if min(e) > 0 else np.inf, best, method="Nelder-Mead",
                   options={"xatol": 1e-6, "fatol": 1e-14})
    (e, a, b), _ = solve(res.x)
    return {"E": e, "A": a, "B": b, "alpha": float(res.x[0]), "beta": float(res.x[1])}


def _row(method, params, flops) -> dict:
    if not (params["A"] > 0 and params["B"] > 0):
        return {"method": method, "N_opt": None, "D_opt": None, "loss": None, "note": "a coefficient is 0"}
    n_opt, d_opt = (float(v) for v in chinchilla_optimal(params, flops))
    loss = params["E"] + params["A"] / n_opt ** params["alpha"] + params["B"] / d_opt ** params["beta"]
    return {"method": method, "N_opt": n_opt, "D_opt": d_opt, "loss": float(loss),
            "a": params["beta"] / (params["alpha"] + params["beta"]), "E": float(params["E"])}


def compare(fit, n, d, flops_col, loss, target_flops: float, window=None, rtol: float = 0.1, starts=None) -> dict:
    """The comparison table at target_flops and its spread (see the module doc)."""
    from lmlab.analysis.approaches import approach2
    from lmlab.analysis.fit import fit_law

    rows = [_row("approach 3", fit.params, target_flops), _row("variable projection", varpro(n, d, loss), target_flops)]
    try:
        a2 = approach2(n, flops_col, loss, rtol=rtol, window=window)
        rows.append({"method": "approach 2", "N_opt": float(a2.n_opt(target_flops)), "D_opt": float(a2.d_opt(target_flops)),
                     "loss": _minima_loss(a2, target_flops), "a": a2.n_opt.exponent})
    except FitError as err:
        rows.append({"method": "approach 2", "N_opt": None, "D_opt": None, "loss": None, "note": str(err)})
    e_hat, floor = fit.params["E"], float(np.min(loss))
    for factor in E_PIN_FACTORS:
        e = factor * e_hat
        if e >= floor:
            continue
        pinned = fit_law("chinchilla", {"N": n, "D": d}, loss, fixed={"E": e}, delta=fit.delta,
                         weights=fit.weights, over_penalty=fit.over_penalty, starts=starts)
        rows.append(_row(f"approach 3, E pinned at {e:.4g}", pinned.params, target_flops))
    methods = [r for r in rows if "pinned" not in r["method"]]
    pinned = [rows[0]] + [r for r in rows if "pinned" in r["method"]]
    return {"target_flops": target_flops, "rows": rows, "spread_methods": spread(methods),
            "spread_e_pinned": spread(pinned)}


def _minima_loss(a2, flops: float) -> float:
    """The loss at `flops` from the IsoFLOP minima: E + (Cc/C)^alpha, or a power law if too few."""
    from lmlab.analysis.fit import fit_law

    if len(a2.flops) >= 4:
        try:
            law = fit_law("kaplan_c_e", {"C": a2.flops}, a2.loss_points)
            return float(law.predict(C=np.array([flops]))[0])
        except FitError:
            pass
    return float(fit_power_law(a2.flops, a2.loss_points)(flops))


def spread(rows) -> dict:
    done = [r for r in rows if r["N_opt"] is not None]
    if len(done) < 2:
        return {}
    n, d, l = (np.array([r[k] for r in done]) for k in ("N_opt", "D_opt", "loss"))
    return {"N_opt_max_over_min": float(n.max() / n.min()), "D_opt_max_over_min": float(d.max() / d.min()),
            "loss_range": [float(l.min()), float(l.max())], "loss_range_relative": float((l.max() - l.min()) / np.median(l))}


def compare_cli(args, df, notes, log) -> dict:
    """`lmlab fit --compare`: the approach-3 fit document, plus the comparison under `compare`."""
    from lmlab.analysis.cli_fit import _columns, fit_law_cli, starts
    from lmlab.analysis.fitjson import fit_from_doc
    from lmlab.analysis.laws import CHINCHILLA
    from lmlab.analysis.study import law_data, standard_inputs

    doc = fit_law_cli(args, CHINCHILLA, df, None, notes, log)
    fit = fit_from_doc(doc)
    data = law_data(df, CHINCHILLA, _columns(args))
    flops = standard_inputs(df, _columns(args))["C"]   # the table's compute, else 6ND
    target = args.target_flops or 100.0 * float(np.max(flops))
    result = compare(fit, data.X["N"], data.X["D"], flops, data.y, target, args.window, args.isoflop_rtol,
                     starts(args, CHINCHILLA, data))
    print(f"compare at C = {target:.4g} FLOPs:")
    print(f"  {'method':<34} {'N_opt':>10} {'D_opt':>10} {'loss':>8} {'a':>6}")
    for r in result["rows"]:
        if r["N_opt"] is None:
            print(f"  {r['method']:<34} {'-':>10} {'-':>10} {'-':>8}   ({r.get('note', '')})")
        else:
            print(f"  {r['method']:<34} {r['N_opt']:>10.4g} {r['D_opt']:>10.4g} {r['loss']:>8.4f} {r['a']:>6.3f}")
    for name, key in (("methods", "spread_methods"), ("E pinned", "spread_e_pinned")):
        s = result[key]
        if s:
            print(f"spread across {name}: N_opt x{s['N_opt_max_over_min']:.3g}, D_opt x{s['D_opt_max_over_min']:.3g}, "
                  f"loss {s['loss_range'][0]:.4f}-{s['loss_range'][1]:.4f} ({s['loss_range_relative']:.2%})")
    doc["compare"] = result
    return doc
