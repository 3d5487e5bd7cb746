"""A branched 4-budget rung vs 4 independent runs: compute, wall time and final losses side by side.

The branched rung is one `lmlab-train schedule=wsd budget.tokens=T 'budget.branches=[0.25,0.5,0.75]'`
launch (lmlab.train.branches: a constant-lr trunk and a cooldown branch per budget). The baseline
trains each budget from scratch as its own WSD run with the same cooldown fraction, seed and data
order, warming up over the same steps as the trunk (so each pair should agree to well under 1%).
Prints both compute totals (lmlab's unit, from the run records: the branches' trained_flops_6n plus
the trunk's, against the independent runs' flops_6n), both wall times, and their ratios
(target: compute well under 0.6).

    .venv/bin/python bench/branch_savings.py [--size 14k] [--steps 400] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

FRACTIONS = (0.25, 0.5, 0.75)


def overrides(args, data_root: Path, runs_dir: Path) -> list[str]:
    return [f"paths.data_dir={data_root}", f"paths.runs_dir={runs_dir}", f"model.size={args.size}",
            f"model.seq_len={args.seq_len}", f"trainer.global_batch_size={args.batch}",
            f"trainer.micro_batch_size={args.batch}", "trainer.val_tokens=8192", "trainer.val_milestones=4",
            f"trainer.threads={args.threads}", "trainer.progress_bar=false", "logger=none", "budget=tokens",
            "schedule=wsd", f"schedule.warmup_frac={args.warmup_frac}", f"schedule.decay_frac={args.decay_frac}"]


def timed(cfg_overrides: list[str]) -> tuple[dict, float]:
    from lmlab.config import compose_train
    from lmlab.train.run import Run

    start = time.perf_counter()
    result = Run(compose_train(cfg_overrides)).execute()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="14k")
    parser.add_argument("--steps", type=int, default=400, help="optimizer steps of the largest budget")
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--warmup-frac", type=float, default=0.05)
    parser.add_argument("--decay-frac", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import logging

    from lmlab.data.prepare import prepare_preset
    from lmlab.runs.record import RunRecord, find_runs

    logging.getLogger("lmlab").setLevel(logging.WARNING)
    logging.getLogger("lightning").setLevel(logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="lmlab-branch-bench-"))
    prepare_preset("sotu", root / "data")
    tokens_per_step = args.seq_len * args.batch
    steps = {f: round(f * args.steps) for f in (*FRACTIONS, 1.0)}
    warmup = round(args.warmup_frac * args.steps)

    branched_dir = root / "branched"
    _, branched_wall = timed([*overrides(args, root / "data", branched_dir), f"budget.tokens={args.steps * tokens_per_step}",
                              f"budget.branches=[{','.join(map(str, FRACTIONS))}]"])
    branches = {r["branch_fraction"]: r for r in (RunRecord(d).result() for d in find_runs(branched_dir))}
    shared_trunk = branches[1.0]["trunk_flops_6n"]  # every branch records the trunk it shares
    branched_compute = shared_trunk + sum(r["trained_flops_6n"] for r in branches.values())

    independent, independent_wall = {}, 0.0
    for f, n in steps.items():
        result, wall = timed([*overrides(args, root / "data", root / "independent"), f"budget.tokens={n * tokens_per_step}",
                              f"schedule.warmup_frac={warmup / n}"])  # the trunk's warmup steps
        independent[f], independent_wall = result, independent_wall + wall
    independent_compute = sum(r["flops_6n"] for r in independent.values())

    print(f"{args.size}, {args.steps} steps of {tokens_per_step} tokens at the largest budget, "
          f"decay_frac {args.decay_frac}, warmup {warmup} steps, {args.threads} thread(s)")
    print(f"{'budget':>7} {'tokens':>9} {'branched loss':>14} {'independent loss':>17} {'diff':>8}")
    for f in sorted(steps):
        b, i = branches[f]["final_val_loss"], independent[f]["final_val_loss"]
        print(f"{f:>7g} {independent[f]['tokens']:>9,} {b:>14.4f} {i:>17.4f} {(b - i) / i:>+8.3%}")
    print(f"compute: branched {branched_compute:.3g} FLOPs vs independent {independent_compute:.3g} "
          f"-> ratio {branched_compute / independent_compute:.3f} (target < 0.6)")
    print(f"wall time: branched {branched_wall:.1f} s vs independent {independent_wall:.1f} s "
          f"-> ratio {branched_wall / independent_wall:.3f}")


if __name__ == "__main__":
    main()
