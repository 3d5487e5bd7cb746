"""`lmlab runs collect DIR... -o TABLE`: run directories into a study table and its curves."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dirs", nargs="+", help="run directories, or directories holding them (searched recursively)")
    parser.add_argument("-o", "--output", required=True,
                        help="the runs table (.parquet or .csv); the curves go to <stem>.curves.<suffix>")
    parser.add_argument("--json", action="store_true", help="print what was collected as JSON")


def run(args: argparse.Namespace) -> int:
    from lmlab.io import check_table_path, write_table
    from lmlab.runs.collect import collect, curves_path

    check_table_path(args.output)  # before any work
    runs, curves = collect(args.dirs)
    write_table(runs, args.output)
    write_table(curves, curves_path(args.output))
    counts = {str(k): int(v) for k, v in runs["status"].value_counts().items()}
    scored = runs["prediction.inside"].dropna().astype(bool) if "prediction.inside" in runs else runs.iloc[:0, 0]
    if args.json:
        print(json.dumps({"runs": len(runs), "status": counts, "table": str(args.output),
                          "curves": str(curves_path(args.output)), "curve_points": len(curves),
                          "predictions_scored": len(scored), "predictions_inside": int(scored.sum())}, indent=2))
        return 0
    print(f"collected {len(runs)} run(s) ({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))}) into "
          f"{args.output} and {len(curves)} curve points into {curves_path(args.output)}")
    if len(scored):  # planned runs (`lmlab plan`) that completed: their predictions scored
        print(f"scored {len(scored)} prediction(s): {int(scored.sum())} inside their intervals "
              f"(`lmlab predictions {' '.join(args.dirs)}` for the table and the calibration)")
    return 0
