"""`lmlab fit TABLE --law L [--method 1|2|3] [--holdout RULE] [--bootstrap K] -o fit.json [--plot DIR]`"""

from __future__ import annotations

import argparse

# kept here (not imported from laws) so that `lmlab --help` stays cheap
LAW_NAMES = ("chinchilla", "kaplan", "kaplan_n", "kaplan_n_e", "kaplan_d", "kaplan_d_e", "kaplan_c", "kaplan_c_e",
             "kaplan_ns", "overtrain", "downstream", "olmo_sigmoid", "curve")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", help="a study table (lmlab runs collect) or any .parquet/.csv table")
    parser.add_argument("--law", default="chinchilla",
                        help=f"the law to fit (default chinchilla): {', '.join(LAW_NAMES)}")
    parser.add_argument("--method", type=int, choices=(1, 2, 3), default=3,
                        help="Chinchilla approach: 1 curve envelope, 2 IsoFLOP parabolas, 3 parametric law (default)")
    parser.add_argument("--holdout", metavar="RULE",
                        help="fit without these rows, then report their predicted vs actual values: "
                             "max:COL, top:K:COL or COL>=VALUE (COL: N, D, C or a column)")
    parser.add_argument("--bootstrap", type=int, default=0, metavar="K",
                        help="resample runs K times for confidence intervals (1000 or more recommended)")
    parser.add_argument("--level", type=float, default=0.95, help="interval coverage (default 0.95)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("-o", "--output", required=True, help="where to write the fit JSON")
    parser.add_argument("--plot", metavar="DIR", help="write figures (PNG and SVG) here")
    cols = parser.add_argument_group("columns (defaults: the runs table's names)")
    cols.add_argument("--n-col", default="n_params", help="parameters N (default n_params: total, as Chinchilla)")
    cols.add_argument("--d-col", default="tokens", help="tokens D (default tokens; else C/(6N))")
    cols.add_argument("--c-col", default="flops_6n", help="compute C (default flops_6n; else 6ND)")
    cols.add_argument("--loss-col", default="final_val_loss", help="loss (default final_val_loss)")
    cols.add_argument("--y-col", help="the fitted quantity when it is not the loss (error, accuracy)")
    cols.add_argument("--s-col", default="steps", help="optimizer steps, for kaplan_ns (default steps)")
    rows = parser.add_argument_group("rows")
    rows.add_argument("--query", help="keep rows matching this pandas query, e.g. \"kind == 'val'\"")
    rows.add_argument("--drop-highest-loss", type=int, default=0, metavar="K",
                      help="drop the K rows with the highest loss (the Chinchilla replication drops 5)")
    rows.add_argument("--curves", help="approach 1: the curves table (default: the study's .curves file)")
    rows.add_argument("--isoflop-rtol", type=float, default=0.1,
                      help="approach 2: runs whose compute agrees within this fraction share an IsoFLOP group")


def run(args) -> int:
    from lmlab.analysis.laws import get_law
    from lmlab.errors import FitError

    law = get_law(args.law)
    if args.bootstrap and args.bootstrap < 2:
        raise FitError(f"--bootstrap {args.bootstrap}: expected 0 (none) or at least 2 resamples")
    if args.method != 3 and law.name != "chinchilla":
        raise FitError(f"--method {args.method} applies to the chinchilla law only, not {law.name!r}")
    if args.method != 3 and args.holdout:
        raise FitError("--holdout applies to --method 3 (a law that predicts loss), not to approaches 1 and 2")
    df, notes = _rows(args)
    doc = _fit_law(args, law, df, notes) if args.method == 3 else _fit_allocation(args, df, notes)
    from lmlab.analysis.fitjson import save_fit
    save_fit(doc, args.output)
    print(f"wrote {args.output}")
    return 0


def _columns(args) -> dict:
    return {"N": args.n_col, "D": args.d_col, "C": args.c_col, "loss": args.loss_col, "y": args.y_col, "S": args.s_col}


def _rows(args):
    """The table's rows to fit, and notes on what was left out (never silently)."""
    from lmlab.analysis.study import completed_rows, read_table
    from lmlab.errors import FitError

    df = read_table(args.table)
    notes = {"table": str(args.table), "rows_in_table": int(len(df))}
    if args.query:
        try:
            df = df.query(args.query)
        except Exception as err:  # pandas raises many types for a bad expression
            raise FitError(f"--query {args.query!r} failed: {type(err).__name__}: {err}") from None
        notes["query"] = args.query
    df, not_completed = completed_rows(df)
    if not_completed:
        notes["rows_not_completed"] = not_completed
        print(f"note: {not_completed} run(s) not completed are left out of the fit")
    if args.drop_highest_loss:
        col = args.y_col or args.loss_col
        if col not in df.columns:
            raise FitError(f"column {col!r} is not in the table; available: {', '.join(map(str, df.columns))}")
        df = df.drop(df[col].nlargest(args.drop_highest_loss).index)
        notes["dropped_highest_loss"] = args.drop_highest_loss
    return df, notes


def _fit_law(args, law, df, notes) -> dict:
    import warnings

    import numpy as np

    from lmlab.analysis.fit import bootstrap, fit_law
    from lmlab.analysis.fitjson import fit_to_json
    from lmlab.analysis.holdout import holdout_mask, holdout_report
    from lmlab.analysis.study import law_data, standard_inputs

    data = law_data(df, law, _columns(args))
    fit_rows = np.ones(len(data.y), dtype=bool)
    held = None
    if args.holdout:
        held = holdout_mask(args.holdout, {**standard_inputs(df, _columns(args)), **data.X}, df)
        fit_rows = ~held
    X_fit = {k: v[fit_rows] for k, v in data.X.items()}
    with warnings.catch_warnings():  # non-convergence is reported just below, once
        warnings.simplefilter("ignore", UserWarning)
        fit = fit_law(law, X_fit, data.y[fit_rows], columns=data.sources)
    print(f"{law.name}: {law.formula}  ({len(data.y[fit_rows])} points, {fit.n_starts} starts, "
          f"{fit.n_at_optimum} at the optimum)")
    if not fit.converged:
        print(f"warning: the fit did not converge ({fit.status})")
    if args.bootstrap:
        bootstrap(fit, args.bootstrap, level=args.level, seed=args.seed)
    extra = {"method": 3, "rows": notes}
    _print_params(fit)
    if held is not None:
        labels = df["run_id"].to_numpy()[held] if "run_id" in df.columns else df.index.to_numpy()[held]
        held_X = {k: v[held] for k, v in data.X.items()}
        table, summary = holdout_report(fit, held_X, data.y[held], labels)
        extra["holdout"] = {"rule": args.holdout, "summary": summary, "points": table.to_dict(orient="records")}
        print(f"holdout {args.holdout!r}: {summary['n_heldout']} point(s)")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        print("summary: " + ", ".join(f"{k} {v:.4g}" for k, v in summary.items()))
    if args.plot:
        _plot_law(args.plot, fit, data, held)
    return fit_to_json(fit, **extra)


def _print_params(fit) -> None:
    intervals = fit.bootstrap.intervals(fit.law) if fit.bootstrap is not None else {}
    for name, value in {**fit.params, **fit.derived}.items():
        band = f"  [{intervals[name][0]:.6g}, {intervals[name][1]:.6g}]" if name in intervals else ""
        print(f"  {name:>8} = {value:.6g}{band}")


def _plot_law(out_dir, fit, data, held) -> None:
    from lmlab.analysis import plots

    held_X = {k: v[held] for k, v in data.X.items()} if held is not None else None
    written = plots.save_figure(plots.law_fit(fit, held_X, data.y[held] if held is not None else None),
                                out_dir, f"{fit.law.name}_fit")
    written += plots.save_figure(plots.residuals(fit), out_dir, f"{fit.law.name}_residuals")
    if {"N", "D"} <= set(fit.law.inputs):
        X = data.X
        written += plots.save_figure(plots.loss_vs_compute(6 * X["N"] * X["D"], data.y, X["N"]), out_dir,
                                     "loss_vs_compute")
    if fit.law.name == "chinchilla":
        written += plots.save_figure(plots.allocation([], fit), out_dir, "allocation")
    print("figures: " + ", ".join(str(p) for p in written))


def _fit_allocation(args, df, notes) -> dict:
    """Approaches 1 and 2: N_opt(C) and D_opt(C) power laws, no loss law."""
    import numpy as np

    from lmlab.analysis.approaches import bootstrap_allocation, isoflop_groups
    from lmlab.analysis.study import curves_path, read_table

    if args.method == 2:
        cols = {"n": _col(df, args.n_col), "flops": _col(df, args.c_col), "loss": _col(df, args.loss_col)}
        ids = df["run_id"].to_numpy() if "run_id" in df.columns else np.arange(len(df))
        kwargs = {"rtol": args.isoflop_rtol}
    else:
        path = args.curves or curves_path(args.table)
        curves = read_table(path)
        if "kind" in curves.columns:
            curves = curves[curves["kind"] == "val"]
        notes["curves"] = str(path)
        cols = {"n": _col(curves, args.n_col), "tokens": _col(curves, args.d_col),
                "flops": _col(curves, args.c_col), "loss": _col(curves, "loss")}
        ids, kwargs = _col(curves, "run_id", numeric=False), {}
    _check_positive(cols)
    alloc = bootstrap_allocation(args.method, ids, cols, args.bootstrap, level=args.level, seed=args.seed,
                                 **kwargs) if args.bootstrap else _single(args.method, ids, cols, kwargs)
    out = alloc.to_json()
    print(f"approach {args.method}: N_opt ~ C^{alloc.n_opt.exponent:.4f}, D_opt ~ C^{alloc.d_opt.exponent:.4f}"
          + "".join(f"; {k} in [{lo:.4f}, {hi:.4f}]" for k, (lo, hi) in alloc.intervals().items()))
    if args.plot:
        from lmlab.analysis import plots
        written = plots.save_figure(plots.allocation([alloc]), args.plot, f"allocation_approach{args.method}")
        if args.method == 2:
            groups = isoflop_groups(cols["flops"], args.isoflop_rtol)
            written += plots.save_figure(plots.isoflop(alloc, cols["n"], cols["flops"], cols["loss"], groups),
                                         args.plot, "isoflop")
        else:
            written += plots.save_figure(plots.loss_curves(curves, x=args.c_col, size=args.n_col, envelope=alloc),
                                         args.plot, "envelope")
        print("figures: " + ", ".join(str(p) for p in written))
    return {"law": "chinchilla", "method": args.method,
            "params": {"a": out["a"], "b": out["b"], "N_opt_coef": out["N_opt"]["coef"],
                       "D_opt_coef": out["D_opt"]["coef"]},
            "intervals": out["intervals"], "columns": {"N": args.n_col, "C": args.c_col, "L": args.loss_col},
            "allocation": out, "rows": notes}


def _single(method, ids, cols, kwargs):
    from lmlab.analysis.approaches import approach1, approach2
    return approach1(ids, **cols) if method == 1 else approach2(**cols, **kwargs)


def _col(df, name, numeric=True):
    from lmlab.errors import FitError
    if name not in df.columns:
        raise FitError(f"column {name!r} is not in the table; available: {', '.join(map(str, df.columns))}")
    return df[name].to_numpy(dtype=float) if numeric else df[name].to_numpy()


def _check_positive(cols: dict) -> None:
    import numpy as np
    from lmlab.errors import FitError
    for name, v in cols.items():
        bad = ~np.isfinite(v) | (v <= 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise FitError(f"column for {name} has {int(bad.sum())} bad value(s) (first: row {i} = {float(v[i])!r}); "
                           f"expected finite and > 0")
