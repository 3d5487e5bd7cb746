"""`lmlab predict FIT.json --n N --tokens D`: one prediction from a fitted law, with its interval."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("fit", help="a fit file written by `lmlab fit -o` (method 3)")
    parser.add_argument("--n", type=float, help="parameters N (counted as the fit's N column)")
    parser.add_argument("--tokens", type=float, help="training tokens D")
    parser.add_argument("--flops", type=float, help="compute C (default 6 N D)")
    parser.add_argument("--loss", type=float, help="loss L, for the downstream and olmo_sigmoid laws")
    parser.add_argument("--s-min", type=float, help="S_min, for the kaplan_ns law")


def run(args) -> int:
    import numpy as np

    from lmlab.analysis.fit import predict_interval
    from lmlab.analysis.fitjson import fit_from_doc, load_fit_doc
    from lmlab.errors import FitError

    fit = fit_from_doc(load_fit_doc(args.fit))
    given = {"N": args.n, "D": args.tokens, "C": args.flops, "L": args.loss, "S_min": args.s_min}
    if given["C"] is None and args.n is not None and args.tokens is not None:
        given["C"] = 6.0 * args.n * args.tokens
    if args.n is not None and args.tokens is not None:
        given["M"] = args.tokens / args.n
    flags = {"N": "--n", "D": "--tokens", "C": "--flops (or --n and --tokens)", "M": "--n and --tokens",
             "L": "--loss", "S_min": "--s-min"}
    missing = [flags[k] for k in fit.law.inputs if given.get(k) is None]
    if missing:
        raise FitError(f"law {fit.law.name!r} needs {', '.join(missing)}")
    for k in fit.law.inputs:
        if not np.isfinite(given[k]) or (k in fit.law.positive_inputs() and given[k] <= 0):
            raise FitError(f"{flags[k]} = {given[k]!r}; expected a finite positive number")
    inputs = {k: np.array([given[k]]) for k in fit.law.inputs}
    shown = ", ".join(f"{k} = {given[k]:.4g}" for k in fit.law.inputs)
    if fit.bootstrap is None:
        print(f"{fit.law.target}({shown}) = {fit.predict(**inputs)[0]:.4f}  (no interval: fit without --bootstrap)")
    else:
        point, lo, hi = predict_interval(fit, **inputs)
        _, run_lo, run_hi = predict_interval(fit, single_run=True, **inputs)
        print(f"{fit.law.target}({shown}) = {point[0]:.4f}  {fit.bootstrap.level:.0%} interval "
              f"[{lo[0]:.4f}, {hi[0]:.4f}] (the law); [{run_lo[0]:.4f}, {run_hi[0]:.4f}] (one run)")
    return 0
