"""lmlab.io: atomic writes that leave no half file and no temporary, strict JSON, tables."""

from __future__ import annotations

import json
import math
import os

import pandas as pd
import pytest

from lmlab.errors import DataError
from lmlab.io import append_jsonl, read_json, read_jsonl, read_table, write_json, write_table


def test_a_write_that_fails_before_the_rename_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "result.json"
    write_json(target, {"status": "completed"})

    def crash(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="No space left"):
        write_json(target, {"status": "failed"})
    assert json.loads(target.read_text()) == {"status": "completed"}
    assert os.listdir(tmp_path) == ["result.json"]


def test_nan_and_infinity_are_written_as_null_so_every_line_is_json(tmp_path):
    path = tmp_path / "metrics.jsonl"
    append_jsonl(path, {"step": 1, "train_loss": float("nan"), "mfu": float("inf"), "lr": [1.0, -math.inf]})
    line = path.read_text()
    assert "NaN" not in line and "Infinity" not in line
    assert json.loads(line, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}")) == {
        "step": 1, "train_loss": None, "mfu": None, "lr": [1.0, None]}
    assert read_jsonl(path)[0]["train_loss"] is None


def test_a_corrupt_json_file_is_one_line_naming_it(tmp_path):
    path = tmp_path / "status.json"
    path.write_text('{"status": "run')
    with pytest.raises(DataError, match="status.json: not valid JSON") as err:
        read_json(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"PAR1 this is not parquet", "cannot be read"),
])
def test_an_empty_or_corrupt_table_is_one_line(tmp_path, content, message):
    suffix = ".csv" if not content else ".parquet"
    path = tmp_path / f"study{suffix}"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as err:
        read_table(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_tables_round_trip_and_a_bad_suffix_is_refused(tmp_path):
    df = pd.DataFrame({"n_params": [1, 2], "final_val_loss": [3.5, 3.0]})
    for name in ("t.parquet", "t.csv"):
        write_table(df, tmp_path / name)
        pd.testing.assert_frame_equal(read_table(tmp_path / name), df)
    with pytest.raises(DataError, match="expected .parquet or .csv"):
        write_table(df, tmp_path / "t.xlsx")
    assert sorted(os.listdir(tmp_path)) == ["t.csv", "t.parquet"]
