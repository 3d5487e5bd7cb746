"""A bad search space is one clear line before anything is launched (no run, no study)."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize("overrides,message", [
    (["+hydra.sweeper.params.seed='choice(0, 1'"], "hydra.sweeper.params.seed='choice(0, 1': cannot parse"),
    (["optim.lrr=interval(1e-4, 1e-2)"], "hydra.sweeper.params: unknown parameter 'optim.lrr'"),
    (["optim.lr=tag(log, interval(0, 1e-2))"], "a log interval must start above 0, got low=0"),
    (["model.dropout=interval(0.5, 0.1)"], "an empty interval [0.5, 0.1]; expected low < high"),
    (["hydra.sweeper.params.schedule='choice(cosine, linear)'"], "config group schedule has no option(s) linear"),
    (["trainer.global_batch_size=interval(1.5, 40.5)"], "the search space does not compose"),
])
def test_a_bad_search_is_one_line_and_launches_nothing(tmp_path, overrides, message):
    runs = tmp_path / "runs"
    proc = run_cli(["-m", "lmlab.train", "-m", "hparams_search=tpe", "run.group=bad", *overrides],
                   env={"LMLAB_RUNS_DIR": str(runs), "LMLAB_DATA_DIR": str(tmp_path / "no-data")}, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("lmlab-train: error:")]
    assert len(lines) == 1 and message in lines[0], proc.stderr[-2000:]
    assert not list(runs.rglob("optuna.journal")) and not list(runs.rglob("config.yaml"))


def test_a_report_of_a_directory_without_a_study_is_one_line(tmp_path):
    proc = run_cli(["-m", "lmlab.cli", "tune", "report", str(tmp_path)], timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"lmlab tune report: error: {tmp_path / 'optuna.journal'}: no such file; "
                                   "expected the sweep directory of a search (hydra.sweep.dir)")
