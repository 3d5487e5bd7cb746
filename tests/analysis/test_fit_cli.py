"""`lmlab fit`, `lmlab predict` and `lmlab plan` end to end, and their one-line errors on bad input."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from lmlab.analysis.allocation import chinchilla_optimal
from lmlab.cli import main

from ..conftest import compose
from .conftest import TRUTH, chinchilla_loss, cli_error, curves_for, isoflop_runs

CHINCHILLA_COLS = ["--n-col", "Model Size", "--c-col", "Training FLOP", "--loss-col", "loss", "--drop-highest-loss", "5"]


@pytest.fixture(scope="module")
def chinchilla_fit_json(chinchilla_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("fit")
    assert main(["fit", str(chinchilla_csv), "--law", "chinchilla", *CHINCHILLA_COLS, "--bootstrap", "300",
                 "-o", str(out / "fit.json"), "--plot", str(out / "figs")]) == 0
    return out


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A generated runs table (with one failed run) and its curves table."""
    rng = np.random.default_rng(3)
    runs = isoflop_runs(rng)
    curves = curves_for(runs, rng)
    runs["status"] = "completed"
    failed = runs.iloc[[0]].assign(status="failed", final_val_loss=np.nan, run_id="broken")
    path = tmp_path_factory.mktemp("study") / "study.parquet"
    pd.concat([runs, failed]).to_parquet(path)
    curves.to_parquet(path.with_name("study.curves.parquet"))
    return path, runs


def test_fit_json_holds_law_params_intervals_data_and_diagnostics(chinchilla_fit_json):
    doc = json.loads((chinchilla_fit_json / "fit.json").read_text())
    assert doc["law"] == "chinchilla" and set(doc["params"]) == {"E", "A", "B", "alpha", "beta"}
    assert doc["params"]["alpha"] == pytest.approx(0.3473, rel=0.005)
    assert doc["columns"]["N"] == "Model Size" and doc["columns"]["D"] == "Training FLOP / (6 * Model Size)"
    assert doc["points"]["n_points"] == 240 and len(doc["points"]["inputs"]["N"]) == 240
    assert doc["diagnostics"]["converged"] and doc["diagnostics"]["n_starts"] == 4500
    assert abs(doc["diagnostics"]["residuals"]["mean"]) < 0.01
    for key in ("E", "A", "B", "alpha", "beta", "a"):
        lo, hi = doc["intervals"][key]
        assert lo < ({**doc["params"], **doc["derived"]})[key] < hi
    assert len(doc["bootstrap"]["thetas"]) == 300 and doc["rows"]["dropped_highest_loss"] == 5


