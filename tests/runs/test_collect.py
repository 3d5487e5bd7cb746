"""`lmlab runs collect`: run directories (written in the documented format) -> runs and curves tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lmlab.cli import main
from lmlab.errors import DataError
from lmlab.runs.collect import collect
from lmlab.runs.record import RunRecord, environment

TRUE = {"E": 1.9, "A": 400.0, "B": 1500.0, "alpha": 0.34, "beta": 0.36}


def law(n, d):
    return TRUE["E"] + TRUE["A"] / n ** TRUE["alpha"] + TRUE["B"] / d ** TRUE["beta"]


def write_run(root, name, *, size, n, tokens, status, lr=3e-3, result=True, val_points=5, torn_tail=False):
    """A run directory written by lmlab's own record writer (RunRecord), as training writes it."""
    run = root / name
    rec = RunRecord(run)
    cfg = {"seed": 0, "model": {"size": size, "seq_len": 128, "norm": "layernorm"},
           "optim": {"lr": lr, "betas": [0.9, 0.95]}, "budget": {"tokens": tokens, "flops": None},
           "trainer": {"global_batch_size": 16}, "run": {"group": "g", "name": None}}
    rec.write_config(cfg)
    rec.write_env()
    done = tokens if status == "completed" else tokens // 2
    rec.set_status(status, None if status in ("completed", "running") else "CUDA out of memory", step=10, tokens=done)
    lines = []
    for k, d in enumerate(np.geomspace(done / 20, done, val_points)):
        lines.append({"step": k * 10 + 5, "tokens": int(d) - 1, "flops_6n": 6.0 * n * d, "flops_exact": 6.6 * n * d,
                      "train_loss": law(n, d) + 0.05, "lr": lr, "grad_norm": 1.0, "tokens_per_s": 1e4,
                      "flops_per_s": 1e12, "mfu": 0.3, "elapsed_s": float(k)})
        lines.append({"step": k * 10 + 5, "tokens": int(d), "flops_6n": 6.0 * n * d, "flops_exact": 6.6 * n * d,
                      "val_loss": law(n, d), "elapsed_s": float(k)})
    for row in lines:
        rec.append_metrics(row)
    if torn_tail:  # a crash in the middle of an append
        with open(rec.metrics_path, "a") as f:
            f.write('{"step": 99, "tok')
    if result:
        rec.write_result(({
            "status": status, "reason": None if status == "completed" else "CUDA out of memory",
            "final_val_loss": law(n, tokens) if status == "completed" else None, "final_train_loss": law(n, tokens),
            "n_params": int(n * 1.2), "n_params_nonembedding": int(n), "tokens": tokens, "steps": 10,
            "flops_6n": 6.0 * n * tokens, "flops_exact": 6.6 * n * tokens, "wall_s": 12.0, "run_id": name,
            "model": size, "n_layer": 2, "d_model": 64, "n_head": 2, "seq_len": 128, "global_batch_size": 16,
            "lr": lr, "seed": 0, "data": "sotu"}))
    return run


@pytest.fixture
def sweep(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "42")  # as the writer records it inside a SLURM job
    root = tmp_path / "runs" / "g"
    write_run(root, "100k-a", size="100k", n=1e5, tokens=2_000_000, status="completed")
    running = write_run(root, "1.3m-b", size="1.3m", n=1.3e6, tokens=4_000_000, status="running", result=False,
                        torn_tail=True)
    RunRecord(running).write_plan({"n_params": 1_500_000, "n_params_nonembedding": 1_300_000,
                                   "planned_tokens": 4_000_000, "planned_steps": 100})
    write_run(root, "3.1m-c", size="3.1m", n=3.1e6, tokens=8_000_000, status="failed")
    return root


def test_runs_table_keeps_every_run_with_its_status(sweep):
    runs, curves = collect([sweep])
    runs = runs.set_index("run_id")
    assert runs["status"].to_dict() == {"100k-a": "completed", "1.3m-b": "running", "3.1m-c": "failed"}
    assert runs.loc["3.1m-c", "reason"] == "CUDA out of memory"
    assert runs.loc["100k-a", "final_val_loss"] == pytest.approx(law(1e5, 2_000_000))
    assert runs.loc["100k-a", "n_params"] == 120000 and runs.loc["100k-a", "n_params_nonembedding"] == 100000
    assert runs.loc["100k-a", "model.size"] == "100k" and runs.loc["100k-a", "optim.lr"] == 3e-3
    assert json.loads(runs.loc["100k-a", "optim.betas"]) == [0.9, 0.95]
    assert runs.loc["100k-a", "git_commit"] == environment()["git_commit"]
    assert str(runs.loc["100k-a", "slurm_job_id"]) == "42"
    # the unfinished run: no result, but where it got to
    assert not runs.loc["1.3m-b", "has_result"] and pd.isna(runs.loc["1.3m-b", "final_val_loss"])
    assert runs.loc["1.3m-b", "last_tokens"] == 2_000_000
    assert runs.loc["1.3m-b", "last_val_loss"] == pytest.approx(law(1.3e6, 2_000_000))


