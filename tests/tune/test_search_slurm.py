"""A TPE study whose trials are SLURM jobs (submitit launcher) on the local cluster, two in flight."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.slurm.conftest import lab, slurm_cluster  # noqa: F401  (fixtures: the cluster, a runs directory)

pytestmark = pytest.mark.slurm


def test_a_tpe_study_of_slurm_jobs_completes_with_each_trial_its_own_job(lab):  # noqa: F811
    proc = lab.sweep("hparams_search=tpe", "run.group=tpe-slurm", "model.size=14k", "hydra.sweeper.n_trials=6",
                     "hydra.sweeper.n_jobs=2", "hydra.sweeper.pruner=null", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = pd.read_csv(lab.runs_dir / ".hydra" / "search" / "tpe-slurm" / "study" / "trials.csv")
    assert table["number"].tolist() == list(range(6)) and set(table["state"]) == {"complete"}
    jobs = set()
    for row in table.to_dict("records"):
        run = Path(row["run_dir"])
        result = json.loads((run / "result.json").read_text())
        assert result["status"] == "completed" and result["final_val_loss"] == pytest.approx(row["value"])
        jobs.add(json.loads((run / "env.json").read_text())["slurm"]["job_id"])
    assert len(jobs) == 6  # one SLURM job per trial