def test_fit_writes_figures_as_png_and_svg(chinchilla_fit_json):
    figs = chinchilla_fit_json / "figs"
    for name in ("chinchilla_fit", "chinchilla_residuals", "loss_vs_compute", "allocation"):
        assert (figs / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        svg = (figs / f"{name}.svg").read_text()
        assert svg.lstrip().startswith("<?xml") and "</svg>" in svg


def test_predict_prints_the_law_and_its_interval(chinchilla_fit_json, capsys):
    assert main(["predict", str(chinchilla_fit_json / "fit.json"), "--n", "7e10", "--tokens", "1.4e12"]) == 0
    out = capsys.readouterr().out
    value, lo, hi = map(float, re.search(r"= ([\d.]+)\s+95% interval \[([\d.]+), ([\d.]+)\]", out).groups())
    p = json.loads((chinchilla_fit_json / "fit.json").read_text())["params"]
    assert value == pytest.approx(p["E"] + p["A"] / 7e10 ** p["alpha"] + p["B"] / 1.4e12 ** p["beta"], abs=1e-4)
    assert lo < value < hi


def test_plan_gives_the_closed_form_optimum_and_a_launchable_config(chinchilla_fit_json, tmp_path, capsys):
    fit_json = chinchilla_fit_json / "fit.json"
    conf = tmp_path / "experiment" / "planned.yaml"
    assert main(["plan", str(fit_json), "--flops", "1e21", "--nodes", "2", "--devices", "8",
                 "-o", str(conf)]) == 0
    out = capsys.readouterr().out
    p = json.loads(fit_json.read_text())["params"]
    n_star, d_star = chinchilla_optimal(p, 1e21)
    assert float(re.search(r"N_opt = ([\d.e+]+)", out).group(1)) == pytest.approx(n_star, rel=1e-3)
    assert float(re.search(r"D_opt = ([\d.e+]+)", out).group(1)) == pytest.approx(d_star, rel=1e-3)
    assert re.search(r"loss = [\d.]+\s+\[[\d.]+, [\d.]+\]", out)
    text = conf.read_text()
    assert text.startswith("# @package _global_\n")
    cfg = compose([f"hydra.searchpath=[file://{tmp_path}]", "experiment=planned"])
    assert cfg.trainer.precision == "bf16-mixed" and cfg.trainer.nodes == 2 and cfg.trainer.devices == 8
    assert cfg.trainer.global_batch_size % (8 * 2 * cfg.trainer.micro_batch_size) == 0
    assert cfg.optim.lr > 0


def test_a_planned_run_spends_the_planned_compute(chinchilla_fit_json, tmp_path, capsys):
    """The launched config, resolved as training resolves it, spends the budget in lmlab's unit within 1%;
    the vocabulary is the fit's, and the plan reports what training will do."""
    from lmlab.runspec import COMPUTE, resolve_run

    conf = tmp_path / "experiment" / "planned.yaml"
    assert main(["plan", str(chinchilla_fit_json / "fit.json"), "--flops", "3e20", "--vocab-size", "32000",
                 "-o", str(conf), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    spec = resolve_run(compose([f"hydra.searchpath=[file://{tmp_path}]", "experiment=planned"]), vocab_size=32000)
    assert COMPUTE == "flops_6n" and spec.compute == pytest.approx(3e20, rel=0.01) and spec.compute <= 3e20
    assert spec.flops(spec.budget.tokens)[COMPUTE] == spec.compute
    assert (plan["tokens"], plan["steps"], plan["planned_compute"]) == (spec.budget.tokens, spec.budget.steps,
                                                                        spec.compute)
    assert plan["vocab_size"] == 32000 and plan["size_n"] == spec.n_params


def test_plan_by_gpu_hours_equals_plan_by_flops(chinchilla_fit_json, capsys):
    fit_json = str(chinchilla_fit_json / "fit.json")
    main(["plan", fit_json, "--flops", "7.2e20"])
    by_flops = capsys.readouterr().out
    main(["plan", fit_json, "--gpu-hours", "1000", "--flops-per-gpu-s", "2e14"])
    assert capsys.readouterr().out == by_flops


def test_holdout_reports_predicted_vs_actual(study, tmp_path, capsys):
    path, runs = study
    out = tmp_path / "fit.json"
    assert main(["fit", str(path), "--holdout", "max:N", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "1 run(s) not completed are left out" in text and "mean_abs_rel_error" in text
    doc = json.loads(out.read_text())
    held = doc["holdout"]["points"]
    biggest = runs[runs.n_params == runs.n_params.max()]
    assert {p["label"] for p in held} == set(biggest.run_id)
    assert doc["points"]["n_points"] == len(runs) - len(biggest)
    for p in held:
        assert p["rel_error"] == pytest.approx((p["predicted"] - p["actual"]) / p["actual"])
        assert p["predicted"] == pytest.approx(chinchilla_loss(p["N"], p["D"]), rel=0.01)
    assert doc["holdout"]["summary"]["mean_abs_rel_error"] < 0.01


def test_holdout_by_compute(study, tmp_path):
    path, runs = study
    assert main(["fit", str(path), "--holdout", "C>=1e20", "--bootstrap", "50", "-o", str(tmp_path / "f.json")]) == 0
    doc = json.loads((tmp_path / "f.json").read_text())
    assert doc["holdout"]["summary"]["n_heldout"] == int((runs.flops_6n >= 1e20).sum())
    summary = doc["holdout"]["summary"]
    assert summary["share_inside_parameter_interval"] <= summary["share_inside_interval"]
    assert all(p["hi"] - p["lo"] >= p["param_hi"] - p["param_lo"] > 0 for p in doc["holdout"]["points"])
    assert all(p["lo"] < p["predicted"] < p["hi"] for p in doc["holdout"]["points"])


@pytest.mark.parametrize("method", [1, 2])
def test_approaches_1_and_2_from_a_study(study, tmp_path, method):
    path, _ = study
    out = tmp_path / "fit.json"
    assert main(["fit", str(path), "--method", str(method), "--bootstrap", "50", "-o", str(out),
                 "--plot", str(tmp_path / "figs")]) == 0
    doc = json.loads(out.read_text())
    a_true = TRUTH["beta"] / (TRUTH["alpha"] + TRUTH["beta"])
    assert doc["method"] == method and doc["params"]["a"] == pytest.approx(a_true, abs=0.03)
    assert len(doc["intervals"]["a"]) == 2
    for name in (f"allocation_approach{method}", "envelope" if method == 1 else "isoflop"):
        assert (tmp_path / "figs" / f"{name}.png").exists() and (tmp_path / "figs" / f"{name}.svg").exists()


def test_plan_from_an_approach_2_fit_gives_the_allocation(study, tmp_path, capsys):
    path, _ = study
    main(["fit", str(path), "--method", "2", "-o", str(tmp_path / "f.json")])
    capsys.readouterr()
    assert main(["plan", str(tmp_path / "f.json"), "--flops", "1e21"]) == 0
    out = capsys.readouterr().out
    assert "loss: not predicted" in out and "model:" in out


def _error(capsys, argv) -> str:
    return cli_error(capsys, argv)


def test_bad_inputs_are_one_clear_line(study, tmp_path, capsys):
    path, runs = study
    out = tmp_path / "fit.json"
    out.write_text("precious")
    assert "column 'params' for input N is not in the table" in _error(capsys, ["fit", str(path), "--n-col", "params", "-o", str(out)])
    assert "invalid choice: 'chinchila'" in _error(capsys, ["fit", str(path), "--law", "chinchila", "-o", str(out)])
    small = tmp_path / "small.csv"
    runs.head(3).to_csv(small, index=False)
    assert "5 parameters but only 3" in _error(capsys, ["fit", str(small), "-o", str(out)])
    bad = tmp_path / "bad.csv"
    runs.assign(tokens=np.where(np.arange(len(runs)) == 4, -1.0, runs.tokens)).to_csv(bad, index=False)
    assert "column 'tokens' has 1 bad value(s) (first: row 4 = -1.0)" in _error(capsys, ["fit", str(bad), "-o", str(out)])
    nan = tmp_path / "nan.csv"
    runs.assign(n_params=np.where(np.arange(len(runs)) == 2, np.nan, runs.n_params)).to_csv(nan, index=False)
    assert "column 'n_params' has 1 bad value(s)" in _error(capsys, ["fit", str(nan), "-o", str(out)])
    assert "does not exist" in _error(capsys, ["fit", str(tmp_path / "none.csv"), "-o", str(out)])
    assert "holdout rule 'N>>3' not understood" in _error(capsys, ["fit", str(path), "--holdout", "N>>3", "-o", str(out)])
    assert "--gpu-hours needs --flops-per-gpu-s" in _error(capsys, ["plan", str(out), "--gpu-hours", "10"])
    assert "is not valid JSON" in _error(capsys, ["plan", str(out), "--flops", "1e21"])
    assert out.read_text() == "precious"   # nothing already written is damaged


def test_predict_names_the_missing_input(chinchilla_fit_json, capsys):
    err = _error(capsys, ["predict", str(chinchilla_fit_json / "fit.json"), "--n", "1e9"])
    assert "needs --tokens" in err
