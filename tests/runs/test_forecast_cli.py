"""Forecasts on tiny real runs: shown while training, `lmlab runs forecast` on a finished run, and a
hopeless run stopped on its forecast (stopped_early, its record kept, collect keeping it apart)."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from lmlab.analysis.study import completed_rows
from lmlab.cli import main
from lmlab.io import read_json, read_table
from tests.conftest import run_cli
from tests.train.conftest import FAST

pytestmark = pytest.mark.slow

TINY = [*FAST, "model.size=14k", "budget.tokens=1e5", "trainer.val_milestones=12", "trainer.val_tokens=4096",
        "run.group=g"]


def train(data_root, runs, *extra):
    proc = run_cli(["-m", "lmlab.train", f"paths.data_dir={data_root}", f"paths.runs_dir={runs}", *TINY, *extra])
    assert proc.returncode == 0, proc.stderr[-3000:]
    [run_dir] = (runs / "g").iterdir()
    return run_dir, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def finished(data_root, tmp_path_factory):
    return train(data_root, tmp_path_factory.mktemp("forecast") / "runs")


def test_training_shows_the_forecast_once_meaningful(finished):
    run_dir, output = finished
    result = read_json(run_dir / "result.json")
    shown = [int(m) for m in re.findall(r"step (\d+)  forecast final validation loss", output)]
    assert shown and min(shown) >= 0.25 * result["planned_steps"]  # forecast.after: not before a quarter
    live = result["forecast"]
    assert live["interval"][0] <= live["forecast"] <= live["interval"][1] and live["step"] == max(shown)


def test_forecast_cli_on_a_finished_run(finished, capsys):
    run_dir, _ = finished
    result = read_json(run_dir / "result.json")
    assert main(["runs", "forecast", str(run_dir), "--upto", "0.5", "--json"]) == 0
    half = json.loads(capsys.readouterr().out)
    assert half["actual"] == pytest.approx(result["final_val_loss"])
    assert half["final_step"] == result["planned_steps"] and half["upto_step"] <= 0.5 * result["planned_steps"]
    assert half["interval"][0] <= half["forecast"] <= half["interval"][1]
    assert half["error"] == pytest.approx(half["forecast"] / half["actual"] - 1)
    assert main(["runs", "forecast", str(run_dir), "--json", "--resamples", "20"]) == 0  # the law through its end
    assert abs(json.loads(capsys.readouterr().out)["error"]) < 0.02
    assert main(["runs", "forecast", str(run_dir), "--upto", "0.5", "--resamples", "20"]) == 0
    text = capsys.readouterr().out
    assert f"forecast {half['forecast']:.4f} at step {result['planned_steps']}" in text and "actual" in text


def test_forecast_cli_bad_input_is_one_line(finished, tmp_path, capsys):
    run_dir, _ = finished
    assert main(["runs", "forecast", str(run_dir), "--upto", "0"]) == 2
    assert "'0': expected a fraction of the planned steps in (0, 1]" in capsys.readouterr().err
    assert main(["runs", "forecast", str(tmp_path / "nowhere")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    damaged = tmp_path / "damaged"
    shutil.copytree(run_dir, damaged)
    (damaged / "plan.json").unlink()
    assert main(["runs", "forecast", str(damaged)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no plan.json" in err
    assert main(["runs", "forecast", str(run_dir), "--upto", "0.02"]) == 2  # too few points yet: said, not guessed
    assert "validation point(s) past warm-up in its first 0.02" in capsys.readouterr().err


def test_a_hopeless_run_stops_on_its_forecast_and_keeps_its_record(data_root, tmp_path, capsys):
    runs = tmp_path / "runs"
    run_dir, _ = train(data_root, runs, "forecast.stop_above=1.0", "forecast.after=0.3")
    result = read_json(run_dir / "result.json")
    assert result["status"] == "stopped_early" and "forecast.stop_above=1" in result["reason"]
    assert result["forecast"]["interval"][0] > 1.0 and result["steps"] < result["planned_steps"]
    assert read_json(run_dir / "status.json")["status"] == "stopped_early"
    assert (run_dir / "checkpoints" / "last.ckpt").exists() and (run_dir / "metrics.jsonl").stat().st_size > 0
    assert main(["runs", "collect", str(runs), "-o", str(tmp_path / "study.csv")]) == 0
    table = read_table(tmp_path / "study.csv")
    assert list(table["status"]) == ["stopped_early"]
    kept, left_out = completed_rows(table)
    assert kept.empty and left_out == 1  # fits and the frontier use completed runs only


def test_bad_forecast_setting_is_one_line(data_root, tmp_path):
    proc = run_cli(["-m", "lmlab.train", f"paths.data_dir={data_root}", f"paths.runs_dir={tmp_path / 'runs'}", *TINY,
                    "forecast.after=2"])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith(
        "forecast.after=2.0: expected a fraction of the planned steps in (0, 1]")
    assert not (tmp_path / "runs" / "g").exists() or not any((tmp_path / "runs" / "g").iterdir())