def test_curves_table_is_long_form(sweep):
    _, curves = collect([sweep])
    assert set(curves.columns) >= {"run_id", "kind", "step", "tokens", "flops_6n", "flops_exact", "loss", "n_params"}
    assert len(curves) == 3 * 10   # the torn last line of the running run is dropped
    val = curves[(curves.run_id == "100k-a") & (curves.kind == "val")].sort_values("tokens")
    assert len(val) == 5 and val["loss"].is_monotonic_decreasing
    assert (curves.loc[curves.run_id == "100k-a", "n_params"] == 120000).all()


def test_a_run_given_twice_is_collected_once(sweep):
    runs, _ = collect([sweep, sweep / "100k-a"])
    assert len(runs) == 3


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_cli_writes_runs_and_curves_tables(sweep, tmp_path, capsys, suffix):
    out = tmp_path / f"study{suffix}"
    assert main(["runs", "collect", str(sweep), "-o", str(out)]) == 0
    assert "1 completed, 1 failed, 1 running" in capsys.readouterr().out
    read = pd.read_parquet if suffix == ".parquet" else pd.read_csv
    runs, curves = read(out), read(tmp_path / f"study.curves{suffix}")
    assert sorted(runs["run_id"]) == ["1.3m-b", "100k-a", "3.1m-c"] and len(curves) == 30


def test_a_collected_study_fits(tmp_path, capsys):
    """Completed runs of a ladder collected and fitted by `lmlab fit`; the unfinished one is left out, loudly."""
    root = tmp_path / "runs"
    for n in (1e5, 4e5, 1.6e6, 6.4e6):
        for mult in (5, 20, 80):
            write_run(root, f"{n:.0e}-{mult}", size="x", n=n, tokens=int(n * mult), status="completed")
    write_run(root, "late", size="x", n=1e7, tokens=10**8, status="running", result=False)
    study = tmp_path / "study.parquet"
    assert main(["runs", "collect", str(root), "-o", str(study)]) == 0
    assert main(["fit", str(study), "--n-col", "n_params_nonembedding", "-o", str(tmp_path / "fit.json")]) == 0
    assert "1 run(s) not completed are left out" in capsys.readouterr().out
    doc = json.loads((tmp_path / "fit.json").read_text())
    assert doc["columns"]["N"] == "n_params_nonembedding" and doc["points"]["n_points"] == 12
    assert doc["compute"] == "flops_6n" and doc["data"] == "sotu"
    for key, value in TRUE.items():
        assert doc["params"][key] == pytest.approx(value, rel=0.02)


def _error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"lmlab {argv[0]} {argv[1]}: error: ")
    return err


def test_bad_inputs_are_one_line_and_damage_nothing(sweep, tmp_path, capsys):
    out = tmp_path / "study.parquet"
    assert main(["runs", "collect", str(sweep), "-o", str(out)]) == 0
    before = out.read_bytes()
    assert "does not exist" in _error(capsys, ["runs", "collect", str(tmp_path / "nowhere"), "-o", str(out)])
    (tmp_path / "empty").mkdir()
    assert "no run directories" in _error(capsys, ["runs", "collect", str(tmp_path / "empty"), "-o", str(out)])
    (sweep / "100k-a" / "result.json").write_text('{"status": "compl')
    err = _error(capsys, ["runs", "collect", str(sweep), "-o", str(out)])
    assert "100k-a/result.json: not valid JSON" in err
    good = tmp_path / "good"
    write_run(good, "r", size="s", n=1e5, tokens=10**6, status="completed")
    assert "expected .parquet or .csv" in _error(capsys, ["runs", "collect", str(good), "-o", str(tmp_path / "s.txt")])
    assert not (tmp_path / "s.txt").exists()
    assert out.read_bytes() == before
    with pytest.raises(DataError):
        collect([tmp_path / "empty"])


def test_an_unfinished_run_gets_its_size_and_planned_budget_from_plan_json(sweep):
    runs, _ = collect([sweep])
    running = runs.set_index("run_id").loc["1.3m-b"]
    assert running["status"] == "running" and not running["has_result"]
    assert (running["n_params"], running["n_params_nonembedding"], running["planned_tokens"]) == (1_500_000, 1_300_000, 4_000_000)
