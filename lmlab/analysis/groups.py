"""Per-group fits in one call (`lmlab fit --by dataset`), optionally sharing E across the groups.

Each group is fitted exactly as `lmlab fit --query "COL == value"` would fit it (same objective,
starts, calibration and bootstrap). With --shared-e, the irreducible loss E is one number for all
groups, as in OLMo's ladder fits (the data sets differ in how fast loss falls, not in the entropy
floor they approach): E is the value that minimises the summed objective of the groups' fits with
E pinned (a one-dimensional search, each step warm-started from the groups' free fits); then each
group is reported with that E pinned.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize_scalar

from lmlab.errors import FitError

E_SEARCH_XATOL = 1e-4     # in log E


def fit_by_group(args, law, df, held_df, notes, log) -> dict:
    from pathlib import Path

    from lmlab.analysis.cli_fit import fit_law_cli

    if args.by not in df.columns:
        raise FitError(f"--by {args.by!r} is not a column of the table; available: {', '.join(map(str, df.columns))}")
    values = sorted(df[args.by].dropna().unique().tolist(), key=str)
    shared = {}
    if args.shared_e:
        e = shared_e(args, law, [df[df[args.by] == v] for v in values])
        shared = {"E": e}
        print(f"shared E = {e:.6g} (one irreducible loss for the {len(values)} groups of {args.by!r})")
    counted = notes.pop("counted_at", {})
    docs = {}
    for value in values:
        print(f"--- {args.by} = {value}")
        held = held_df[held_df[args.by] == value] if held_df is not None and args.by in held_df.columns else None
        plot_dir = str(Path(args.plot) / str(value)) if args.plot else None
        docs[str(value)] = fit_law_cli(args, law, df[df[args.by] == value], held, dict(notes), log,
                                       fixed=shared, plot_dir=plot_dir)
    return {"format": 2, "law": law.name, "by": args.by, "shared": shared, "groups": docs, "rows": notes, **counted}


def shared_e(args, law, frames) -> float:
    """The E minimising the summed objective of every group's fit with E pinned."""
    from lmlab.analysis.cli_fit import _columns, row_weights
    from lmlab.analysis.fit import fit_law
    from lmlab.analysis.study import law_data

    if "log_E" not in law.theta_names:
        raise FitError(f"--shared-e: law {law.name!r} has no irreducible loss E; expected a law with E")
    datas = [law_data(f, law, _columns(args)) for f in frames]
    options = [dict(weights=row_weights(args, f), delta=args.huber_delta, over_penalty=args.over_penalty)
               for f in frames]
    from lmlab.analysis.cli_fit import starts as grid_starts
    free = [fit_law(law, d.X, d.y, fixed=args.pinned, starts=grid_starts(args, law, d), **o)
            for d, o in zip(datas, options)]
    starts = [np.vstack([f.minima, f.theta[None]]) for f in free]

    def total(log_e):
        return sum(fit_law(law, d.X, d.y, starts=s, fixed={**args.pinned, "log_E": log_e}, **o).objective
                   for d, s, o in zip(datas, starts, options))

    floor = min(float(np.min(d.y)) for d in datas)
    res = minimize_scalar(total, bounds=(math.log(1e-3 * floor), math.log(0.999 * floor)), method="bounded",
                          options={"xatol": E_SEARCH_XATOL})
    return float(math.exp(res.x))
