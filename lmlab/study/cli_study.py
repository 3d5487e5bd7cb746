"""`lmlab study LADDER [overrides] [-o DIR]`: a whole scaling study in one command.

Trains the ladder's runs (skipping completed ones, resuming interrupted ones), collects them, fits
the law with the largest size held out and predicts it, plans a run at a larger budget, and writes
the study folder (default studies/<ladder name>/): study.parquet (+ study.curves.parquet), fit.json,
planned.yaml, report.md and figures/. Overrides are ladder keys (sizes=[14k,25k]), the cluster
(cluster=slurm, cluster=local_parallel) and hydra.* launcher settings, or training overrides given
to every run (trainer.threads=1).
"""

from __future__ import annotations

import argparse

from lmlab import cli_args
from lmlab.analysis.cli_fit import LAW_NAMES
from lmlab.study.analyse import DEFAULT_PLAN_MULTIPLE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ladder", help="a ladder: conf/ladder/NAME.yaml by name, or a path")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="ladder keys, cluster=..., hydra.launcher.*=..., or training overrides for every run")
    parser.add_argument("-o", "--output", metavar="DIR", help="the study folder (default studies/<ladder name>)")
    parser.add_argument("--law", default="chinchilla", choices=LAW_NAMES, metavar="LAW",
                        help="the law to fit (default chinchilla; kaplan_c for a study of few runs; see lmlab fit)")
    parser.add_argument("--n-col", default="n_params_nonembedding",
                        help="N of the fit (default n_params_nonembedding, Kaplan's; n_params: total, Chinchilla's)")
    parser.add_argument("--bootstrap", type=cli_args.count, default=200, metavar="K",
                        help="bootstrap resamples for the parameter intervals (default 200; 0: none)")
    parser.add_argument("--level", type=cli_args.level, default=0.95, help="interval coverage (default 0.95)")
    parser.add_argument("--plan-flops", type=cli_args.positive, metavar="C",
                        help=f"budget of the planned run (default {DEFAULT_PLAN_MULTIPLE:g} x the largest run's compute)")
    parser.add_argument("--jobs", type=cli_args.positive_count, default=1, metavar="K",
                        help="size sweeps trained at a time on this machine (default 1; give each run "
                             "trainer.threads=CORES/K); on SLURM every size is submitted at once")
    parser.add_argument("--no-train", action="store_true", help="launch nothing: report on the runs there are")
    parser.add_argument("--json", action="store_true", help="print the study's summary as JSON (progress to stderr)")


def run(args) -> int:
    import sys

    from lmlab.io import dumps
    from lmlab.study.study import Study

    out = sys.stderr if args.json else sys.stdout
    study = Study.prepare(args)
    study.train(out)
    result = study.analyse()
    for line in result["summary"]:
        print(line, file=out)
    if args.json:
        print(dumps(result, indent=2))
    if result["problem"] and result["fit"] is None:
        from lmlab.errors import FitError
        raise FitError(result["problem"])
    return 0 if result["counts"]["completed"] == result["counts"]["planned"] else 1
