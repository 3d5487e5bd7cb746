"""Fits users can steer (per-group fits, a shared E, hold-outs outside the selection, the asymmetric
penalty, weights, the Huber delta, approach 2's window), --compare, --json, and what fit.json
records about the units the runs were counted in."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lmlab.analysis.approaches import approach2
from lmlab.cli import main

from .conftest import TRUTH, chinchilla_loss, isoflop_runs

BUDGETS = np.geomspace(1e18, 1e20, 5)


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory):
    """Two data sets whose laws differ in A and alpha but share E."""
    out = tmp_path_factory.mktemp("steer")
    a = isoflop_runs(np.random.default_rng(1), budgets=BUDGETS, per_budget=7).assign(dataset="web")
    b = isoflop_runs(np.random.default_rng(2), budgets=BUDGETS, per_budget=7,
                     p={**TRUTH, "A": 700.0, "alpha": 0.32}).assign(dataset="code")
    b["run_id"] = "code-" + b["run_id"]
    table = pd.concat([a, b], ignore_index=True).assign(vocab_size=4096)
    table.to_csv(out / "runs.csv", index=False)
    return out, table


def _fit(tmp_path, capsys, *argv) -> dict:
    out = tmp_path / f"fit{len(list(tmp_path.glob('fit*.json')))}.json"
    assert main(["fit", *map(str, argv), "--starts", "150", "-o", str(out)]) == 0
    capsys.readouterr()
    return json.loads(out.read_text())


def test_per_group_fits_equal_separate_fits(two_datasets, tmp_path, capsys):
    out, _ = two_datasets
    grouped = _fit(tmp_path, capsys, out / "runs.csv", "--by", "dataset")
    assert grouped["by"] == "dataset" and set(grouped["groups"]) == {"web", "code"}
    for name in ("web", "code"):
        alone = _fit(tmp_path, capsys, out / "runs.csv", "--query", f"dataset == '{name}'")
        for key, value in alone["params"].items():
            assert grouped["groups"][name]["params"][key] == pytest.approx(value, rel=1e-6)
    assert main(["predict", str(tmp_path / "fit0.json"), "--group", "code", "--n", "1e9", "--tokens", "2e10"]) == 0


def test_shared_e_is_one_value_across_groups(two_datasets, tmp_path, capsys):
    out, _ = two_datasets
    doc = _fit(tmp_path, capsys, out / "runs.csv", "--by", "dataset", "--shared-e")
    e = doc["shared"]["E"]
    assert e == pytest.approx(TRUTH["E"], rel=0.03)
    for group in doc["groups"].values():
        assert group["params"]["E"] == pytest.approx(e, rel=1e-9) and "log_E" in group["fit_options"]["pinned"]


def test_holdout_is_chosen_outside_the_query(two_datasets, tmp_path, capsys):
    """Fit the web runs below 1e20 FLOPs; still predict the largest budget (which the query excludes)."""
    out, table = two_datasets
    doc = _fit(tmp_path, capsys, out / "runs.csv", "--query", "dataset == 'web' and flops_6n < 5e19",
               "--holdout", "query:dataset == 'web' and flops_6n > 5e19")
    held = doc["holdout"]["points"]
    biggest = table[(table.dataset == "web") & (table.flops_6n > 5e19)]
    assert {p["label"] for p in held} == set(biggest.run_id) and doc["points"]["n_points"] == 28
    for p in held:
        assert set(p) >= {"predicted", "lo", "hi", "actual"} and p["lo"] < p["predicted"] < p["hi"]


def test_over_penalty_keeps_the_law_below_under_tuned_runs(tmp_path, capsys):
    """Half the runs sit 3% above the frontier (badly tuned): K = 20 follows the good ones."""
    runs = isoflop_runs(np.random.default_rng(3), budgets=BUDGETS, per_budget=7, noise=0.001)
    bad = np.arange(len(runs)) % 2 == 0
    runs.loc[bad, "final_val_loss"] *= 1.03
    runs.to_csv(tmp_path / "runs.csv", index=False)
    errors = []
    for k in ("1", "20"):
        p = _fit(tmp_path, capsys, tmp_path / "runs.csv", "--over-penalty", k)["params"]
        pred = p["E"] + p["A"] / runs.n_params ** p["alpha"] + p["B"] / runs.tokens ** p["beta"]
        errors.append(np.median(np.abs(pred[~bad] / runs.final_val_loss[~bad] - 1)))
    assert errors[1] < 0.002 < errors[0] / 3


def test_zero_weight_drops_a_row_and_least_squares_is_an_option(tmp_path, capsys):
    runs = isoflop_runs(np.random.default_rng(4), budgets=BUDGETS, per_budget=7)
    runs["w"] = 1.0
    outlier = runs.iloc[[3]].assign(final_val_loss=9.0, w=0.0, run_id="outlier")
    pd.concat([runs, outlier]).to_csv(tmp_path / "weighted.csv", index=False)
    runs.to_csv(tmp_path / "clean.csv", index=False)
    weighted = _fit(tmp_path, capsys, tmp_path / "weighted.csv", "--weight-col", "w")
    clean = _fit(tmp_path, capsys, tmp_path / "clean.csv")
    for key, value in clean["params"].items():
        assert weighted["params"][key] == pytest.approx(value, rel=1e-5)
    squares = _fit(tmp_path, capsys, tmp_path / "clean.csv", "--huber-delta", "inf", "--bootstrap", "20")
    assert squares["huber_delta"] is None and "Huber(delta=inf)" in squares["diagnostics"]["objective_form"]
    assert main(["predict", str(tmp_path / "fit2.json"), "--n", "1e9", "--tokens", "2e10"]) == 0


def test_window_fits_each_parabola_near_its_minimum():
    runs = isoflop_runs(np.random.default_rng(5), budgets=BUDGETS, per_budget=11)
    full = approach2(runs.n_params, runs.flops_6n, runs.final_val_loss)
    near = approach2(runs.n_params, runs.flops_6n, runs.final_val_loss, window=2.0)
    assert all(p["n_runs"] == 11 for p in full.details["parabolas"])
    assert all(3 <= p["n_runs"] < 11 for p in near.details["parabolas"]) and near.details["window"] == 2.0


def test_compare_reports_the_spread_between_methods(two_datasets, tmp_path, capsys):
    out, _ = two_datasets
    assert main(["fit", str(out / "runs.csv"), "--query", "dataset == 'web'", "--compare", "--target-flops", "1e22",
                 "--starts", "150", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    result = doc["compare"]
    methods = {r["method"] for r in result["rows"]}
    assert {"approach 3", "variable projection", "approach 2"} <= methods
    assert sum("E pinned" in m for m in methods) >= 2 and result["target_flops"] == 1e22
    rows = {r["method"]: r for r in result["rows"]}
    n_true = (TRUTH["alpha"] * TRUTH["A"] / (TRUTH["beta"] * TRUTH["B"])) ** (1 / (TRUTH["alpha"] + TRUTH["beta"])) \
        * (1e22 / 6) ** (TRUTH["beta"] / (TRUTH["alpha"] + TRUTH["beta"]))
    for method in ("approach 3", "variable projection", "approach 2"):
        assert rows[method]["N_opt"] == pytest.approx(n_true, rel=0.3), method
    spread = result["spread_methods"]
    assert spread["N_opt_max_over_min"] >= 1.0 and spread["loss_range"][0] <= rows["approach 3"]["loss"] <= spread["loss_range"][1]


def test_fit_records_its_units_and_plan_counts_sizes_at_the_fit_vocabulary(two_datasets, tmp_path, capsys):
    from lmlab.models.family import count_params, get_size

    out, _ = two_datasets
    doc = _fit(tmp_path, capsys, out / "runs.csv", "--query", "dataset == 'web'")
    assert doc["compute"] == "flops_6n" and doc["vocab_size"] == 4096 and "data" not in doc
    assert main(["plan", str(tmp_path / "fit0.json"), "--flops", "1e20", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    size = get_size(plan["size"])
    assert plan["vocab_size"] == 4096 and plan["size_n"] == count_params(size.config(4096))["n_params"]
    assert plan["interval"][0] < plan["loss"] < plan["interval"][1] and plan["config"].startswith("# @package")
    assert main(["plan", str(tmp_path / "fit0.json"), "--flops", "1e20", "--vocab-size", "50257", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["vocab_size"] == 50257


def test_predict_json_shape(two_datasets, tmp_path, capsys):
    out, _ = two_datasets
    _fit(tmp_path, capsys, out / "runs.csv", "--query", "dataset == 'web'", "--bootstrap", "20")
    assert main(["predict", str(tmp_path / "fit0.json"), "--n", "3e9", "--tokens", "6e10", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["level"] == 0.95 and result["interval"][0] < result["loss"] < result["interval"][1]
    lo, hi = result["parameter_interval"]
    assert result["interval"][0] <= lo < hi <= result["interval"][1]
    assert result["loss"] == pytest.approx(chinchilla_loss(3e9, 6e10), rel=0.01)
    assert result["extrapolation"] > 0 and result["inputs"] == {"N": 3e9, "D": 6e10}


def test_the_repository_reads_nothing_outside_itself():
    from pathlib import Path

    from lmlab.analysis.reference import chinchilla_path, isoflops_path

    for path in (chinchilla_path(), isoflops_path()):
        assert path.stat().st_size > 10_000 and "license" in (path.parent / "README.md").read_text().lower()
    repo = Path(__file__).resolve().parents[2]
    outside = ("../" + "shared", "shared/" + "data")
    for folder in ("lmlab", "tests", "analysis"):
        for path in (repo / folder).rglob("*"):
            if path.suffix in (".py", ".ipynb", ".yaml", ".md"):
                text = path.read_text(errors="ignore")
                assert not any(needle in text for needle in outside), path
