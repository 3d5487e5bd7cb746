"""What a search costs beyond its trials: Optuna's ask + tell per trial with the study in the journal
file next to the sweep (what lmlab's sweeper does), against the same loop in memory, measured in the
same run. Each trial also reports 8 validation losses (what the pruning callback writes).

    .venv/bin/python bench/search_overhead.py [--trials 60] [--sampler tpe|gp|random]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import optuna

from lmlab.tune.space import parse_space
from lmlab.tune.study import storage

SPACE = parse_space({
    "optim.lr": "tag(log, interval(3e-4, 3e-2))", "schedule.warmup_frac": "interval(0.0, 0.2)",
    "optim.weight_decay": "interval(0.0, 0.2)", "trainer.global_batch_size": "choice(16, 32, 64)",
    "optim.betas.1": "interval(0.9, 0.999)", "model.dropout": "interval(0.0, 0.1)",
    "schedule": "choice(cosine, wsd, constant)",
})
SAMPLERS = {"tpe": optuna.samplers.TPESampler, "gp": optuna.samplers.GPSampler, "random": optuna.samplers.RandomSampler}


def seconds_per_trial(store, sampler: str, trials: int) -> float:
    study = optuna.create_study(storage=store, sampler=SAMPLERS[sampler](seed=0), study_name="bench")
    start = time.perf_counter()
    for _ in range(trials):
        trial = study.ask(SPACE)
        for milestone in range(8):
            trial.report(5.0 - 0.1 * milestone + trial.params["optim.lr"], milestone)
        study.tell(trial, 4.0 + trial.params["optim.lr"])
    return (time.perf_counter() - start) / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--sampler", choices=SAMPLERS, default="tpe")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    memory = seconds_per_trial(None, args.sampler, args.trials)
    with tempfile.TemporaryDirectory() as tmp:
        journal = seconds_per_trial(storage(Path(tmp) / "optuna.journal"), args.sampler, args.trials)
    print(f"{args.sampler}, {args.trials} trials: in memory {memory * 1e3:.1f} ms/trial, "
          f"journal file {journal * 1e3:.1f} ms/trial; ratio journal/memory {journal / memory:.2f}")


if __name__ == "__main__":
    main()
