"""`lmlab frontier STUDY_TABLE -o DIR`: the compute-efficient frontier of a study from its runs' curves.

Reads the runs table and the curves `lmlab runs collect` wrote beside it (<stem>.curves.<suffix>);
writes DIR/frontier.<fmt> (the envelope: compute, loss, run, size, law), DIR/stopping.<fmt> (each
size's compute-efficient stopping point), DIR/frontier.json (both laws and notes) and DIR/frontier.png.
"""

from __future__ import annotations

import argparse
import json

from lmlab import cli_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", help="a study's runs table (.parquet or .csv) from `lmlab runs collect`")
    parser.add_argument("-o", "--output", required=True, help="the directory for the tables, figure and JSON")
    parser.add_argument("--grid", type=cli_args.positive_count, default=60, help="compute points of the envelope (default 60)")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv", help="the tables' format (default csv)")
    parser.add_argument("--json", action="store_true", help="print the summary (laws, best sizes, stops) as JSON")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lmlab.analysis.frontier import frontier
    from lmlab.analysis.plots import write_figure
    from lmlab.errors import DataError
    from lmlab.io import dumps, read_table, write_json, write_table
    from lmlab.runs.collect import curves_path

    if args.grid < 2:
        raise DataError(f"--grid {args.grid}: expected at least 2 compute points")
    curves_file = curves_path(args.table)
    table = read_table(args.table)
    if not curves_file.is_file():
        raise DataError(f"curves table {str(curves_file)!r} does not exist; expected the curves `lmlab runs collect` "
                        f"writes beside {str(args.table)!r}")
    result = frontier(table, read_table(curves_file), n_grid=args.grid)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"envelope": out / f"frontier.{args.format}", "figure": out / "frontier.png", "summary": out / "frontier.json"}
    write_table(result.table, paths["envelope"])
    if result.stopping is not None:
        paths["stopping"] = out / f"stopping.{args.format}"
        write_table(result.stopping, paths["stopping"])
    write_figure(result.figure(), paths["figure"])
    summary = {**result.to_json(), "files": {k: str(v) for k, v in paths.items()}}
    write_json(paths["summary"], summary)
    if args.json:
        print(dumps(summary, indent=2))
        return 0
    law = result.law
    if law is not None:
        print(f"frontier law {law.law.formula}: " + ", ".join(f"{k} = {v:.4g}" for k, v in law.params.items()))
    for r in result.best_size_changes().itertuples():
        print(f"  from C = {r.compute:.3g}: best size N = {r.n_params:,.0f} (loss {r.loss:.4f})")
    if result.stopping is not None:
        for r in result.stopping.itertuples():
            print(f"  N = {r.n_params:,.0f}: stop at loss {r.loss_stop:.4f} ({r.steps:,.0f} steps, {r.tokens:.3g} tokens, "
                  f"C = {r.compute:.3g} at batch {r.batch_tokens:,.0f} tokens)")
    for note in result.notes:
        print(f"  note: {note}")
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0
