"""`lmlab runs status DIR`: expected vs completed, running, failed and missing runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, help="a Hydra sweep directory (multirun.yaml) or a run group")
    parser.add_argument("--json", action="store_true", help="print the runs, counts and rerun commands as JSON")


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from lmlab.runs.status import FINAL, STATES, render, sweep_status

    status = sweep_status(args.directory)
    if args.json:
        print(json.dumps({"directory": str(status.directory), "runs": [asdict(r) for r in status.runs],
                          "counts": {s: status.count(s) for s in STATES}, "rerun": status.rerun_commands()}, indent=2))
    else:
        print(render(status))
    return 0 if sum(status.count(s) for s in FINAL) == len(status.runs) else 1
