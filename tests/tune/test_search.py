"""Searches through `lmlab-train -m hparams_search=...`: tiny models on the bundled corpus, Hydra's
basic launcher, the study stored next to the sweep."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.slow

# 14k parameters (plus the embeddings), 16,384 tokens: 4 to 32 optimizer steps a trial.
TINY = ["debug=fast", "model.size=14k", "trainer.threads=1", "trainer.progress_bar=false", "trainer.val_milestones=4"]


def search(data_root: Path, runs: Path, *overrides: str):
    return run_cli(["-m", "lmlab.train", "-m", *TINY, *overrides],
                   env={"LMLAB_DATA_DIR": str(data_root), "LMLAB_RUNS_DIR": str(runs)}, timeout=600)


def study_dir(runs: Path, group: str) -> Path:
    return runs / ".hydra" / "search" / group / "study"


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_a_six_trial_tpe_study_and_a_relaunch_that_continues_its_numbering(data_root, tmp_path):
    runs = tmp_path / "runs"
    first = search(data_root, runs, "hparams_search=tpe", "run.group=tpe", "hydra.sweeper.n_trials=6")
    assert first.returncode == 0, first.stderr[-3000:]
    table = pd.read_csv(study_dir(runs, "tpe") / "trials.csv")
    assert table["number"].tolist() == list(range(6))
    assert set(table["state"]) <= {"complete", "pruned"} and (table["state"] == "complete").sum() >= 3
    assert table["param.optim.lr"].nunique() == 6  # six different settings were tried
    # Every trial trained its own run, and the study holds what the run recorded.
    for row in table.to_dict("records"):
        result = read(Path(row["run_dir"]) / "result.json")
        assert result["status"] == {"complete": "completed", "pruned": "pruned"}[row["state"]]
        assert result["lr"] == pytest.approx(row["param.optim.lr"])
        if row["state"] == "complete":
            assert result["final_val_loss"] == pytest.approx(row["value"])
    done = table[table["state"] == "complete"]
    assert table["best_so_far"].dropna().is_monotonic_decreasing
    assert table["best_so_far"].iloc[-1] == pytest.approx(done["value"].min())
    summary = read(study_dir(runs, "tpe") / "summary.json")
    assert summary["best"]["value"] == pytest.approx(done["value"].min())
    assert {"history.png", "slices.png", "importance.png"} <= {p.name for p in study_dir(runs, "tpe").iterdir()}
    stamps = {r: (Path(r) / "result.json").stat().st_mtime_ns for r in table["run_dir"]}

    again = search(data_root, runs, "hparams_search=tpe", "run.group=tpe", "hydra.sweeper.n_trials=7")
    assert again.returncode == 0, again.stderr[-3000:]
    table = pd.read_csv(study_dir(runs, "tpe") / "trials.csv")
    assert table["number"].tolist() == list(range(7))  # the study went on: trial 6
    assert sorted(p.name for p in (runs / ".hydra" / "search" / "tpe").iterdir() if p.name.isdigit()) == \
        [str(i) for i in range(7)]  # Hydra's job directories are numbered by trial
    assert {r: (Path(r) / "result.json").stat().st_mtime_ns for r in stamps} == stamps  # earlier runs untouched

    report = run_cli(["-m", "lmlab.cli", "tune", "report", str(runs / ".hydra" / "search" / "tpe"), "--json"])
    assert report.returncode == 0, report.stderr[-2000:]
    assert json.loads(report.stdout)["trials"] == 7


def test_a_hopeless_trial_is_pruned_recorded_as_pruned_and_the_saved_compute_counted(data_root, tmp_path):
    runs = tmp_path / "runs"
    # A threshold no tiny model reaches: every trial is pruned at its first validation milestone.
    proc = search(data_root, runs, "hparams_search=tpe", "run.group=prune", "hydra.sweeper.n_trials=2",
                  "hydra.sweeper.pruner._target_=optuna.pruners.ThresholdPruner", "+hydra.sweeper.pruner.upper=1.0",
                  "~hydra.sweeper.pruner.n_startup_trials", "~hydra.sweeper.pruner.n_warmup_steps")
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = pd.read_csv(study_dir(runs, "prune") / "trials.csv")
    assert table["state"].tolist() == ["pruned", "pruned"]
    for row in table.itertuples():
        run = Path(row.run_dir)
        status, result = read(run / "status.json"), read(run / "result.json")
        assert status["status"] == result["status"] == "pruned"
        assert "pruned at validation milestone 0" in result["reason"]
        assert result["steps"] < result["planned_steps"]
        assert row.flops_used == pytest.approx(row.flops_planned * result["steps"] / result["planned_steps"])
    summary = read(study_dir(runs, "prune") / "summary.json")
    saved = (table["flops_planned"] - table["flops_used"]).sum()
    assert summary["pruned"] == 2 and summary["flops_saved"] == pytest.approx(saved) and saved > 0
    assert summary["flops_saved_frac"] == pytest.approx(saved / table["flops_planned"].sum())
    assert "pruning saved" in proc.stderr + proc.stdout


def test_a_failed_trial_is_recorded_and_the_search_stops_only_past_the_failure_rate(data_root, tmp_path):
    runs = tmp_path / "runs"
    grid = ["hparams_search=grid", "hydra.sweeper.params=null", "optim.lr=choice(3e-3, 1e9)"]  # 1e9 diverges
    tolerant = search(data_root, runs, *grid, "run.group=tolerant", "hydra.sweeper.max_failure_rate=0.5")
    assert tolerant.returncode == 0, tolerant.stderr[-3000:]
    table = pd.read_csv(study_dir(runs, "tolerant") / "trials.csv").set_index("param.optim.lr")
    assert table.loc[1e9, "state"] == "fail"
    assert "train loss is nan" in table.loc[1e9, "failure"]  # the reason the run recorded
    assert table.loc[3e-3, "state"] == "complete"

    strict = search(data_root, runs, *grid, "run.group=strict", "hydra.sweeper.max_failure_rate=0")
    assert strict.returncode == 2
    line = [x for x in strict.stderr.splitlines() if x.startswith("lmlab-train: error:")][-1]  # after the run's own
    assert "1 of" in line and "max_failure_rate=0" in line
    assert "fail" in set(pd.read_csv(study_dir(runs, "strict") / "trials.csv")["state"])  # reported all the same
