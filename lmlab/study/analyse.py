"""A study's analysis, through the commands that already do each step: collect the ladder's runs
(lmlab.runs.collect), fit the law with the largest size held out (`lmlab fit`), plan a larger run
(`lmlab plan`). Each step's output lines go to a log in the study folder; its results come back
as the documents the commands write (fit.json, the plan's JSON)."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from pathlib import Path

from lmlab.errors import FitError

HOLDOUT = "max:N"   # the largest size (N as the fit counts it)
DEFAULT_PLAN_MULTIPLE = 100.0   # the plan's budget: this many times the largest run's compute


def collect_study(run_root: Path, run_ids: list[str], table: Path):
    """(runs, curves) of the ladder's runs under run_root (other runs of the same group are left out),
    written to `table` and its curves table; None when no run has started."""
    from lmlab.io import write_table
    from lmlab.runs.collect import collect, curves_path

    if not run_root.is_dir() or not any((run_root / r).is_dir() for r in run_ids):
        return None
    runs, curves = collect([run_root / r for r in run_ids if (run_root / r).is_dir()])
    write_table(runs, table)
    write_table(curves, curves_path(table))
    return runs, curves


def check_fittable(runs, law_name: str, n_col: str, where: str) -> int:
    """The number of completed runs fitted once the largest size is held out; too few for the law is one
    FitError line."""
    from lmlab.analysis.laws import get_law

    done = runs[runs["status"] == "completed"] if runs is not None else None
    n_free = len(get_law(law_name).theta_names)
    sizes = sorted(set(done[n_col])) if done is not None and len(done) else []
    fitted = int((done[n_col] < sizes[-1]).sum()) if len(sizes) > 1 else 0
    if fitted < n_free:
        have = f"{len(done) if done is not None else 0} completed run(s) of {len(sizes)} size(s)"
        fewer = ", or a law with fewer parameters: --law kaplan_c has 2" if n_free > 2 else ""
        raise FitError(f"{where}: {have} leave {fitted} to fit once the largest size is held out; law {law_name!r} "
                       f"has {n_free} parameters, so it needs at least {n_free} (relaunch to finish the runs{fewer})")
    return fitted


def bootstrap_size(requested: int, fitted: int) -> tuple[int, str | None]:
    """The resamples to draw and why none, when the fitted runs are too few to resample."""
    from lmlab.analysis.fit import MIN_BOOTSTRAP_GROUPS

    if requested and fitted < MIN_BOOTSTRAP_GROUPS:
        return 0, (f"no bootstrap: {fitted} fitted runs, a bootstrap needs at least {MIN_BOOTSTRAP_GROUPS} "
                   f"(no parameter-only intervals)")
    return requested, None


def fit_study(table: Path, fit_path: Path, figures: Path, log_path: Path, *, law: str, n_col: str,
              bootstrap: int, level: float) -> dict:
    """`lmlab fit` with the largest size held out and figures; the fit document it wrote."""
    from lmlab.analysis import cli_fit
    from lmlab.analysis.fitjson import load_fit_doc

    argv = [str(table), "--law", law, "--n-col", n_col, "--holdout", HOLDOUT, "--level", str(level),
            "--bootstrap", str(bootstrap), "-o", str(fit_path), "--plot", str(figures)]
    _quietly(cli_fit, argv, log_path)
    return load_fit_doc(fit_path)


def plan_study(fit_path: Path, flops: float, planned_path: Path, log_path: Path, study: Path) -> dict:
    """`lmlab plan` at `flops` from the study's fit, its experiment config (with the prediction on record,
    naming the study) to planned_path; the plan."""
    from lmlab.analysis import cli_plan

    argv = [str(fit_path), "--flops", f"{flops:g}", "--study", str(study), "-o", str(planned_path), "--json"]
    out = _quietly(cli_plan, argv, log_path)
    return json.loads(out)


def _quietly(module, argv: list[str], log_path: Path) -> str:
    """Run a command module with its human lines appended to log_path; its stdout comes back."""
    from lmlab.io import write_atomic

    parser = argparse.ArgumentParser(prog=f"lmlab {module.__name__.rsplit('.cli_', 1)[-1]}")
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            module.run(args)
    finally:
        previous = log_path.read_text() if log_path.exists() else ""
        write_atomic(log_path, f"{previous}$ {parser.prog} {' '.join(argv)}\n{err.getvalue()}{out.getvalue()}\n")
    return out.getvalue()
