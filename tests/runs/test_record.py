"""Run records: atomic writes, config identity, tolerant metrics reading."""

from __future__ import annotations

import json
import os

import pytest

from lmlab.runs.record import RunRecord, config_hash, read_jsonl, write_json_atomic

CFG = {"seed": 0, "model": {"size": "tiny", "seq_len": 64}, "paths": {"runs_dir": "a"},
       "logger": {"name": "csv"}, "run": {"group": "g", "name": None}, "trainer": {"log_every_steps": 10}}


def test_a_write_that_fails_before_the_rename_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "result.json"
    write_json_atomic(target, {"status": "completed"})

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_json_atomic(target, {"status": "failed"})
    assert json.loads(target.read_text()) == {"status": "completed"}
    assert os.listdir(tmp_path) == ["result.json"]


def test_hash_ignores_where_output_goes_but_not_what_is_trained():
    moved = {**CFG, "paths": {"runs_dir": "elsewhere"}, "logger": {"name": "wandb"},
             "trainer": {"log_every_steps": 1}}
    assert config_hash(moved) == config_hash(CFG)
    assert config_hash({**CFG, "seed": 1}) != config_hash(CFG)
    assert config_hash({**CFG, "model": {"size": "tiny", "seq_len": 128}}) != config_hash(CFG)


def test_a_row_cut_short_by_a_crash_is_dropped(tmp_path):
    rec = RunRecord(tmp_path)
    rec.append_metrics({"step": 1, "train_loss": 3.0})
    rec.append_metrics({"step": 2, "train_loss": 2.5})
    with open(rec.metrics_path, "a") as f:
        f.write('{"step": 3, "train_lo')
    assert [r["step"] for r in read_jsonl(rec.metrics_path)] == [1, 2]


def test_truncate_drops_rows_after_the_checkpoint(tmp_path):
    rec = RunRecord(tmp_path)
    for step in range(1, 6):
        rec.append_metrics({"step": step})
    rec.truncate_metrics(after_step=3)
    assert [r["step"] for r in read_jsonl(rec.metrics_path)] == [1, 2, 3]
