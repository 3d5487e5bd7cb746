"""`lmlab fit TABLE --law L [--method 1|2|3] [--holdout RULE] [--bootstrap K] -o fit.json [--plot DIR]`

Every argument is checked before the table is read, the table's selection before anything is
fitted. What is weak is said in one `warning:` line each (and kept in fit.json under `warnings`);
what would be meaningless is one error line. With --json the fit document goes to stdout and
every human line to stderr.
"""

from __future__ import annotations

import argparse
import contextlib

from lmlab import cli_args

# kept here (not imported from laws) so that `lmlab --help` stays cheap
LAW_NAMES = ("chinchilla", "kaplan", "kaplan_n", "kaplan_n_e", "kaplan_d", "kaplan_d_e", "kaplan_c", "kaplan_c_e",
             "kaplan_ns", "overtrain", "downstream", "olmo_sigmoid", "curve")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", help="a study table (lmlab runs collect) or any .parquet/.csv table")
    parser.add_argument("--law", default="chinchilla", choices=LAW_NAMES, metavar="LAW",
                        help=f"the law to fit (default chinchilla): {', '.join(LAW_NAMES)}")
    parser.add_argument("--method", type=int, choices=(1, 2, 3), default=3,
                        help="Chinchilla approach: 1 curve envelope, 2 IsoFLOP parabolas, 3 parametric law (default)")
    parser.add_argument("--holdout", metavar="RULE",
                        help="rows to leave out of the fit and predict: max:COL, top:K:COL, COL>=VALUE or "
                             "query:EXPR (COL: N, D, C or a column). Chosen from the whole table, before --query")
    parser.add_argument("--bootstrap", type=cli_args.count, default=0, metavar="K",
                        help="resample runs K times for parameter intervals (1000 or more recommended)")
    parser.add_argument("--level", type=cli_args.level, default=0.95, help="interval coverage (default 0.95)")
    parser.add_argument("--seed", type=cli_args.count, default=0, help="bootstrap seed")
    parser.add_argument("-o", "--output", help="where to write the fit JSON")
    parser.add_argument("--json", action="store_true", help="print the fit JSON on stdout (human lines go to stderr)")
    parser.add_argument("--plot", metavar="DIR", help="write figures (PNG and SVG) here")
    cols = parser.add_argument_group("columns (defaults: the runs table's names)")
    cols.add_argument("--n-col", default="n_params", help="parameters N (default n_params: total, as Chinchilla)")
    cols.add_argument("--d-col", default="tokens", help="tokens D (default tokens; else C/(6N))")
    cols.add_argument("--c-col", help="compute C (default: the run records' unit of compute; else 6ND)")
    cols.add_argument("--loss-col", default="final_val_loss", help="loss (default final_val_loss)")
    cols.add_argument("--y-col", help="the fitted quantity when it is not the loss (error, accuracy)")
    cols.add_argument("--s-col", default="steps", help="optimizer steps, for kaplan_ns (default steps)")
    rows = parser.add_argument_group("rows")
    rows.add_argument("--query", help="fit the rows matching this pandas query, e.g. \"kind == 'val'\"")
    rows.add_argument("--drop-highest-loss", type=cli_args.count, default=0, metavar="K",
                      help="drop the K rows with the highest loss (the Chinchilla replication drops 5)")
    rows.add_argument("--group-col", help="rows of one run, resampled together by the bootstrap "
                      "(default run_id when the table has it; 'none': every row on its own)")
    rows.add_argument("--weight-col", help="a column of row weights (>= 0) for the fit and its resamples")
    rows.add_argument("--pin-rows", metavar="EXPR", help="rows (a pandas query) kept in every bootstrap resample, "
                      "e.g. an anchor point \"final_val_loss == 0\"")
    rows.add_argument("--curves", help="approach 1: the curves table (default: the study's .curves file)")
    rows.add_argument("--isoflop-rtol", type=cli_args.positive, default=0.1,
                      help="approach 2: runs whose compute agrees within this fraction share an IsoFLOP group")
    rows.add_argument("--window", type=cli_args.positive, metavar="F",
                      help="approach 2: fit each parabola to the sizes within F x of the budget's best run")
    steer = parser.add_argument_group("objective and groups")
    steer.add_argument("--huber-delta", type=cli_args.huber_delta, default=1e-3, metavar="DELTA",
                       help="Huber threshold in fit-space units (default 1e-3 on log-loss, Hoffmann et al.; "
                            "for error/accuracy laws ~0.02; 'inf' = least squares)")
    steer.add_argument("--over-penalty", type=cli_args.positive, default=1.0, metavar="K",
                       help="cost multiplier of over-estimates (law above the run): K > 1 keeps the law on the "
                            "lower envelope, below under-tuned runs (default 1: symmetric)")
    steer.add_argument("--starts", type=cli_args.positive_count, metavar="K",
                       help="L-BFGS from K starts spread evenly over the law's grid (default: all of it, 4,500 for "
                            "chinchilla); fewer is faster and may miss the optimum (the fit says how many reach it)")
    steer.add_argument("--pin", action="append", default=[], metavar="NAME=VALUE",
                       help="hold a parameter fixed, e.g. E=1.7 (repeatable)")
    steer.add_argument("--by", metavar="COL", help="one fit per value of COL (e.g. dataset), in one file")
    steer.add_argument("--shared-e", action="store_true", help="with --by: one irreducible loss E for every group")
    steer.add_argument("--compare", action="store_true",
                       help="fit approaches 2, 3 and variable projection, and approach 3 with E pinned, and "
                            "report how N*, D* and the loss at --target-flops move between them")
    steer.add_argument("--target-flops", type=cli_args.positive, metavar="C",
                       help="the budget --compare reports at (default 100 x the largest compute fitted)")


