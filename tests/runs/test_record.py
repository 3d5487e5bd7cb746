"""Run records: atomic writes, config identity, tolerant metrics reading."""

from __future__ import annotations

from lmlab.io import read_jsonl
from lmlab.runs.record import RunRecord, config_hash

CFG = {"seed": 0, "model": {"size": "tiny", "seq_len": 64}, "paths": {"runs_dir": "a"},
       "logger": {"name": "csv"}, "run": {"group": "g", "name": None}, "trainer": {"log_every_steps": 10}}


def test_hash_ignores_where_output_goes_but_not_what_is_trained():
    moved = {**CFG, "paths": {"runs_dir": "elsewhere"}, "logger": {"name": "wandb"},
             "trainer": {"log_every_steps": 1}}
    assert config_hash(moved) == config_hash(CFG)
    assert config_hash({**CFG, "seed": 1}) != config_hash(CFG)
    assert config_hash({**CFG, "model": {"size": "tiny", "seq_len": 128}}) != config_hash(CFG)
    # run.resume=false retrains the same run in the same directory
    assert config_hash({**CFG, "run": {"group": "g", "name": None, "resume": False}}) == config_hash(CFG)


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
