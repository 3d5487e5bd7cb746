"""Study figures with trends: bias metrics of a collected table, loss increase per compression level."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmlab.audit.trend import bias_figure
from lmlab.compress.study import compression_figure, compression_table


def test_bias_figure_recovers_the_trend_of_a_collected_table_and_skips_a_table_without_audits(tmp_path):
    n = np.array([1e6, 1e7, 1e8, 1e9])
    df = pd.DataFrame({"run_id": list("abcd"), "n_params": n, "flops_6n": 6 * n * 20 * n,
                       "audit.stereotype_share": [0.5, 0.6, np.nan, 0.8], "audit.gap.gender": 0.2 - 0.03 * np.log10(n),
                       "audit.pref.gender.female": 0.1, "final_val_loss": 3.0})
    trend = bias_figure(df, tmp_path / "bias.png", prefix="audit.")
    assert set(trend) == {"audit.stereotype_share", "audit.gap.gender"}
    assert trend["audit.gap.gender"]["n_params"]["slope_per_decade"] == pytest.approx(-0.03)
    assert trend["audit.gap.gender"]["flops_6n"]["slope_per_decade"] == pytest.approx(-0.015)  # C grows as N^2
    assert trend["audit.stereotype_share"]["n_params"]["points"] == 3
    assert (tmp_path / "bias.png").read_bytes()[:4] == b"\x89PNG"
    assert bias_figure(df.drop(columns=["audit.stereotype_share", "audit.gap.gender"]), tmp_path / "none.png",
                       prefix="audit.") == {}
    assert not (tmp_path / "none.png").exists()


def test_compression_figure_fits_one_trend_per_level(tmp_path):
    rows = [{"run_id": f"r{n:g}", "n_params": n, "flops_6n": 120 * n * n, "level": level,
             "loss_increase": base * (n / 1e6) ** -0.5}
            for n in (1e8, 1e6, 1e7) for level, base in (("int8", 0.01), ("prune unstructured 0.5", 0.4))]
    df = compression_table(rows)
    assert list(df["n_params"]) == sorted(df["n_params"])
    trend = compression_figure(df, tmp_path / "compress.png")
    assert set(trend) == {"int8", "prune unstructured 0.5"}
    # larger models lose less: the slope is negative, and steeper where the loss is larger
    assert trend["prune unstructured 0.5"]["n_params"]["slope_per_decade"] < trend["int8"]["n_params"]["slope_per_decade"] < 0
    assert (tmp_path / "compress.png").read_bytes()[:4] == b"\x89PNG"