def run(args) -> int:
    import sys

    from lmlab.analysis.fitjson import save_fit
    from lmlab.io import dumps

    _validate(args)
    log = Log()
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext(), log.capture():
        doc = _dispatch(args, log)
    doc["warnings"] = log.warnings
    if args.output:
        save_fit(doc, args.output)
        print(f"wrote {args.output}", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(dumps(doc, indent=2))
    return 0


class Log:
    """Warnings of a fit: each printed once as one line and kept for fit.json; numpy's own are muted."""

    def __init__(self):
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        import sys
        if message not in self.warnings:
            self.warnings.append(message)
            print(f"warning: {message}", file=sys.stderr)

    @contextlib.contextmanager
    def capture(self):
        """Library warnings (a fit that did not converge) become warning lines; numerical noise does not."""
        import warnings

        import numpy as np

        with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
            warnings.simplefilter("always")
            yield   # on an error the error line alone is shown
            for w in caught:
                if not issubclass(w.category, (RuntimeWarning, DeprecationWarning, FutureWarning)):
                    self.warn(str(w.message))


def _validate(args) -> None:
    """Everything that can be checked without reading the table."""
    from lmlab.errors import ConfigError

    if not args.output and not args.json:
        raise ConfigError("lmlab fit needs -o FILE (or --json to print the fit)")
    if args.bootstrap == 1:
        raise ConfigError("--bootstrap 1: expected 0 (none) or at least 2 resamples")
    if args.method != 3 and args.law != "chinchilla":
        raise ConfigError(f"--method {args.method} applies to the chinchilla law only, not {args.law!r}")
    if args.method != 3 and args.holdout:
        raise ConfigError("--holdout applies to --method 3 (a law that predicts loss), not to approaches 1 and 2")
    if args.window and args.method != 2 and not args.compare:
        raise ConfigError("--window applies to approach 2 (--method 2 or --compare)")
    if args.shared_e and not args.by:
        raise ConfigError("--shared-e needs --by COL (one E shared across the groups)")
    if args.compare and (args.law != "chinchilla" or args.by or args.method != 3):
        raise ConfigError("--compare applies to the chinchilla law, without --by or --method")
    if args.target_flops and not args.compare:
        raise ConfigError("--target-flops applies to --compare (for a plan use `lmlab plan --flops`)")
    args.pinned = _pins(args.pin)
    if args.shared_e and "E" in args.pinned:
        raise ConfigError("--shared-e and --pin E=...: choose one (a pinned E is shared already)")


def _pins(items) -> dict:
    from lmlab.errors import ConfigError
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--pin {item!r}: expected NAME=VALUE with a number, e.g. E=1.7") from None
        if not sep or not name.strip():
            raise ConfigError(f"--pin {item!r}: expected NAME=VALUE, e.g. E=1.7")
    return out


def _columns(args) -> dict:
    from lmlab.analysis.study import DEFAULT_COLUMNS
    return {"N": args.n_col, "D": args.d_col, "C": args.c_col or DEFAULT_COLUMNS["C"], "loss": args.loss_col,
            "y": args.y_col, "S": args.s_col}


def _dispatch(args, log) -> dict:
    from lmlab.analysis.laws import get_law

    law = get_law(args.law)
    fit_df, held_df, notes = _rows(args, log)
    notes.update(_provenance(fit_df, args, log))
    if args.compare:
        from lmlab.analysis.compare import compare_cli
        return compare_cli(args, fit_df, notes, log)
    if args.by:
        from lmlab.analysis.groups import fit_by_group
        return fit_by_group(args, law, fit_df, held_df, notes, log)
    if args.method == 3:
        return fit_law_cli(args, law, fit_df, held_df, notes, log)
    return _fit_allocation(args, fit_df, notes, log)


def _rows(args, log):
    """(rows to fit, held-out rows or None, notes on what was left out: never silently)."""
    from lmlab.analysis.holdout import holdout_mask
    from lmlab.analysis.study import completed_rows, query_rows, standard_inputs
    from lmlab.errors import FitError
    from lmlab.io import read_table

    df = read_table(args.table)
    notes = {"table": str(args.table), "rows_in_table": int(len(df))}
    df, not_completed = completed_rows(df)
    if not_completed:
        notes["rows_not_completed"] = not_completed
        print(f"note: {not_completed} run(s) not completed are left out of the fit")
    held = None
    if args.holdout:  # chosen on the whole table: a held-out run need not match --query
        mask = holdout_mask(args.holdout, standard_inputs(df, _columns(args)), df)
        held, df = df[mask], df[~mask]
    if args.query:
        df = query_rows(df, args.query, "--query")
        notes["query"] = args.query
    if args.drop_highest_loss:
        col = args.y_col or args.loss_col
        if col not in df.columns:
            raise FitError(f"column {col!r} is not in the table; available: {', '.join(map(str, df.columns))}")
        df = df.drop(df[col].nlargest(args.drop_highest_loss).index)
        notes["dropped_highest_loss"] = args.drop_highest_loss
    if df.empty:
        raise FitError(f"no rows left to fit in {str(args.table)!r} (after {_selection(args)}); expected some")
    return df, held, notes


def _selection(args) -> str:
    parts = ["completed runs"] + [f"{flag} {value!r}" for flag, value in
                                  (("--holdout", args.holdout), ("--query", args.query)) if value]
    return ", ".join(parts)


def _provenance(df, args, log) -> dict:
    """The unit of compute (the column that holds C; None when the table has none), vocabulary and
    data the runs were counted at (fit.json keys)."""
    c_col = _columns(args)["C"]
    out = {"compute": c_col if c_col in df.columns else None}
    for key in ("vocab_size", "data"):
        if key not in df.columns:
            continue
        values = sorted({v for v in df[key].dropna().tolist()}, key=str)
        if len(values) == 1:
            out[key] = values[0].item() if hasattr(values[0], "item") else values[0]
        elif values:
            out[key] = [v.item() if hasattr(v, "item") else v for v in values]
            log.warn(f"the fitted runs have {len(values)} values of {key!r} ({', '.join(map(str, values))}); "
                     f"a law across them mixes units (fit one --by {key})")
    return {"counted_at": out}


def bootstrap_groups(args, df):
    """(group labels or None, pinned mask or None, group column name) for the bootstrap."""
    import numpy as np

    from lmlab.analysis.study import query_rows
    from lmlab.errors import FitError

    name = args.group_col
    if name is None and "run_id" in df.columns:
        name = "run_id"
    if name == "none":
        name = None
    if name is not None and name not in df.columns:
        raise FitError(f"--group-col {name!r} is not in the table; available: {', '.join(map(str, df.columns))}")
    groups = df[name].astype(str).to_numpy() if name else None
    pinned = None
    if args.pin_rows:
        pinned = df.index.isin(query_rows(df, args.pin_rows, "--pin-rows").index)
        if not pinned.any():
            raise FitError(f"--pin-rows {args.pin_rows!r} matches none of the rows fitted; expected the anchor rows")
    return groups, (np.asarray(pinned) if pinned is not None else None), name


def row_weights(args, df):
    from lmlab.analysis.study import column
    return None if not args.weight_col else column(df, args.weight_col)


def fit_law_cli(args, law, df, held_df, notes, log, fixed=None, plot_dir=None) -> dict:
    """Approach 3 (or any law): the fit, its calibration, bootstrap, held-out report and figures."""
    from lmlab.analysis.fit import check_bootstrap, fit_law
    from lmlab.analysis.study import law_data

    data = law_data(df, law, _columns(args))
    weights = row_weights(args, df)
    groups, pinned, group_name = bootstrap_groups(args, df)
    if args.bootstrap:
        check_bootstrap(len(data.y), groups, pinned)
    fit = fit_law(law, data.X, data.y, columns=data.sources, weights=weights, delta=args.huber_delta,
                  over_penalty=args.over_penalty, fixed={**args.pinned, **(fixed or {})}, starts=starts(args, law, data))
    return fit_report(args, fit, data, df, held_df, notes, log, groups, pinned, group_name, plot_dir)


def starts(args, law, data):
    """--starts K: K starts spread evenly over the law's grid (None: the whole grid)."""
    import numpy as np

    if not args.starts:
        return None
    grid = law.start_grid(data.X, data.y)
    return grid[np.unique(np.linspace(0, len(grid) - 1, min(args.starts, len(grid))).round().astype(int))]


def fit_report(args, fit, data, df, held_df, notes, log, groups=None, pinned=None, group_name=None,
               plot_dir=None) -> dict:
    """Everything after the point fit: calibration, bootstrap, warnings, held-out report, figures."""
    from lmlab.analysis.diagnostics import fit_warnings
    from lmlab.analysis.extrapolation import GRID_STARTS, calibrate
    from lmlab.analysis.fit import bootstrap
    from lmlab.analysis.fitjson import fit_to_json
    from lmlab.analysis.study import law_data

    law = fit.law
    print(f"{law.name}: {law.formula}  ({len(data.y)} points, {fit.n_starts} starts, "
          f"{fit.n_at_optimum} at the optimum)")
    fit.extrapolation = calibrate(fit, grid_starts=min(GRID_STARTS, args.starts or GRID_STARTS))
    if fit.extrapolation.kappa is None:
        log.warn(f"no extrapolation backtest ({fit.extrapolation.reason}): intervals cover parameter noise and "
                 f"run scatter only, not the error of extrapolating")
    if args.bootstrap:
        b = bootstrap(fit, args.bootstrap, level=args.level, seed=args.seed, groups=groups, pinned=pinned,
                      group_name=group_name)
        print(f"bootstrap: {args.bootstrap} resamples of {b.n_groups or len(data.y)} runs"
              f"{f' (by {group_name})' if group_name else ''}; {b.n_failed} failed")
        if b.n_failed > 0.1 * args.bootstrap:
            log.warn(f"{b.n_failed} of {args.bootstrap} bootstrap resamples failed to converge; the intervals "
                     f"are less reliable")
    for message in fit_warnings(fit):
        log.warn(message)
    _print_params(fit)
    extra = {"method": 3, "rows": notes, **notes.pop("counted_at", {})}
    if held_df is not None and len(held_df):
        extra["holdout"] = _holdout(args, fit, law, held_df)
    if plot_dir or args.plot:
        held = law_data(held_df, law, _columns(args)) if held_df is not None and len(held_df) else None
        _plot_law(plot_dir or args.plot, fit, data, held)
    return fit_to_json(fit, **extra)


def _holdout(args, fit, law, held_df) -> dict:
    from lmlab.analysis.holdout import holdout_report
    from lmlab.analysis.study import law_data

    held = law_data(held_df, law, _columns(args))
    labels = held_df["run_id"].to_numpy() if "run_id" in held_df.columns else held_df.index.to_numpy()
    table, summary = holdout_report(fit, held.X, held.y, labels, level=args.level)
    print(f"holdout {args.holdout!r}: {summary['n_heldout']} point(s); interval: {summary['interval']}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print("summary: " + ", ".join(f"{k} {v:.4g}" for k, v in summary.items() if isinstance(v, float)))
    return {"rule": args.holdout, "summary": summary, "points": table.to_dict(orient="records")}


def _print_params(fit) -> None:
    intervals = fit.bootstrap.intervals(fit.law) if fit.bootstrap is not None else {}
    for name, value in {**fit.params, **fit.derived}.items():
        band = f"  [{intervals[name][0]:.6g}, {intervals[name][1]:.6g}]" if name in intervals else ""
        pinned = "  (pinned)" if name in fit.fixed or f"log_{name}" in fit.fixed else ""
        print(f"  {name:>8} = {value:.6g}{band}{pinned}")


def _plot_law(out_dir, fit, data, held) -> None:
    from lmlab.analysis import plots

    written = plots.save_figure(plots.law_fit(fit, held.X if held else None, held.y if held else None),
                                out_dir, f"{fit.law.name}_fit")
    written += plots.save_figure(plots.residuals(fit), out_dir, f"{fit.law.name}_residuals")
    if {"N", "D"} <= set(fit.law.inputs):
        X = data.X
        written += plots.save_figure(plots.loss_vs_compute(6 * X["N"] * X["D"], data.y, X["N"]), out_dir,
                                     "loss_vs_compute")
    if fit.law.name == "chinchilla":
        written += plots.save_figure(plots.allocation([], fit), out_dir, "allocation")
    print("figures: " + ", ".join(str(p) for p in written))


def allocation_columns(args, df):
    """Approach 2's per-run arrays (n, flops, loss) and run ids, checked positive."""
    import numpy as np

    from lmlab.analysis.study import column

    cols = {"n": column(df, args.n_col), "flops": column(df, _columns(args)["C"]), "loss": column(df, args.loss_col)}
    _check_positive(cols)
    ids = df["run_id"].to_numpy() if "run_id" in df.columns else np.arange(len(df))
    return cols, ids


def _fit_allocation(args, df, notes, log) -> dict:
    """Approaches 1 and 2: N_opt(C) and D_opt(C) power laws, no loss law."""
    from lmlab.analysis.approaches import allocation_warnings, bootstrap_allocation, isoflop_groups
    from lmlab.analysis.study import column
    from lmlab.runs.collect import curves_path
    from lmlab.io import read_table

    if args.method == 2:
        cols, ids = allocation_columns(args, df)
        kwargs = {"rtol": args.isoflop_rtol, "window": args.window}
    else:
        path = args.curves or curves_path(args.table)
        curves = read_table(path)
        if "kind" in curves.columns:
            curves = curves[curves["kind"] == "val"]
        notes["curves"] = str(path)
        cols = {"n": column(curves, args.n_col), "tokens": column(curves, args.d_col),
                "flops": column(curves, _columns(args)["C"]), "loss": column(curves, "loss")}
        _check_positive(cols)
        ids, kwargs = curves["run_id"].to_numpy() if "run_id" in curves.columns else None, {}
        if ids is None:
            from lmlab.errors import FitError
            raise FitError(f"the curves table {str(path)!r} has no run_id column; expected one curve per run")
    alloc = bootstrap_allocation(args.method, ids, cols, args.bootstrap, level=args.level, seed=args.seed,
                                 **kwargs) if args.bootstrap else _single(args.method, ids, cols, kwargs)
    for message in allocation_warnings(alloc):
        log.warn(message)
    out = alloc.to_json()
    print(f"approach {args.method}: N_opt ~ C^{alloc.n_opt.exponent:.4f}, D_opt ~ C^{alloc.d_opt.exponent:.4f}"
          + "".join(f"; {k} in [{lo:.4f}, {hi:.4f}]" for k, (lo, hi) in alloc.intervals().items()))
    if alloc.samples is not None:
        print(f"bootstrap: {args.bootstrap} resamples of runs; {alloc.details['bootstrap_failed']} failed")
    if args.plot:
        from lmlab.analysis import plots
        written = plots.save_figure(plots.allocation([alloc]), args.plot, f"allocation_approach{args.method}")
        if args.method == 2:
            groups = isoflop_groups(cols["flops"], args.isoflop_rtol)
            written += plots.save_figure(plots.isoflop(alloc, cols["n"], cols["flops"], cols["loss"], groups),
                                         args.plot, "isoflop")
        else:
            written += plots.save_figure(plots.loss_curves(curves, x=_columns(args)["C"], size=args.n_col,
                                                           envelope=alloc), args.plot, "envelope")
        print("figures: " + ", ".join(str(p) for p in written))
    counted = notes.pop("counted_at", {})
    return {"law": "chinchilla", "method": args.method,
            "params": {"a": out["a"], "b": out["b"], "N_opt_coef": out["N_opt"]["coef"],
                       "D_opt_coef": out["D_opt"]["coef"]},
            "intervals": out["intervals"], "columns": {"N": args.n_col, "C": _columns(args)["C"], "L": args.loss_col},
            "allocation": out, "rows": notes, **counted}


def _single(method, ids, cols, kwargs):
    from lmlab.analysis.approaches import approach1, approach2
    return approach1(ids, **cols) if method == 1 else approach2(**cols, **kwargs)


def _check_positive(cols: dict) -> None:
    import numpy as np
    from lmlab.errors import FitError
    for name, v in cols.items():
        bad = ~np.isfinite(v) | (v <= 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise FitError(f"column for {name} has {int(bad.sum())} bad value(s) (first: row {i} = {float(v[i])!r}); "
                           f"expected finite and > 0")
