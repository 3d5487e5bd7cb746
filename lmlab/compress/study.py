"""Compression across a study: the loss increase against size at each compression level, with a
log-linear trend per level (do larger models compress better?). Reads the rows `lmlab compress`
measures (one per run and level); `lmlab compress -o FILE.csv` and a study's report use it.
"""

from __future__ import annotations

from pathlib import Path

METRIC, LABEL = "loss_increase", "validation loss increase (nats)"


def compression_table(rows: list[dict]):
    """The rows as a table, smallest model first."""
    import pandas as pd

    return pd.DataFrame(rows).sort_values(["n_params", "flops_6n"], kind="stable", ignore_index=True)


def compression_figure(df, path: str | Path) -> dict:
    """The loss increase against parameters and compute, one line per level, saved as a PNG at `path`;
    returns level -> scale -> log-linear trend of the loss increase."""
    from lmlab.audit.trend import figure, save_png, trends

    save_png(figure(df, [METRIC], {METRIC: LABEL}, series="level"), path)
    return {level: trends(part, [METRIC]).get(METRIC, {}) for level, part in df.groupby("level", sort=True)}
