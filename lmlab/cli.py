"""The `lmlab` command: one dispatcher, each subcommand owned by the module that does the work.

A command module exposes `add_arguments(parser)` and `run(args) -> int`. Both must stay cheap to
import (heavy imports go inside `run`) so that `lmlab --help` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

import lmlab
from lmlab.errors import LmlabError

# (group, command) -> (module, one-line help). group None means a top-level command.
COMMANDS: dict[tuple[str | None, str], tuple[str, str]] = {
    (None, "sizes"): ("lmlab.models.cli_sizes", "print the registry of model sizes"),
    (None, "scrub"): ("lmlab.data.cli_scrub", "replace personal data in text with typed placeholders"),
    (None, "fit"): ("lmlab.analysis.cli_fit", "fit a scaling law to a study table"),
    (None, "plan"): ("lmlab.analysis.cli_plan", "compute-optimal N and D for a budget, with a launch config"),
    (None, "study"): ("lmlab.study.cli_study", "run a ladder, fit it, predict its held-out largest size, plan a larger run"),
    (None, "predict"): ("lmlab.analysis.cli_predict", "predict the loss of one (N, D) from a fitted law"),
    (None, "frontier"): ("lmlab.analysis.cli_frontier", "a study's compute-efficient frontier: envelope, best size, stopping points, law"),
    ("runs", "collect"): ("lmlab.runs.cli_collect", "collect run directories into a study table"),
    ("runs", "status"): ("lmlab.runs.cli_status", "expected vs completed, running, failed and missing runs"),
    ("runs", "plot"): ("lmlab.runs.cli_plot", "a sweep's or a run group's loss curves, one line per run"),
    ("runs", "forecast"): ("lmlab.runs.cli_forecast", "a run's final loss forecast from its curve so far, with an interval"),
    (None, "predictions"): ("lmlab.runs.cli_predictions", "planned runs' predictions against what they reached"),
    ("ladder", "plan"): ("lmlab.launch.cli_ladder", "print the runs of a ladder and their total compute"),
    ("launch", "render"): ("lmlab.launch.cli_render", "write an sbatch script for a multi-node run"),
    ("audit", "bias"): ("lmlab.audit.cli_bias", "bias audit of a run's corpus and model, or across a study"),
    (None, "compress"): ("lmlab.compress.cli_compress", "int8 quantisation or magnitude pruning of a run, evaluated"),
    ("tune", "report"): ("lmlab.tune.cli_report", "a hyperparameter search's history: table, figures, importance"),
    ("mup", "coord-check"): ("lmlab.tune.cli_coord_check", "muP's coordinate check: activation sizes across widths"),
}

GROUP_HELP = {
    "runs": "run directories: collect, status, plot, forecast",
    "ladder": "model ladders: plan",
    "launch": "multi-node launch scripts: render",
    "audit": "audits of runs: bias",
    "tune": "hyperparameter searches (lmlab-train -m hparams_search=...): report",
    "mup": "the maximal update parametrisation: coord-check",
}


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (`lmlab <command>: error: ...`, exit 2); --help shows usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="lmlab", description=lmlab.__doc__)
    top = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    groups: dict[str, argparse._SubParsersAction] = {}
    for (group, name), (module_name, help_text) in COMMANDS.items():
        if group is None:
            where = top
        else:
            if group not in groups:
                gp = top.add_parser(group, help=GROUP_HELP[group])
                groups[group] = gp.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True,
                                                  parser_class=Parser)
            where = groups[group]
        sub = where.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module_name)
        _module(module_name).add_arguments(sub)
    return parser


def _module(name: str):
    return importlib.import_module(name)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # a usage error (its one line is printed) or --help
        return int(exit_.code or 0)
    try:
        return int(_module(args._module).run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `lmlab sizes --json | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except LmlabError as err:  # bad input: one clear line, no traceback
        name = " ".join(n for n in ("lmlab", args.command, getattr(args, "subcommand", None)) if n)
        print(f"{name}: error: {err}", file=sys.stderr)
        return 2




if __name__ == "__main__":
    sys.exit(main())
