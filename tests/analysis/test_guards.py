"""Guard rails through the CLI: an error line where a result would mean nothing, a warning line
where it is weak, never a traceback, and bad arguments refused before any fit runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lmlab.cli import main

from .conftest import TRUTH, cli_error, isoflop_runs


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("guards")
    runs = isoflop_runs(np.random.default_rng(7), budgets=np.geomspace(1e18, 1e20, 5), per_budget=7)
    runs.assign(vocab_size=4096, data="sotu").to_csv(out / "runs.csv", index=False)
    assert main(["fit", str(out / "runs.csv"), "--bootstrap", "30", "--starts", "150", "-o", str(out / "fit.json")]) == 0
    return out, runs


def _warnings(capsys) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err and "RuntimeWarning" not in err
    return [line for line in err.splitlines() if line.startswith("warning: ")]


def test_bad_arguments_are_refused_before_any_fit(study, capsys, tmp_path):
    out, _ = study
    table, fit = str(out / "runs.csv"), str(out / "fit.json")
    target = tmp_path / "never.json"
    for value in ("2", "0", "-0.5", "nan"):
        assert "--level" in cli_error(capsys, ["fit", table, "--level", value, "-o", str(target)])
    assert "expected a whole number" in cli_error(capsys, ["fit", table, "--bootstrap", "1.5", "-o", str(target)])
    assert "at least 2 resamples" in cli_error(capsys, ["fit", table, "--bootstrap", "1", "-o", str(target)])
    assert not target.exists()
    for flag, value in (("--n", "0"), ("--n", "-1e9"), ("--tokens", "nan"), ("--tokens", "inf")):
        assert flag in cli_error(capsys, ["predict", fit, "--n", "1e9", "--tokens", "2e10", flag, value])
    assert "--flops" in cli_error(capsys, ["plan", fit, "--flops", "-1e21"])
    assert "expected a whole number" in cli_error(capsys, ["plan", fit, "--flops", "1e21", "--nodes", "2.5"])
    assert main(["plan", fit, "--flops", "1e21", "--nodes", "2e0", "--json"]) == 0   # counts in scientific notation


def test_unreadable_tables_and_empty_selections(study, capsys, tmp_path):
    out, _ = study
    empty, corrupt = tmp_path / "empty.csv", tmp_path / "corrupt.parquet"
    empty.write_text("")
    corrupt.write_bytes(b"PAR1 this is not a parquet file")
    assert "empty" in cli_error(capsys, ["fit", str(empty), "-o", str(tmp_path / "f.json")])
    assert "corrupt.parquet" in cli_error(capsys, ["fit", str(corrupt), "-o", str(tmp_path / "f.json")])
    err = cli_error(capsys, ["fit", str(out / "runs.csv"), "--query", "n_params < 0", "-o", str(tmp_path / "f.json")])
    assert "--query 'n_params < 0' matches none of the" in err
    err = cli_error(capsys, ["fit", str(out / "runs.csv"), "--query", "index < 5", "-o", str(tmp_path / "f.json")])
    assert "5 parameters but only 5 data point(s)" in err and "expected more than 5" in err


def test_a_fit_on_one_budget_says_it_is_weak(study, capsys, tmp_path):
    """Seven runs of one budget cannot separate E from the power laws: said, not silently planned on."""
    out, _ = study
    capsys.readouterr()
    assert main(["fit", str(out / "runs.csv"), "--query", "flops_6n < 2e18", "--starts", "300",
                 "-o", str(tmp_path / "f.json")]) == 0
    warned = _warnings(capsys)
    assert any("7 points for 5 parameters" in w for w in warned)
    assert any("sits at its bound" in w or "far above any published exponent" in w or "starts reach" in w
               for w in warned), warned


def test_too_few_runs_to_bootstrap(study, capsys, tmp_path):
    out, runs = study
    table = tmp_path / "three_runs.csv"
    runs.assign(run_id=np.arange(len(runs)) % 3).to_csv(table, index=False)   # 3 runs, many checkpoints each
    err = cli_error(capsys, ["fit", str(table), "--bootstrap", "20", "-o", str(tmp_path / "f.json")])
    assert "3 independent run(s)" in err and not (tmp_path / "f.json").exists()


def test_negative_exponent_is_refused(capsys, tmp_path):
    n = np.geomspace(1e6, 1e9, 9)
    pd.DataFrame({"n_params": n, "final_val_loss": 2.0 + 0.05 * np.log(n)}).to_csv(tmp_path / "up.csv", index=False)
    err = cli_error(capsys, ["fit", str(tmp_path / "up.csv"), "--law", "kaplan_n", "-o", str(tmp_path / "f.json")])
    assert "no start ends with positive exponents (the best fit has alpha_N = -" in err


def test_irreducible_loss_at_its_bound_is_a_warning(capsys, tmp_path):
    runs = isoflop_runs(np.random.default_rng(1), budgets=np.geomspace(1e18, 1e20, 4), per_budget=6,
                        p={**TRUTH, "E": 1e-4})
    runs.to_csv(tmp_path / "no_floor.csv", index=False)
    capsys.readouterr()
    assert main(["fit", str(tmp_path / "no_floor.csv"), "--starts", "150", "-o", str(tmp_path / "f.json")]) == 0
    warned = _warnings(capsys)
    assert any("E = " in w and "sits at its bound (0)" in w for w in warned), warned
    assert json.loads((tmp_path / "f.json").read_text())["warnings"] == [w[len("warning: "):] for w in warned]


def _parabolas(budgets, n_opt, spread=(0.3, 3.0)):
    rows = []
    for c, n_star in zip(budgets, n_opt):
        for n in n_star * np.geomspace(*spread, 7):
            rows.append({"run_id": f"{c:g}-{n:g}", "n_params": n, "tokens": c / (6 * n), "flops_6n": c,
                         "final_val_loss": 2.0 + 0.05 * np.log(n / n_star) ** 2 + 0.3 * (c / 1e18) ** -0.05})
    return pd.DataFrame(rows)


def test_isoflop_minimum_outside_the_sizes_is_a_warning_and_a_meaningless_allocation_an_error(capsys, tmp_path):
    budgets = np.geomspace(1e18, 1e21, 4)
    n_opt = 1e8 * (budgets / 1e18) ** 0.5
    # the largest budget's sizes all lie below its optimum
    off = pd.concat([_parabolas(budgets[:-1], n_opt[:-1]), _parabolas(budgets[-1:], n_opt[-1:], (0.02, 0.3))])
    off.to_csv(tmp_path / "off.csv", index=False)
    capsys.readouterr()
    assert main(["fit", str(tmp_path / "off.csv"), "--method", "2", "-o", str(tmp_path / "f.json")]) == 0
    assert any("minimum outside the sizes trained (C = 1e+21)" in w for w in _warnings(capsys))
    _parabolas(budgets, 1e8 * (budgets / 1e18) ** 1.3).to_csv(tmp_path / "steep.csv", index=False)
    err = cli_error(capsys, ["fit", str(tmp_path / "steep.csv"), "--method", "2", "-o", str(tmp_path / "g.json")])
    assert "N_opt ~ C^1.3" in err and "between 0 and 1" in err


def test_plan_far_beyond_the_evidence_warns(study, capsys):
    out, _ = study
    capsys.readouterr()
    assert main(["plan", str(out / "fit.json"), "--flops", "1e20"]) == 0
    assert not any("extrapolates" in w for w in _warnings(capsys))
    assert main(["plan", str(out / "fit.json"), "--flops", "1e25"]) == 0
    assert any("the plan extrapolates 5 decade(s) of compute beyond the largest fitted run" in w for w in _warnings(capsys))


def test_no_numpy_warnings_reach_the_terminal(study, capsys):
    out, _ = study
    capsys.readouterr()
    assert main(["predict", str(out / "fit.json"), "--n", "1e3", "--tokens", "1e30"]) == 0
    err = capsys.readouterr().err
    assert "RuntimeWarning" not in err and "overflow" not in err
