"""`lmlab predict FIT.json --n N --tokens D`: one prediction from a fitted law, with its interval.

`lmlab predict LOSS_FIT TASK_FIT --n N --tokens D` chains a loss law into a task law (Gadre et
al.'s downstream error, the OLMo sigmoid): each draw of the loss (a resampled law plus its
extrapolation error) feeds a draw of the task law, so the task's interval carries the loss's
uncertainty. Error and accuracy intervals stay in [0, 1].
"""

from __future__ import annotations

import argparse

from lmlab import cli_args

CHAIN_DRAWS = 4000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("fit", help="a fit file written by `lmlab fit -o` (method 3)")
    parser.add_argument("task_fit", nargs="?", help="optional: a fit of a task law of the loss (downstream, "
                        "olmo_sigmoid) to chain after FIT")
    parser.add_argument("--n", type=cli_args.positive, help="parameters N (counted as the fit's N column)")
    parser.add_argument("--tokens", type=cli_args.positive, help="training tokens D")
    parser.add_argument("--flops", type=cli_args.positive, help="compute C (default 6 N D)")
    parser.add_argument("--loss", type=cli_args.number, help="loss L, for the downstream and olmo_sigmoid laws")
    parser.add_argument("--s-min", type=cli_args.positive, help="S_min, for the kaplan_ns law")
    parser.add_argument("--level", type=cli_args.level, help="interval coverage (default: the fit's, else 0.95)")
    parser.add_argument("--group", help="for a fit made with --by: which group's law")
    parser.add_argument("--json", action="store_true",
                        help='print {"loss": x, "interval": [lo, hi], "level": 0.95, ...} (and "task" when chained)')


def run(args) -> int:
    import sys

    import numpy as np

    from lmlab.analysis.extrapolation import axis, beyond_evidence, distance, honest_interval
    from lmlab.analysis.fit import parameter_interval
    from lmlab.io import dumps

    loss_fit = _load(args.fit, args.group)
    task_fit = _load(args.task_fit, args.group) if args.task_fit else None
    if task_fit is not None and (loss_fit.law.target != "L" or task_fit.law.inputs != ("L",)):
        from lmlab.errors import FitError
        raise FitError(f"chaining needs a loss law then a task law of the loss; got {loss_fit.law.name!r} "
                       f"(predicts {loss_fit.law.target}) then {task_fit.law.name!r} (of {', '.join(task_fit.law.inputs)})")
    inputs, shown = _inputs(args, loss_fit)
    level = args.level or (loss_fit.bootstrap.level if loss_fit.bootstrap is not None else 0.95)
    with np.errstate(all="ignore"):
        point, lo, hi = honest_interval(loss_fit, level, **inputs)
        param = parameter_interval(loss_fit, **inputs)[1:] if loss_fit.bootstrap is not None else None
    x = float(axis(loss_fit.law, inputs)[0][0])
    result = {"target": loss_fit.law.target, "value": float(point[0]), "interval": [float(lo[0]), float(hi[0])],
              "level": level, "interval_covers": _covers(loss_fit),
              "parameter_interval": None if param is None else [float(param[0][0]), float(param[1][0])],
              "extrapolation": distance(loss_fit.extrapolation, x), "inputs": {k: float(v[0]) for k, v in inputs.items()}}
    if loss_fit.law.target == "L":
        result["loss"] = result["value"]
    warning = beyond_evidence(loss_fit.extrapolation, x)
    if task_fit is not None:
        result["task"] = _chain(loss_fit, task_fit, inputs, level)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(dumps(result, indent=2))
        return 0
    _print(loss_fit, result, shown)
    return 0


def _load(path, group):
    from lmlab.analysis.fitjson import fit_from_doc, load_fit_doc, select_group
    return fit_from_doc(select_group(load_fit_doc(path), group, str(path)))


def _inputs(args, fit):
    """The law's inputs from the flags; a missing one is named."""
    import numpy as np

    from lmlab.errors import FitError

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
    inputs = {k: np.array([given[k]], dtype=float) for k in fit.law.inputs}
    return inputs, ", ".join(f"{k} = {given[k]:.4g}" for k in fit.law.inputs)


def _covers(fit) -> str:
    cal = fit.extrapolation
    if cal is not None and cal.kappa is not None:
        return "extrapolation error (backtest-calibrated), run scatter and parameter noise"
    return "run scatter and parameter noise only (too few points to backtest extrapolation)"


def _chain(loss_fit, task_fit, inputs, level) -> dict:
    """The task law at each draw of the loss, paired draw by draw."""
    import numpy as np

    from lmlab.analysis.extrapolation import bounded, honest_samples

    rng = np.random.default_rng(0)
    repeated = {k: np.repeat(v, CHAIN_DRAWS) for k, v in inputs.items()}
    with np.errstate(all="ignore"):
        losses = honest_samples(loss_fit, repeated, CHAIN_DRAWS, rng, level)
        task = honest_samples(task_fit, {"L": losses}, CHAIN_DRAWS, rng, level)
        point = float(task_fit.predict(L=loss_fit.predict(**inputs))[0])
    tail = 50.0 * (1.0 - level)
    lo, hi = bounded(task_fit.law, *np.nanpercentile(task, [tail, 100.0 - tail]))
    return {"target": task_fit.law.target, "value": point, "interval": [float(lo), float(hi)], "level": level,
            "interval_covers": "the loss's interval carried through the task law, draw by draw, plus the task "
                               "law's own error"}


def _print(fit, result, shown) -> None:
    lo, hi = result["interval"]
    line = f"{fit.law.target}({shown}) = {result['value']:.4f}  {result['level']:.0%} interval [{lo:.4f}, {hi:.4f}]"
    if result["extrapolation"]:
        line += f" ({result['extrapolation']:.2g} beyond the fitted range along {fit.extrapolation.axis})"
    print(line)
    print(f"  covers {result['interval_covers']}")
    if result["parameter_interval"]:
        p_lo, p_hi = result["parameter_interval"]
        print(f"  parameter-only interval [{p_lo:.4f}, {p_hi:.4f}] (the law's parameters alone; too narrow to bet on)")
    if "task" in result:
        t = result["task"]
        print(f"{t['target']} = {t['value']:.4f}  {t['level']:.0%} interval [{t['interval'][0]:.4f}, "
              f"{t['interval'][1]:.4f}] (chained through the loss)")
