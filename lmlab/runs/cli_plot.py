"""`lmlab runs plot DIR [-o FILE]`: a sweep's (or a run group's) loss curves, one line per run.

Validation loss against tokens, each line labelled by the run's size and token budget. DIR is a Hydra
sweep directory (multirun.yaml: its runs, wherever they live) or a folder of run directories. The
figure goes to FILE (.png or .svg; default DIR/loss_curves.png).
"""

from __future__ import annotations

import argparse
from pathlib import Path

SUFFIXES = (".png", ".svg")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, help="a Hydra sweep directory (multirun.yaml) or a run group")
    parser.add_argument("-o", "--output", type=Path, help="the figure (.png or .svg; default DIR/loss_curves.png)")


def run(args: argparse.Namespace) -> int:
    from lmlab.analysis.plots import labelled_curves, write_figure
    from lmlab.errors import ConfigError, DataError

    out = args.output or args.directory / "loss_curves.png"
    if out.suffix not in SUFFIXES:
        raise ConfigError(f"-o {out}: expected a file ending in {' or '.join(SUFFIXES)}")
    curves = [c for c in map(run_curve, run_dirs(args.directory)) if c is not None]
    if not curves:
        raise DataError(f"no run under {args.directory} has a validation loss yet; expected at least one "
                        f"run past its first validation")
    write_figure(labelled_curves(curves), out)
    print(f"wrote {out} ({len(curves)} run(s))")
    return 0


def run_dirs(directory: Path) -> list[Path]:
    """The run directories of a sweep (those that exist) or of a folder of runs."""
    from lmlab.errors import DataError
    from lmlab.runs.record import find_runs
    from lmlab.runs.status import load_sweep

    if not directory.is_dir():
        raise DataError(f"runs plot: {directory} is not a directory; expected a sweep directory or a run group")
    if (directory / "multirun.yaml").exists():
        return [d for d in load_sweep(directory)[1] if d.is_dir()]
    found = find_runs(directory)
    if not found:
        raise DataError(f"runs plot: {directory} holds neither multirun.yaml (a sweep) nor run directories")
    return found


def run_curve(run_dir: Path) -> tuple[str, list[float], list[float]] | None:
    """(label: size and token budget, tokens, val loss) of one run; None before its first validation."""
    from lmlab.io import read_jsonl
    from lmlab.runs.load import load_config
    from lmlab.runs.record import RunRecord

    rec = RunRecord(run_dir)
    rows = [r for r in read_jsonl(rec.metrics_path) if r.get("val_loss") is not None] if rec.metrics_path.exists() else []
    if not rows:
        return None
    plan = rec.plan() or {}
    size = load_config(run_dir)["model"].get("size", run_dir.name)
    budget = plan.get("planned_tokens")
    label = f"{size}, {budget:.3g} tokens" if budget else str(size)
    return label, [r["tokens"] for r in rows], [r["val_loss"] for r in rows]
