"""Predictions on record: `lmlab plan` writes its prediction into the experiment config, the run keeps it
in plan.json, and `lmlab predictions` / `lmlab runs collect` score it once the run has completed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import beta

from lmlab.cli import main
from lmlab.runs.predictions import SCORED, UNSCORED, calibration, load_predictions, study_predictions
from lmlab.runs.record import RunRecord
from tests.conftest import compose, run_cli


def write_run(root, name, *, prediction=None, status="completed", loss=3.0):
    """A run directory as training writes it (RunRecord), with or without a prediction in plan.json."""
    rec = RunRecord(root / name)
    rec.write_config({"model": {"size": "14k"}, "prediction": prediction})
    rec.write_plan({"run_id": name, "planned_tokens": 1000, **({"prediction": prediction} if prediction else {})})
    rec.set_status(status)
    if status == "completed":
        rec.write_result({"status": "completed", "run_id": name, "final_val_loss": loss})
    return rec.dir


def predicted(loss, half_width, level):
    return {"loss": loss, "lo": loss - half_width, "hi": loss + half_width, "level": level, "law": "chinchilla",
            "fit": "/somewhere/fit.json", "fit_sha256": "ab" * 32, "study": "study.parquet"}


@pytest.fixture
def records(tmp_path):
    """Ten runs predicted at 90% (actual losses spread so that 7 fall inside), three at 50% (one inside), a
    run without a prediction and a planned run still running."""
    root = tmp_path / "runs"
    rng = np.random.default_rng(0)
    offsets = {0.9: [0.01, -0.02, 0.03, 0.0, -0.04, 0.045, 0.02, 0.2, -0.3, 0.11], 0.5: [0.001, 0.3, -0.2]}
    for level, offs in offsets.items():
        for k, off in enumerate(offs):
            guess = 3.0 + rng.uniform(0, 1)
            write_run(root, f"p{level}-{k}", prediction=predicted(guess, 0.05, level), loss=guess + off)
    write_run(root, "plain", loss=2.5)
    write_run(root, "pending", prediction=predicted(3.0, 0.05, 0.9), status="running")
    return root


def test_each_completed_prediction_is_scored_and_the_rest_listed_unscored(records):
    table = load_predictions([records]).set_index("run_id")
    scored = table[table["state"] == SCORED]
    assert len(scored) == 13
    assert (scored["inside"] == ((scored["lo"] <= scored["actual"]) & (scored["actual"] <= scored["hi"]))).all()
    expected_error = 100 * (scored["predicted"] - scored["actual"]) / scored["actual"]
    assert np.allclose(scored["error_pct"].astype(float), expected_error)
    assert table.loc["plain", "state"] == UNSCORED and table.loc["plain", "why"] == "no prediction"
    assert table.loc["pending", "state"] == UNSCORED and table.loc["pending", "why"] == "run running"


def test_calibration_is_the_fraction_inside_per_level_with_a_clopper_pearson_interval(records):
    calib = calibration(load_predictions([records])).set_index("level")
    table = load_predictions([records])
    for level, group in table[table["state"] == SCORED].groupby("level"):
        n, k = len(group), int(group["inside"].astype(bool).sum())
        row = calib.loc[level]
        assert (row["n"], row["inside"]) == (n, k) and row["fraction"] == pytest.approx(k / n)
        lo = beta.ppf(0.025, k, n - k + 1) if k > 0 else 0.0     # the exact interval from its beta form
        hi = beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
        assert (row["ci_lo"], row["ci_hi"]) == pytest.approx((lo, hi), abs=1e-6)
        assert row["consistent"] == (lo <= level <= hi)
    assert set(calib.index) == {0.9, 0.5}


def test_predictions_cli_prints_the_table_and_writes_the_figure(records, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["predictions", str(records), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "13 of 15 run(s) scored" in text
    assert re.search(r"^plain\s+unscored: no prediction$", text, re.M)
    assert re.search(r"^pending\s+unscored: run running$", text, re.M)
    assert "calibration at 90%: 7 of 10 inside" in text and "calibration at 50%: 1 of 3 inside" in text
    assert (out / "predictions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(pd.read_csv(out / "predictions.csv")) == 15
    assert main(["predictions", str(records), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {c["level"]: c["inside"] for c in doc["calibration"]} == {0.9: 7, 0.5: 1}


def test_the_figure_shows_each_scored_prediction_and_the_coverage_per_level(records):
    from lmlab.analysis.plots import predictions

    table = load_predictions([records])
    ax, cov = predictions(table).axes
    shown = sorted(x for line in ax.lines if line.get_marker() == "o" for x in line.get_xdata())
    assert shown == sorted(table.loc[table["state"] == SCORED, "actual"])
    coverage = sorted(y for line in cov.lines if line.get_marker() == "o" for y in line.get_ydata())
    assert coverage == pytest.approx(sorted(calibration(table)["fraction"]))


def test_no_prediction_at_all_or_no_runs_is_one_error_line(tmp_path, capsys):
    write_run(tmp_path / "runs", "plain")
    for argv, words in ((["predictions", str(tmp_path / "runs")], "carries a prediction"),
                        (["predictions", str(tmp_path / "missing")], "does not exist")):
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("lmlab predictions: error:") and words in err[0]


def test_a_saved_table_reads_back_as_the_runs_it_was_made_from(records, tmp_path, capsys):
    assert main(["predictions", str(records), "-o", str(tmp_path / "report")]) == 0
    from_runs = capsys.readouterr().out
    saved = tmp_path / "report" / "predictions.csv"
    table, again = load_predictions([records]), load_predictions([saved])
    cols = ["run_id", "state", "predicted", "lo", "hi", "level", "actual", "error_pct"]
    pd.testing.assert_frame_equal(again[cols], table[cols], check_dtype=False)
    pd.testing.assert_frame_equal(calibration(again), calibration(table))
    assert len(load_predictions([saved, records])) == 2 * len(table)
    assert main(["predictions", str(saved)]) == 0
    assert capsys.readouterr().out.splitlines() == from_runs.splitlines()[:-3]   # less its "wrote" lines

    table.drop(columns=["lo"]).to_csv(tmp_path / "damaged.csv", index=False)
    assert main(["predictions", str(tmp_path / "damaged.csv")]) == 2
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert "damaged.csv" in err and "lacks column(s) lo;" in err


def test_a_study_s_held_out_runs_are_scored_predictions_at_the_holdout_level(tmp_path):
    from lmlab.errors import DataError
    from lmlab.io import read_json, write_json

    study = Path(__file__).resolve().parents[1] / "study" / "fixture_study"
    doc = read_json(study / "fit.json")
    rows = study_predictions(study).set_index("run_id")
    assert list(rows.index) == [p["label"] for p in doc["holdout"]["points"]]
    for p in doc["holdout"]["points"]:
        row = rows.loc[p["label"]]
        assert (row["predicted"], row["lo"], row["hi"], row["actual"]) == (p["predicted"], p["lo"], p["hi"], p["actual"])
        assert row["inside"] == (p["lo"] <= p["actual"] <= p["hi"]) and row["state"] == SCORED
        assert row["error_pct"] == pytest.approx(100 * p["rel_error"])
        assert row["level"] == doc["holdout"]["summary"]["level"]
    assert calibration(study_predictions(study))["n"].sum() == len(doc["holdout"]["points"])
    write_json(tmp_path / "fit.json", {k: v for k, v in doc.items() if k != "holdout"})
    with pytest.raises(DataError, match="has no held-out points"):
        study_predictions(tmp_path)


def test_the_prediction_never_changes_the_run_id(tmp_path):
    from lmlab.runspec import run_location

    plain = compose(["model.size=14k"])
    with_prediction = compose(["model.size=14k", "prediction.loss=3.1", "prediction.lo=3.0", "prediction.hi=3.2"])
    assert with_prediction.prediction.loss == 3.1 and plain.prediction.loss is None
    assert run_location(plain)[0] == run_location(with_prediction)[0]


@pytest.mark.slow
def test_a_planned_run_is_scored_once_it_completes(data_root, tmp_path, capsys):
    """Fit a small table, plan a tiny budget, train the planned config on the corpus: its plan.json carries
    the prediction and `lmlab predictions` and `lmlab runs collect` score it against its final loss."""
    rows = [{"n_params_nonembedding": n, "tokens": d, "final_val_loss": 1.8 + 30 / n ** 0.35 + 300 / d ** 0.35,
             "vocab_size": 4096} for n in (13944, 24736, 55536, 98624) for d in (2e4, 6e4, 2e5)]
    pd.DataFrame(rows).to_csv(tmp_path / "study.csv", index=False)
    fit = tmp_path / "fit.json"
    assert main(["fit", str(tmp_path / "study.csv"), "--law", "chinchilla", "--n-col", "n_params_nonembedding",
                 "--bootstrap", "20", "-o", str(fit)]) == 0
    planned = tmp_path / "conf" / "experiment" / "planned.yaml"
    assert main(["plan", str(fit), "--flops", "4e9", "--nodes", "1", "--devices", "1", "--micro-batch-size", "8",
                 "--global-batch-size", "8", "--seq-len", "64", "--study", "tiny-ladder", "-o", str(planned)]) == 0
    prediction = yaml.safe_load(planned.read_text())["prediction"]
    import hashlib
    assert prediction["fit_sha256"] == hashlib.sha256(fit.read_bytes()).hexdigest()
    assert prediction["study"] == "tiny-ladder" and prediction["lo"] < prediction["loss"] < prediction["hi"]

    runs = tmp_path / "runs"
    trained = run_cli(["-m", "lmlab.train", "--config-dir", str(tmp_path / "conf"), "experiment=planned", "trainer=cpu",
                       f"paths.data_dir={data_root}", f"paths.runs_dir={runs}", "trainer.threads=1",
                       "trainer.val_tokens=4096", "trainer.val_milestones=2", "trainer.progress_bar=false"])
    assert trained.returncode == 0, trained.stderr[-2000:]
    (run_dir,) = [p.parent for p in runs.rglob("plan.json")]
    assert json.loads((run_dir / "plan.json").read_text())["prediction"] == prediction
    actual = json.loads((run_dir / "result.json").read_text())["final_val_loss"]
    last = trained.stderr.strip().splitlines()[-1]  # lmlab-train ends with its result, not Lightning's
    assert last.startswith(f"lmlab-train: {run_dir}: completed, validation loss {actual:.4f}"), last
    status = run_cli(["-m", "lmlab.cli", "runs", "status", str(run_dir.parent)])
    assert re.search(rf"^{run_dir.name}\s+completed\s+{actual:.4f}\s", status.stdout, re.M), status.stdout

    capsys.readouterr()
    assert main(["predictions", str(runs), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["predictions"]
    assert row["state"] == SCORED and row["actual"] == actual and row["predicted"] == prediction["loss"]
    assert row["inside"] == (prediction["lo"] <= actual <= prediction["hi"])
    assert main(["runs", "collect", str(runs), "-o", str(tmp_path / "collected.parquet")]) == 0
    assert f"scored 1 prediction(s): {int(row['inside'])} inside their intervals" in capsys.readouterr().out
    table = pd.read_parquet(tmp_path / "collected.parquet")
    assert table["prediction.inside"].tolist() == [row["inside"]]
    assert table["prediction.error_pct"].iloc[0] == pytest.approx(100 * (prediction["loss"] - actual) / actual)
