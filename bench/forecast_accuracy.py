"""Forecast error at 25% and 50% of real runs: the constant-rate law L = E + B D^-beta (the baseline,
measured in the same run) against the schedule-aware law L = L0 + A S1^-alpha - C S2 (Tissue et al.),
from the run's own curve and with its study (the completed runs of its size beside it).

Also the schedule-aware law's own test: each run's whole curve predicted from the other runs of its
size (other schedules and budgets), the largest error at a validation point past warm-up (target 1%).
Targets for a cosine run at 50%: forecast within 2% of the final loss, interval containing it.
Prints the ratio of mean absolute errors, constant-rate / schedule-aware (> 1: the new law is better).

Run: .venv/bin/python bench/forecast_accuracy.py [RUNS_DIR] [--resamples 100]
(default: the committed tiny runs in bench/data/forecast_runs, see its README)
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from lmlab.analysis.curve_law import fit_curves, load_curve
from lmlab.analysis.forecast import forecast_curve, forecast_run
from lmlab.errors import FitError
from lmlab.runs.record import find_runs

DEFAULT = Path(__file__).parent / "data" / "forecast_runs"
FRACTIONS = (0.25, 0.5)


def scored(fc, actual) -> tuple[float, bool]:
    return fc.loss / actual - 1.0, bool(fc.lo <= actual <= fc.hi)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="?", default=str(DEFAULT), help="a directory of completed run directories")
    parser.add_argument("--resamples", type=int, default=100)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # fits that stop short say so in their intervals
    curves = [c for c in map(load_curve, find_runs(Path(args.runs))) if c.status == "completed"]
    t0 = time.time()
    errors = {"constant-rate": [], "schedule (own curve)": [], "schedule + study": []}
    covered = {k: [] for k in errors}
    print(f"{'run':<24} {'F':>4}  {'constant-rate':>18}  {'schedule (own)':>18}  {'schedule + study':>18}")
    for c in curves:
        actual = float(c.loss[-1])
        study = [o for o in curves if o.run_id != c.run_id]
        for f in FRACTIONS:
            cells = []
            seen = c.upto(f).past_warmup()
            attempts = {
                "constant-rate": lambda: forecast_run(seen.steps * c.tokens_per_step, seen.loss,
                                                      c.total_steps * c.tokens_per_step, n_resamples=args.resamples),
                "schedule (own curve)": lambda: forecast_curve(c, upto=f, n_resamples=args.resamples),
                "schedule + study": lambda: forecast_curve(c, upto=f, study=study, n_resamples=args.resamples),
            }
            for name, make in attempts.items():
                try:
                    err, inside = scored(make(), actual)
                except FitError as e:
                    cells.append(f"{'no fit':>18}")
                    print(f"    ({name}: {e})")
                    continue
                errors[name].append(abs(err))
                covered[name].append(inside)
                cells.append(f"{err:+8.2%} {'[in] ' if inside else '[out]'}    ")
            print(f"{c.run_id:<24} {f:>4.2f}  " + "  ".join(cells))
    print("\nmean |error| of the final-loss forecast, and interval coverage:")
    for name in errors:
        print(f"  {name:<22} {np.mean(errors[name]):7.2%}   coverage {np.mean(covered[name]):.0%} "
              f"({len(errors[name])} forecasts)")
    base = np.mean(errors["constant-rate"])
    for name in ("schedule (own curve)", "schedule + study"):
        print(f"ratio constant-rate / {name}: {base / np.mean(errors[name]):.2f}  (> 1: the schedule-aware law is better)")
    print("\nthe schedule-aware law on whole curves: each run predicted from the other runs of its size")
    for c in curves:
        others = [o for o in curves if o.run_id != c.run_id and o.n_params == c.n_params]
        if not others:
            continue
        fit = fit_curves(others)
        seen = c.past_warmup()
        err = np.abs(fit.predict(seen, seen.steps) / seen.loss - 1)
        late = seen.steps >= 0.25 * c.total_steps
        print(f"  {c.run_id:<24} from {len(others)} run(s): max error {err.max():6.2%} past warm-up, "
              f"{err[late].max():6.2%} past 25% of the run (target 1%)")
    print(f"\n{time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
