"""The whole pipeline on the bundled corpus: a small ladder trains, is collected, fitted and planned,
and the planned experiment config composes into a valid training config."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from lmlab.models.family import get_size
from tests.conftest import run_cli

pytestmark = pytest.mark.slow

SIZES, TOKENS = ["14k", "25k", "55k"], [16384, 65536]


def test_ladder_to_plan(data_root, tmp_path):
    runs = tmp_path / "runs"
    common = [f"paths.data_dir={data_root}", f"paths.runs_dir={runs}", "run.group=ladder", "model.seq_len=64",
              "trainer.global_batch_size=16", "trainer.val_tokens=8192", "trainer.progress_bar=false"]
    sweep = run_cli(["-m", "lmlab.train", "-m", *common, f"model.size={','.join(SIZES)}",
                     f"budget.tokens={','.join(map(str, TOKENS))}"])
    assert sweep.returncode == 0, sweep.stdout[-2000:] + sweep.stderr[-2000:]

    status = run_cli(["-m", "lmlab.cli", "runs", "status", str(runs / "ladder")])
    assert status.returncode == 0 and "6 expected: 6 completed, 0 pruned, 0 stopped_early, 0 running, 0 failed, 0 missing" in status.stdout

    study = tmp_path / "study.parquet"
    collected = run_cli(["-m", "lmlab.cli", "runs", "collect", str(runs / "ladder"), "-o", str(study)])
    assert collected.returncode == 0, collected.stderr
    table = pd.read_parquet(study)
    assert len(table) == 6 and set(table["status"]) == {"completed"}
    assert sorted(table["model.size"].unique()) == sorted(SIZES)
    assert (table.groupby("model.size")["final_val_loss"].min().loc[SIZES].diff().dropna() < 0).all(), \
        "a bigger model trained on the same data ends lower"

    fit_json = tmp_path / "fit.json"
    fitted = run_cli(["-m", "lmlab.cli", "fit", str(study), "--law", "chinchilla", "--bootstrap", "50",
                      "-o", str(fit_json), "--plot", str(tmp_path / "figures")])
    assert fitted.returncode == 0, fitted.stderr
    fit = json.loads(fit_json.read_text())
    p = fit["params"]
    predicted = p["E"] + p["A"] / table["n_params"] ** p["alpha"] + p["B"] / table["tokens"] ** p["beta"]
    assert np.allclose(predicted, table["final_val_loss"], rtol=0.05), "the law describes the points it was fitted to"
    assert list((tmp_path / "figures").glob("*.png"))

    planned = tmp_path / "planned.yaml"
    plan = run_cli(["-m", "lmlab.cli", "plan", str(fit_json), "--flops", "1e15", "--vocab-size", "4096", "-o", str(planned)])
    assert plan.returncode == 0, plan.stderr
    experiment = yaml.safe_load(planned.read_text())
    get_size(experiment["model"]["size"])  # a registered size
    shown = run_cli(["-m", "lmlab.train", *common, "trainer=gpu", *dotted(experiment), "--cfg", "job"])
    assert shown.returncode == 0, shown.stderr
    composed = yaml.safe_load(shown.stdout)
    assert composed["budget"]["flops"] == experiment["budget"]["flops"] == 1e15  # spent in lmlab's unit
    assert composed["model"]["size"] == experiment["model"]["size"]


def dotted(tree: dict, prefix: str = "") -> list[str]:
    """The experiment config's values as command-line overrides (its defaults list aside)."""
    out = []
    for key, value in tree.items():
        if key == "defaults":
            continue
        if isinstance(value, dict):
            out += dotted(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}={json.dumps(value) if isinstance(value, list) else value}")
    return out
