"""Coverage and width of lmlab's prediction intervals on synthetic ladders whose truth is NOT of the
fitted form (lmlab.analysis.synthetic: exponents drifting with scale, per-size and per-run noise).

Each seed draws a truth and an IsoFLOP ladder of 7 budgets over 3 decades, fits Chinchilla's law to
every budget but the largest, and scores both intervals on the largest budget's runs:
  default          the interval lmlab shows (backtest-calibrated, extrapolation.py)
  parameter-only   the bootstrap of runs alone (the baseline, measured in the same run)
Targets for the default 95% interval: coverage >= 0.90, median half-width <= 3% of the loss.
Both are printed, so a change that trades coverage for width shows.

Run: .venv/bin/python bench/interval_coverage.py [--seeds 40] [--resamples 100] [--starts 300]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from lmlab.analysis.laws import CHINCHILLA
from lmlab.analysis.synthetic import ladder, score_intervals

TARGET_COVERAGE, TARGET_HALF_WIDTH = 0.90, 0.03


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--resamples", type=int, default=100, help="bootstrap resamples per seed")
    parser.add_argument("--starts", type=int, default=300, help="starts spread over the 4,500-start grid")
    parser.add_argument("--level", type=float, default=0.95)
    args = parser.parse_args()
    grid = CHINCHILLA.start_grid(None, None)
    starts = grid[np.unique(np.linspace(0, len(grid) - 1, min(args.starts, len(grid))).round().astype(int))]
    scores = {"covered": [], "half_width": [], "param_covered": [], "param_half_width": []}
    per_seed = []
    t0 = time.time()
    seeds = range(args.seeds)
    if sys.stderr.isatty():
        from tqdm import tqdm
        seeds = tqdm(seeds, desc="ladders", unit="ladder")
    for seed in seeds:
        s = score_intervals(ladder(np.random.default_rng(seed)), level=args.level, n_resamples=args.resamples,
                            starts=starts, seed=seed)
        for key in scores:
            scores[key].extend(s[key])
        per_seed.append(float(np.mean(s["covered"])))
        if not sys.stderr.isatty() and (seed + 1) % 5 == 0:
            print(f"  {seed + 1}/{args.seeds} ladders, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    cov, width = np.mean(scores["covered"]), np.median(scores["half_width"])
    p_cov, p_width = np.mean(scores["param_covered"]), np.median(scores["param_half_width"])
    print(f"{args.seeds} misspecified ladders, {len(scores['covered'])} held-out runs, {args.level:.0%} intervals "
          f"({time.time() - t0:.0f} s)")
    print(f"  {'interval':<16} {'coverage':>9} {'median half-width':>18}")
    print(f"  {'default':<16} {cov:>9.3f} {width:>17.2%}")
    print(f"  {'parameter-only':<16} {p_cov:>9.3f} {p_width:>17.2%}")
    print(f"  ratio default / parameter-only: coverage x{cov / max(p_cov, 1e-9):.2f}, width x{width / p_width:.2f}")
    print(f"  ladders whose held-out budget is covered below 80%: {sum(c < 0.8 for c in per_seed)} of {args.seeds}")
    ok = cov >= TARGET_COVERAGE and width <= TARGET_HALF_WIDTH
    print(f"target (coverage >= {TARGET_COVERAGE}, median half-width <= {TARGET_HALF_WIDTH:.0%}): "
          f"{'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
