"""The longest run of each quickstart size, training loss against tokens (mean of 10 logged points), from the
committed study folder: every size follows one curve (at these budgets the loss depends on tokens, not on N),
and the held-out 220k run trains 1.8x further than any fitted run, where the curve falls faster than the
fitted power law in D. Writes curves_0.3x.png next to this file.

    .venv/bin/python experiments/quickstart/curves_0.3x.py [STUDY_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lmlab.analysis.plots import write_figure  # noqa: E402
from lmlab.io import read_table  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> None:
    study = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "study"
    runs = read_table(study / "study.parquet")
    curves = read_table(study / "study.curves.parquet")
    longest = runs.loc[runs.groupby("model")["tokens"].idxmax()].sort_values("n_params_nonembedding")
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for run in longest.itertuples():
        train = curves[(curves["run_id"] == run.run_id) & (curves["kind"] == "train")].sort_values("tokens")
        ax.plot(train["tokens"], train["loss"].rolling(10, min_periods=1).mean(), label=f"{run.model} ({run.tokens:,} tokens)")
    ax.set_xscale("log")
    ax.set_ylim(3.4, 5.0)
    ax.set_xlabel("tokens")
    ax.set_ylabel("training loss (mean of 10 logged points)")
    ax.set_title("Quickstart, 0.3x Chinchilla: one curve for all sizes")
    ax.legend(fontsize=8)
    print(write_figure(fig, HERE / "curves_0.3x.png"))


if __name__ == "__main__":
    main()
