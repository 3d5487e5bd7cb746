"""Branched vs independent tiny ladder: do fits from cooldown branches predict a held-out size as well?

Trains, on the bundled corpus, sizes 14k, 25k, 55k and 100k at four token budgets (0.25, 0.5, 0.75
and 1 x T) twice: as independent WSD runs (warmup 5% and cooldown 20% of each run's own budget), and,
for the fitted sizes, as one branched launch per size (`budget.branches=[0.25,0.5,0.75]`: a trunk and
a cooldown branch per budget). Then fits Chinchilla's L(N, D) with `lmlab fit --holdout max:N` on
  A: the branched runs of 14k-55k, holding out the independent 100k runs;
  B: the independent runs of 14k-55k, holding out the same 100k runs,
and prints each fit's error on the held-out size, the branched/independent loss of every pair and
the compute of each ladder (training compute, in lmlab's unit).

    .venv/bin/python experiments/branched-ladder/run.py [--out /tmp/branched-ladder] [--steps 160] [--batch 8]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

FIT_SIZES, HELD_OUT = ["14k", "25k", "55k"], "100k"
FRACTIONS = [0.25, 0.5, 0.75]


def train(overrides: list[str]) -> dict:
    from lmlab.config import compose_train
    from lmlab.train.run import Run

    return Run(compose_train(overrides)).execute()


def lmlab(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "lmlab.cli", *args], check=True, capture_output=True, text=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/branched-ladder"))
    parser.add_argument("--steps", type=int, default=160, help="optimizer steps of the largest budget T")
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()

    import logging

    from lmlab.data.prepare import prepare_preset

    logging.getLogger("lmlab").setLevel(logging.WARNING)
    logging.getLogger("lightning").setLevel(logging.WARNING)
    data = args.out / "data"
    if not (data / "sotu" / "manifest.json").exists():
        prepare_preset("sotu", data)
    tokens_per_step = args.seq_len * args.batch
    common = [f"paths.data_dir={data}", f"paths.runs_dir={args.out / 'runs'}", f"model.seq_len={args.seq_len}",
              f"trainer.global_batch_size={args.batch}", f"trainer.micro_batch_size={args.batch}", "trainer.threads=1",
              "trainer.val_tokens=16384", "trainer.progress_bar=false", "logger=none", "budget=tokens", "schedule=wsd"]
    pairs, compute = [], {"branched": 0.0, "independent": 0.0}
    for size in [*FIT_SIZES, HELD_OUT]:
        independent = {f: train([*common, f"model.size={size}", "run.group=independent",
                                 f"budget.tokens={round(f * args.steps) * tokens_per_step}"]) for f in [*FRACTIONS, 1.0]}
        if size == HELD_OUT:
            continue
        compute["independent"] += sum(r["flops_6n"] for r in independent.values())
        train([*common, f"model.size={size}", "run.group=branched", f"budget.tokens={args.steps * tokens_per_step}",
               f"budget.branches=[{','.join(map(str, FRACTIONS))}]"])
        from lmlab.runs.record import RunRecord, find_runs

        branches = {r["branch_fraction"]: r for r in (RunRecord(d).result() for d in find_runs(args.out / "runs" / "branched"))
                    if r and r["model"] == size}
        compute["branched"] += branches[1.0]["trunk_flops_6n"] + sum(r["trained_flops_6n"] for r in branches.values())
        pairs += [{"size": size, "fraction": f, "tokens": independent[f]["tokens"], "branched": branches[f]["final_val_loss"],
                   "independent": independent[f]["final_val_loss"]} for f in sorted(independent)]

    runs = args.out / "runs"
    held = [str(p) for p in sorted((runs / "independent").glob(f"{HELD_OUT}-*"))]
    lmlab("runs", "collect", str(runs / "branched"), *held, "-o", str(args.out / "branched.parquet"))
    lmlab("runs", "collect", str(runs / "independent"), "-o", str(args.out / "independent.parquet"))
    fits = {}
    for name in ("branched", "independent"):
        out = json.loads(lmlab("fit", str(args.out / f"{name}.parquet"), "--law", "chinchilla", "--holdout", "max:N",
                               "--json"))
        fits[name] = {"params": out.get("params"), "holdout": out["holdout"]["summary"],
                      "points": out["holdout"]["points"]}
    print(f"{'size':>5} {'budget':>6} {'tokens':>8} {'branched':>9} {'independent':>12} {'diff':>8}")
    for p in pairs:
        print(f"{p['size']:>5} {p['fraction']:>6g} {p['tokens']:>8,} {p['branched']:>9.4f} {p['independent']:>12.4f} "
              f"{(p['branched'] - p['independent']) / p['independent']:>+8.2%}")
    for name, fit in fits.items():
        errors = ", ".join(f"{pt['rel_error']:+.2%}" for pt in fit["points"])
        print(f"fit on {name} runs: held-out {HELD_OUT} mean |error| {fit['holdout']['mean_abs_rel_error']:.2%} "
              f"(per budget: {errors}), inside the interval {fit['holdout']['share_inside_interval']:.0%}")
    print(f"training compute of the fitted sizes: branched {compute['branched']:.3g}, independent "
          f"{compute['independent']:.3g} FLOPs -> ratio {compute['branched'] / compute['independent']:.3f}")
    from lmlab.io import write_json

    write_json(args.out / "summary.json", {"pairs": pairs, "fits": fits, "compute": compute, "steps": args.steps,
                                           "tokens_per_step": tokens_per_step})


if __name__ == "__main__":
    main()
