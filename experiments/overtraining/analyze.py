"""Over-training on the bundled corpus: does a law fitted on runs up to M tokens per parameter predict
runs trained far longer (Gadre et al. 2024)?

Collects the runs of experiments/overtraining/run.sh, then for each split (fit on M <= 20, predict M >= 40;
fit on M <= 40, predict M = 80) fits Gadre et al.'s form L = E + (a M^eta + b M^-eta) C^-eta and
Chinchilla's L = E + A/N^alpha + B/D^beta with `lmlab fit` (N = non-embedding parameters, as the quickstart
fits), and prints each held-out run's prediction, interval and error. Writes the study table, summary.json
and loss_vs_m.png to --out (default: experiments/overtraining/out).

    .venv/bin/python experiments/overtraining/analyze.py [--runs runs/overtraining] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
N_COL = "n_params_nonembedding"
SPLITS = {"M<=20": 30, "M<=40": 60}   # held out: runs with more tokens per parameter than this
LAWS = ("overtrain", "chinchilla")


def lmlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lmlab.cli", *args], capture_output=True, text=True)


def fit(table: Path, law: str, m_cut: float) -> dict:
    """The held-out result of one law fitted on the runs up to m_cut tokens per parameter, or why it cannot fit
    (e.g. Chinchilla's 5 parameters on 5 runs)."""
    done = lmlab("fit", str(table), "--law", law, "--n-col", N_COL, "--bootstrap", "200",
                 "--holdout", f"query:tokens / {N_COL} > {m_cut}", "--json")
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1]}
    out = json.loads(done.stdout)
    return {"params": out["params"], "warnings": out.get("warnings", []), "points": out["holdout"]["points"],
            "summary": out["holdout"]["summary"]}


def figure(runs, fits: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from lmlab.analysis.laws import get_law
    from lmlab.analysis.plots import write_figure
    from lmlab.runspec import COMPUTE

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    law = get_law("overtrain")
    params = fits["M<=20"]["overtrain"]["params"]
    for (size, n), group in runs.groupby(["model", N_COL]):
        m = group["tokens"] / n
        line, = ax.plot(m, group["final_val_loss"], "o", label=f"{size} (N = {n:,})")
        grid = np.geomspace(8, 100, 50)
        per_token = (group[COMPUTE] / group["tokens"]).iloc[0]   # the fit's C: the runs' unit of compute
        ax.plot(grid, law.predict(params, C=per_token * grid * n, M=grid), "-", color=line.get_color(), alpha=0.6)
    ax.axvline(SPLITS["M<=20"], color="grey", ls=":", label="fit | held out")
    ax.set_xscale("log")
    ax.set_xlabel("M = tokens per non-embedding parameter")
    ax.set_ylabel("final validation loss (nats)")
    ax.set_title("Over-training: Gadre et al.'s law fitted on M <= 20")
    ax.legend(fontsize=8)
    write_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path(os.environ.get("LMLAB_RUNS_DIR", "runs")) / "overtraining")
    parser.add_argument("--out", type=Path, default=HERE / "out")
    args = parser.parse_args()

    from lmlab.io import read_table, write_json

    args.out.mkdir(parents=True, exist_ok=True)
    table = args.out / "overtraining.parquet"
    lmlab("runs", "collect", str(args.runs), "-o", str(table)).check_returncode()
    runs = read_table(table)
    runs = runs[runs["status"] == "completed"]
    fits = {split: {law: fit(table, law, cut) for law in LAWS} for split, cut in SPLITS.items()}
    print(f"{len(runs)} completed runs: " + ", ".join(
        f"{r.model} M={r.tokens / getattr(r, N_COL):.0f}: {r.final_val_loss:.4f}" for r in runs.itertuples()))
    for split, by_law in fits.items():
        for law, result in by_law.items():
            if "error" in result:
                print(f"fit on {split}, law {law}: {result['error']}")
                continue
            s = result["summary"]
            print(f"fit on {split}, law {law}: held-out mean |error| {s['mean_abs_rel_error']:.2%}, "
                  f"max {s['max_abs_rel_error']:.2%}, inside the interval {s['share_inside_interval']:.0%}")
            for p in result["points"]:
                print(f"  {p['label']}: M={p['M'] if 'M' in p else p['D'] / p['N']:.0f} predicted {p['predicted']:.4f} [{p['lo']:.4f}, "
                      f"{p['hi']:.4f}], actual {p['actual']:.4f}, error {p['rel_error']:+.2%}")
    figure(runs, fits, args.out / "loss_vs_m.png")
    write_json(args.out / "summary.json", {"n_col": N_COL, "splits": SPLITS, "fits": fits})
    print(f"written to {args.out}: overtraining.parquet, summary.json, loss_vs_m.png")


if __name__ == "__main__":
    main()
