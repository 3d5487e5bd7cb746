"""Study tables: columns feed a law's inputs, and missing inputs are derived by the standard relations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmlab.analysis.laws import get_law, kaplan_b_crit, kaplan_s_min
from lmlab.analysis.study import law_data
from lmlab.cli import main
from lmlab.errors import FitError

TABLE = pd.DataFrame({"n_params": [1e8, 2e8, 4e8], "tokens": [2e9, 4e9, 8e9], "steps": [1000, 2000, 4000],
                      "final_val_loss": [3.0, 2.8, 2.6], "acc": [0.3, 0.35, 0.42]})


def test_compute_and_ratio_are_derived_from_n_and_d():
    data = law_data(TABLE, get_law("overtrain"), {"C": "absent"})
    np.testing.assert_allclose(data.X["C"], 6 * TABLE.n_params * TABLE.tokens)
    np.testing.assert_allclose(data.X["M"], TABLE.tokens / TABLE.n_params)
    assert data.sources == {"C": "6 * n_params * tokens", "M": "(tokens) / n_params", "L": "final_val_loss"}


def test_tokens_are_derived_from_compute():
    table = pd.DataFrame({"N": [1e8, 2e8], "C": [1.2e18, 4.8e18], "loss": [3.0, 2.9]})
    data = law_data(table, get_law("chinchilla"), {"N": "N", "C": "C", "loss": "loss"})
    np.testing.assert_allclose(data.X["D"], [2e9, 4e9])


def test_kaplan_s_min_uses_tokens_per_step_and_the_critical_batch():
    data = law_data(TABLE, get_law("kaplan_ns"))
    batch = TABLE.tokens / TABLE.steps
    expected = TABLE.steps / (1 + 2e8 / TABLE.final_val_loss ** (1 / 0.21) / batch)
    np.testing.assert_allclose(data.X["S_min"], expected)
    # at B = B_crit, S_min is half the steps (Kaplan et al. eq. 5.4)
    assert kaplan_s_min(100, kaplan_b_crit(3.0), 3.0) == pytest.approx(50.0)


def test_accuracy_laws_need_their_target_column(tmp_path, capsys):
    with pytest.raises(FitError, match="law 'olmo_sigmoid' fits Acc; expected its column via --y-col"):
        law_data(TABLE, get_law("olmo_sigmoid"))
    data = law_data(TABLE, get_law("olmo_sigmoid"), {"y": "acc"})
    np.testing.assert_allclose(data.X["L"], TABLE.final_val_loss)
    np.testing.assert_allclose(data.y, TABLE.acc)


def test_downstream_error_law_from_the_cli(tmp_path):
    rng = np.random.default_rng(0)
    loss = np.linspace(2.2, 4.0, 30)
    err = 0.9 - 3.0 * np.exp(-0.8 * loss) + 0.002 * rng.standard_normal(30)
    path = tmp_path / "evals.csv"
    pd.DataFrame({"final_val_loss": loss, "err": err}).to_csv(path, index=False)
    out = tmp_path / "fit.json"
    assert main(["fit", str(path), "--law", "downstream", "--y-col", "err", "-o", str(out)]) == 0
    import json
    doc = json.loads(out.read_text())
    assert doc["params"]["gamma"] == pytest.approx(0.8, rel=0.1)
    assert doc["law_form"]["residuals"] == "linear" and doc["columns"] == {"L": "final_val_loss", "Err": "err"}
