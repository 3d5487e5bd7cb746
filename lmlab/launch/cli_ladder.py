"""`lmlab ladder plan LADDER [key=value ...]`: the runs of a ladder, their compute and launch commands."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from lmlab.cli_args import positive


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ladder", help="a ladder name in conf/ladder/ or a path to a ladder YAML")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="override the ladder's keys, e.g. sizes=[25k,55k] seeds=[0,1]")
    parser.add_argument("--throughput-from", type=Path, metavar="DIR",
                        help="completed runs whose median FLOP/s estimates each run's time")
    parser.add_argument("--flops-per-s", type=positive, help="measured training FLOP/s of one device")
    parser.add_argument("--json", action="store_true", help="print the runs, totals and commands as JSON")


def run(args: argparse.Namespace) -> int:
    from lmlab.launch.ladder import compute_totals, launch_commands, load_ladder, measured_flops_per_s, plan, render
    from lmlab.runspec import COMPUTE

    ladder = load_ladder(args.ladder, args.overrides)
    speed = args.flops_per_s or (measured_flops_per_s(args.throughput_from) if args.throughput_from else None)
    speed = speed or ladder["throughput_flops_per_s"]
    runs = plan(ladder, speed)
    if args.json:
        print(json.dumps({"compute": COMPUTE, "runs": [asdict(r) for r in runs],
                          # what training costs (trunks and cooldowns once each), and independent runs' cost
                          "total_compute": compute_totals(runs)["trained_compute"], **compute_totals(runs),
                          "flops_per_s": speed,
                          "commands": launch_commands(ladder, runs)}, indent=2))
    else:
        print(render(ladder, runs, speed))
    return 0
