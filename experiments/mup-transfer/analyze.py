"""Best learning rate per (parametrisation, width) from the four grid searches of run.sh; a figure of
loss against learning rate, and the numbers (findings.json).
Usage: python experiments/mup-transfer/analyze.py RUNS_DIR OUT_DIR"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lmlab.analysis.plots import png_bytes
from lmlab.io import write_atomic, write_json

WIDTHS = (32, 128)


def scans(runs: Path) -> dict[tuple[str, int], pd.DataFrame]:
    """(parametrisation, width) -> the scan; muP at its base width 32 is the SP model: the same scan."""
    groups = {("sp", 32): ["sp-32", "sp-32-high"], ("sp", 128): ["sp-128"], ("mup", 128): ["mup-128"]}
    out = {}
    for key, names in groups.items():
        tables = [pd.read_csv(runs / ".hydra" / "search" / name / "study" / "trials.csv") for name in names]
        out[key] = pd.concat(tables).sort_values("param.optim.lr")[["param.optim.lr", "value", "state"]].reset_index(drop=True)
    out["mup", 32] = out["sp", 32]
    return out


def vertex(table: pd.DataFrame) -> float:
    """The minimum of a parabola in log2(lr) through the best point and its two neighbours on each
    side: an estimate of the best lr between grid points, less at the mercy of one noisy run."""
    t = table.dropna(subset=["value"]).reset_index(drop=True)
    i = int(t["value"].idxmin())
    near = t.iloc[max(0, i - 2): i + 3]
    a, b, _ = np.polyfit(np.log2(near["param.optim.lr"]), near["value"], 2)
    return float(2 ** (-b / (2 * a))) if a > 0 else float(t.loc[i, "param.optim.lr"])


def main(runs: Path, out: Path) -> None:
    data = scans(runs)
    best = {k: float(t.loc[t["value"].idxmin(), "param.optim.lr"]) for k, t in data.items()}
    fitted = {k: vertex(t) for k, t in data.items()}
    shift = {p: math.log2(best[p, WIDTHS[1]] / best[p, WIDTHS[0]]) for p in ("sp", "mup")}
    fitted_shift = {p: math.log2(fitted[p, WIDTHS[1]] / fitted[p, WIDTHS[0]]) for p in ("sp", "mup")}
    fig = Figure(figsize=(10, 4))
    for ax, param in zip(fig.subplots(1, 2, sharey=True), ("sp", "mup")):
        for width in WIDTHS:
            t = data[param, width]
            line, = ax.plot(t["param.optim.lr"], t["value"], marker="o", label=f"d_model {width}")
            ax.plot(best[param, width], t["value"].min(), marker="*", markersize=16, color=line.get_color())
        ax.set(xscale="log", xlabel="learning rate", title=f"{param.upper()}: best lr moves {shift[param]:+.0f} grid steps")
        ax.legend()
    fig.axes[0].set_ylabel("final validation loss")
    fig.suptitle("learning-rate transfer from width 32 to 128 (2 layers, 64 steps of 16 x 64 tokens, sotu)")
    write_atomic(out / "transfer.png", png_bytes(fig))
    findings = {
        "best_lr": {f"{p}-{w}": best[p, w] for p, w in best},
        "shift_grid_steps": shift,  # grid step: a factor 2 in lr
        "best_lr_parabola": {f"{p}-{w}": fitted[p, w] for p, w in fitted},
        "shift_grid_steps_parabola": fitted_shift,
        "loss": {f"{p}-{w}": dict(zip(t["param.optim.lr"], t["value"])) for (p, w), t in data.items()},
        "transfers_under_mup": abs(shift["mup"]) <= 1,
        "moves_under_sp": abs(shift["sp"]) >= 1,
    }
    write_json(out / "findings.json", findings)
    for key, value in findings["best_lr"].items():
        print(f"best lr {key}: {value:g}")
    print(f"shift in grid steps (x2) from width 32 to 128: SP {shift['sp']:+.0f}, muP {shift['mup']:+.0f}; "
          f"between parabola minima: SP {fitted_shift['sp']:+.2f}, muP {fitted_shift['mup']:+.2f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
