"""Tuned-rung checks on a synthetic ladder: loss = frontier(N) + a parabola in log2(lr / lr*(N))."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmlab.errors import ConfigError
from lmlab.tune.rungs import check_rungs as check_runs, lr_scan

SIZES = [1e5, 3e5, 1e6, 3e6, 1e7]


def frontier(n):
    return 1.8 + 20 * n ** -0.34  # E + A N^-alpha: curved in log-log, as real ladders are


def best_lr(n):
    return 3e-3 * (n / 1e6) ** (-1 / 3)


def check_rungs(scans):
    return check_runs(scans, n="n", lr="lr", loss="loss")


def scan(n, centre, penalty=0.0):
    """Five learning rates a factor 2 apart around `centre`."""
    lrs = np.array(lr_scan(centre))
    loss = frontier(n) * (1 + penalty) + 0.02 * np.log2(lrs / best_lr(n)) ** 2
    return pd.DataFrame({"n": n, "lr": lrs, "loss": loss})


def ladder(**special) -> pd.DataFrame:
    return pd.concat([special.get(str(i), scan(n, best_lr(n))) for i, n in enumerate(SIZES)], ignore_index=True)


def test_a_ladder_scanned_around_its_optima_raises_no_flag():
    table = check_rungs(ladder())
    assert table["flag"].tolist() == [""] * 5
    assert table["best_lr"].to_numpy() == pytest.approx([best_lr(n) for n in SIZES])


def test_a_rung_whose_best_lr_is_the_edge_of_its_scan_is_flagged():
    # Rung 2 scanned around 4x too small a value: its best is the highest rate it scanned.
    table = check_rungs(ladder(**{"2": scan(SIZES[2], best_lr(SIZES[2]) / 4)}))
    assert table["edge"].tolist() == ["", "", "highest", "", ""]
    assert "is the highest scanned: widen the scan" in table.loc[2, "flag"]
    assert table["flag"].drop(index=2).tolist() == [""] * 4


def test_a_rung_above_the_frontier_of_the_others_is_flagged():
    table = check_rungs(ladder(**{"3": scan(SIZES[3], best_lr(SIZES[3]), penalty=0.05)}))
    assert table["above_frontier"].tolist() == [False, False, False, True, False]
    assert table.loc[3, "excess"] == pytest.approx(0.05, abs=0.01)
    assert "above the frontier of the other rungs" in table.loc[3, "flag"]


def test_a_diverged_rate_above_the_best_brackets_the_optimum():
    rung = scan(SIZES[1], best_lr(SIZES[1]) / 2)  # best at index 3 of 0..4
    rung.loc[rung.index[-1], "loss"] = np.nan  # the highest rate diverged
    table = check_rungs(ladder(**{"1": rung}))
    assert table.loc[1, "edge"] == "" and table.loc[1, "flag"] == ""


def test_a_study_table_is_read_by_its_column_names_and_a_missing_one_is_one_error():
    runs = ladder().rename(columns={"n": "n_params", "loss": "final_val_loss"})  # as `lmlab runs collect` names them
    assert check_runs(runs)["flag"].tolist() == [""] * 5
    with pytest.raises(ConfigError, match="missing column.*final_val_loss"):
        check_runs(runs.drop(columns="final_val_loss"))


def test_a_scan_is_centred_on_the_transferred_value():
    assert lr_scan(1e-3) == pytest.approx([2.5e-4, 5e-4, 1e-3, 2e-3, 4e-3])
