"""audit.every_val: the model bias audit at each validation milestone of a training run."""

from __future__ import annotations

import pytest

from lmlab.audit.curve import audit_columns
from lmlab.io import read_jsonl
from lmlab.runs.collect import collect
from tests.audit import toy
from tests.audit.test_bias import TOY_TEMPLATES, cli_json, write_jsonl
from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def test_audits_at_validation_milestones_end_with_the_audit_of_the_final_checkpoint(trained_toy_run, tmp_path, capsys):
    templates = write_jsonl(tmp_path / "toy.jsonl", TOY_TEMPLATES)
    run_dir = toy.train(trained_toy_run.parents[2] / "data", tmp_path / "runs",
                        "trainer.val_milestones=3", "audit.every_val=true", f"audit.templates=[{templates}]",
                        "audit.bootstrap=50")
    rows = read_jsonl(run_dir / "audit_curve.jsonl")
    val_steps = [r["step"] for r in read_jsonl(run_dir / "metrics.jsonl") if "val_loss" in r]
    assert [r["step"] for r in rows] == val_steps and len(rows) >= 3
    assert rows[-1]["gap.gender"] > 2 * rows[0]["gap.gender"]  # the association is learnt along the way
    final = cli_json(capsys, str(run_dir), "--templates", str(templates), "--dimensions", "gender",
                     "--bootstrap", "50")["model"]
    assert rows[-1]["gap.gender"] == pytest.approx(final["dimensions"]["gender"]["gap"]["value"], abs=1e-5)
    assert rows[-1]["stereotype_share"] == final["stereotype_share"]["value"]
    assert [rows[-1]["stereotype_share_lo"], rows[-1]["stereotype_share_hi"]] == final["stereotype_share"]["interval"]
    columns = audit_columns(run_dir)
    assert columns["audit.gap.gender"] == rows[-1]["gap.gender"] and "audit.step" not in columns
    runs, _ = collect([run_dir])  # the study table carries the final audit
    assert runs.loc[0, "audit.gap.gender"] == rows[-1]["gap.gender"] and "audit.stereotype_share" in runs


def test_a_missing_template_file_stops_training_in_one_line(trained_toy_run, tmp_path):
    proc = run_cli(["-m", "lmlab.train", f"paths.data_dir={trained_toy_run.parents[2] / 'data'}", "data.name=toy",
                    "data.prepare=false", f"paths.runs_dir={tmp_path / 'runs'}", *toy.TOY_RUN,
                    "audit.every_val=true", f"audit.templates=[{tmp_path / 'nope.jsonl'}]"], timeout=300)
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert f"templates {tmp_path / 'nope.jsonl'}: no such file" in errors[0]
    assert not list((tmp_path / "runs").glob("*/*/config.yaml"))
