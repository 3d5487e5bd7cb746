"""`lmlab runs forecast RUN_DIR [--upto F] [--json]`: a run's final validation loss, forecast from its
curve so far with the schedule-aware curve law (and the completed runs of the same size beside it).

--upto F uses only the first fraction F of the planned steps: on a finished run it checks the
forecast against the loss the run reached ("actual" in the output)."""

from __future__ import annotations

import argparse
import json

from lmlab import cli_args


def fraction(text: str) -> float:
    value = cli_args.number(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a fraction of the planned steps in (0, 1]")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run directory (holding config.yaml, plan.json and metrics.jsonl)")
    parser.add_argument("--upto", type=fraction, help="use only the first fraction F of the planned steps (0 < F <= 1)")
    parser.add_argument("--no-study", action="store_true",
                        help="use the run's own curve only, not the completed runs of its size beside it")
    parser.add_argument("--resamples", type=cli_args.positive_count, default=200, help="bootstrap resamples (default 200)")
    parser.add_argument("--level", type=cli_args.level, default=0.95, help="the interval's coverage (default 0.95)")
    parser.add_argument("--json", action="store_true", help="print the forecast as JSON")


def run(args: argparse.Namespace) -> int:
    from lmlab.analysis.curve_law import load_curve
    from lmlab.analysis.forecast import forecast_curve, study_curves

    curve = load_curve(args.run_dir)
    study = [] if args.no_study else study_curves(args.run_dir)
    fc = forecast_curve(curve, upto=args.upto, study=study, n_resamples=max(2, args.resamples), level=args.level)
    out = {"run_id": curve.run_id, **fc.to_json()}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    lo, hi = out["interval"]
    print(f"{curve.run_id}: forecast {out['forecast']:.4f} at step {out['final_step']} "
          f"({out['level']:.0%} interval {lo:.4f} - {hi:.4f}) from steps <= {out['upto_step']}"
          f"{f' and {len(fc.runs_used) - 1} completed run(s) of its size' if len(fc.runs_used) > 1 else ''}")
    if fc.actual is not None:
        print(f"actual {fc.actual:.4f}: error {out['error']:+.2%}, {'inside' if out['covered'] else 'outside'} the interval")
    return 0
