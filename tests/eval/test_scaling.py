"""Task accuracy of a held-out size predicted through loss -> task loss -> accuracy, on a study table
whose runs follow a known chain (with noise)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmlab.errors import FitError
from lmlab.eval.scaling import predict_task_accuracy

E, A, B, ALPHA, BETA = 1.8, 40.0, 60.0, 0.34, 0.28
C, S = 0.3, 1.4  # task loss = C + S * loss
SIG = dict(a=0.7, k=-4.0, L0=3.5, b=0.25)  # accuracy = a / (1 + exp(-k (TL - L0))) + b


def truth(n, d):
    loss = E + A / n ** ALPHA + B / d ** BETA
    task_loss = C + S * loss
    return loss, task_loss, SIG["a"] / (1 + np.exp(-SIG["k"] * (task_loss - SIG["L0"]))) + SIG["b"]


def study_table() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = np.repeat([2e6, 5e6, 1.2e7, 3e7, 8e7, 2e8, 5e8], 3)
    d = n * np.tile([10.0, 20.0, 40.0], 7)
    loss, task_loss, acc = truth(n, d)
    return pd.DataFrame({
        "run_id": [f"r{i}" for i in range(len(n))], "status": "completed", "n_params": n, "tokens": d,
        "final_val_loss": loss * np.exp(0.005 * rng.standard_normal(len(n))),
        "eval.era.task_loss": task_loss + 0.01 * rng.standard_normal(len(n)),
        "eval.era.accuracy": acc + 0.01 * rng.standard_normal(len(n)),
    })


def test_the_held_out_sizes_accuracy_is_predicted_within_its_chained_interval():
    table = study_table()
    held = table["n_params"] == table["n_params"].max()
    at = {"N": 5e8, "D": 2e10}
    loss, task_loss, acc = truth(at["N"], at["D"])
    out = predict_task_accuracy(table[~held], "era", at, n_resamples=50)
    assert out["n_runs"] == int((~held).sum()) and out["fits"]["accuracy"]["law"] == "olmo_sigmoid"
    for name, true in (("loss", loss), ("task_loss", task_loss), ("accuracy", acc)):
        lo, hi = out[name]["interval"]
        assert lo <= out[name]["value"] <= hi and lo <= true <= hi, (name, true, out[name])
    assert abs(out["accuracy"]["value"] - acc) < 0.03
    assert out["fits"]["task_loss"]["params"] == pytest.approx({"c": C, "s": S}, abs=0.15)
    # Chained: each interval carries the uncertainty of the links before it, so it is wider than its link's alone.
    for name in ("task_loss", "accuracy"):
        (lo, hi), (link_lo, link_hi) = out[name]["interval"], out[name]["link_interval"]
        assert hi - lo > 1.05 * (link_hi - link_lo), (name, out[name])
    assert out["loss"]["interval"] == pytest.approx(out["loss"]["link_interval"], rel=0.02)  # nothing before it


def test_a_table_without_the_tasks_columns_is_one_error():
    with pytest.raises(FitError, match=r"column 'eval.cloze.task_loss' is not in the table: evaluate the runs on"):
        predict_task_accuracy(study_table(), "cloze", {"N": 1e9, "D": 2e10})
    with pytest.raises(FitError, match="`at` lacks D"):
        predict_task_accuracy(study_table(), "era", {"N": 1e9})
