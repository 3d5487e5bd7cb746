"""Held-out budgets of the published IsoFLOP studies: does lmlab's default interval hold?

For each study in lmlab/analysis/reference/isoflops/ (the transcribers' outliers left out), run
`lmlab fit` on every budget but the largest, holding out the largest budget's runs, and collect
the share of them inside the default and the parameter-only 95% intervals and the intervals'
median half-widths. Writes out/<study>.json (the fit files), out/results.csv, and the figure
figures/coverage.png. Run from the repository root:

    .venv/bin/python experiments/honest-intervals/run.py [--bootstrap 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from lmlab.analysis.reference import isoflops_path
from lmlab.cli import main as lmlab
from lmlab.io import write_table

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="1000")
    args = parser.parse_args()
    table = pd.read_csv(isoflops_path())
    out = HERE / "out"
    rows = []
    for study, runs in table[~table["outlier"].astype(bool)].groupby("experiment"):
        largest = float(runs["budget"].max())
        select = f"experiment == '{study}' and outlier == False"
        fit_json = out / f"{study}.json"
        code = lmlab(["fit", str(isoflops_path()), "--n-col", "params", "--d-col", "tokens", "--c-col", "budget",
                      "--loss-col", "loss", "--group-col", "none", "--query", select,
                      "--holdout", f"query:{select} and budget == {largest!r}", "--bootstrap", args.bootstrap,
                      "-o", str(fit_json)])
        if code:
            print(f"{study}: lmlab fit exited {code}", file=sys.stderr)
            continue
        doc = json.loads(fit_json.read_text())
        s = doc["holdout"]["summary"]
        rows.append({"study": study, "budgets": runs["budget"].nunique(), "runs_fitted": doc["points"]["n_points"],
                     "held_out": s["n_heldout"], "held_out_budget": largest,
                     "decades_beyond": np.log10(largest) - np.log10(runs.loc[runs.budget < largest, "budget"].max()),
                     "coverage": s["share_inside_interval"], "half_width": s["median_half_width"],
                     "param_coverage": s["share_inside_parameter_interval"],
                     "param_half_width": s["median_parameter_half_width"],
                     "mean_abs_rel_error": s["mean_abs_rel_error"], "warnings": len(doc["warnings"])})
    results = pd.DataFrame(rows)
    write_table(results, out / "results.csv")
    print(results.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    pooled = (results.coverage * results.held_out).sum() / results.held_out.sum()
    p_pooled = (results.param_coverage * results.held_out).sum() / results.held_out.sum()
    print(f"pooled over {results.held_out.sum()} held-out runs: default coverage {pooled:.3f} (median half-width "
          f"{results.half_width.median():.2%}), parameter-only {p_pooled:.3f} ({results.param_half_width.median():.2%})")
    figure(results, HERE / "figures" / "coverage.png")
    return 0


def figure(results: pd.DataFrame, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    left, right = fig.subplots(1, 2)
    y = np.arange(len(results))
    names = [s.replace("__", " / ") for s in results.study]
    for ax, (a, b), title in ((left, ("coverage", "param_coverage"), "share of held-out runs inside the 95% interval"),
                              (right, ("half_width", "param_half_width"), "median half-width / loss")):
        ax.barh(y + 0.2, results[a], height=0.4, color="tab:orange", label="default (extrapolation)")
        ax.barh(y - 0.2, results[b], height=0.4, color="navy", label="parameter-only")
        ax.set_title(title, fontsize=9)
        ax.set_yticks(y, names if ax is left else [], fontsize=7)
    left.axvline(0.95, color="black", lw=0.8, ls="--")
    right.axvline(0.03, color="black", lw=0.8, ls="--")
    left.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
