"""`lmlab tune report SWEEP_DIR`: a search's history as a table and figures (written again into
SWEEP_DIR/study/, which the sweeper also writes when it ends), from the study next to the sweep."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep_dir", type=Path, help="the search's hydra.sweep.dir (holds optuna.journal)")
    parser.add_argument("--storage", default=None, help="the study's storage, if not SWEEP_DIR/optuna.journal")
    parser.add_argument("--study", default=None, help="the study's name (default: the only one there)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    from lmlab.errors import DataError
    from lmlab.tune.results import write_report
    from lmlab.tune.study import JOURNAL, load_study
    from lmlab.tune.sweep import summary_line

    where = args.storage or args.sweep_dir / JOURNAL
    if not args.storage and not Path(where).is_file():
        raise DataError(f"{where}: no such file; expected the sweep directory of a search (hydra.sweep.dir)")
    study = load_study(where, args.study)
    summary = write_report(study, args.sweep_dir / "study")
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    import pandas as pd

    table = pd.read_csv(args.sweep_dir / "study" / "trials.csv")
    shown = [c for c in table.columns if c not in ("run_dir", "flops_planned", "flops_used", "failure")]
    print(table[shown].to_string(index=False))
    print(f"study {summary['study']}: {summary_line(summary)}")
    print(f"table and figures: {args.sweep_dir / 'study'}")
    return 0
