"""Shards are verified by default: sha256 and token ids once per file version, a stamp for later loads,
and a damaged shard stops `lmlab-train` with one line naming it before anything is written."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import numpy as np
import pytest

from lmlab.data import shards
from lmlab.data.shards import ShardWriter, open_split, write_manifest
from lmlab.errors import DataError
from tests.conftest import run_cli
from tests.train.conftest import FAST


def _corpus(path, ids=None, vocab=50):
    writer = ShardWriter(path, "train", "uint16", 10)
    writer.write(np.arange(25) % vocab if ids is None else ids)
    write_manifest(path, {"vocab_size": vocab, "dtype": "uint16", "eot_id": 0, "tokenizer_sha256": "x",
                          "splits": {"train": {"tokens": 25, "documents": 1, "shards": writer.close()}}})


@pytest.fixture
def hashes(monkeypatch):
    """The shards whose full pass ran (the real function, counted)."""
    seen = []
    real = shards._hash_and_max

    def counted(path, dtype):
        seen.append(path.name)
        return real(path, dtype)

    monkeypatch.setattr(shards, "_hash_and_max", counted)
    monkeypatch.setattr(shards, "_verified", {})
    return seen


def test_each_shard_is_hashed_once_then_stamped_until_it_changes(tmp_path, hashes, cache_dir):
    _corpus(tmp_path)
    open_split(tmp_path, "train")
    assert hashes == ["train-00000.bin", "train-00001.bin", "train-00002.bin"]
    open_split(tmp_path, "train")
    shards._verified.clear()  # a new process: the stamps file answers
    open_split(tmp_path, "train")
    assert len(hashes) == 3 and len(json.loads((cache_dir / shards.STAMPS_FILE).read_text())) == 3
    os.utime(tmp_path / "train-00001.bin", ns=(1, 1))  # another version of the file: hashed again
    open_split(tmp_path, "train")
    assert hashes[3:] == ["train-00001.bin"]


def test_a_read_only_data_dir_and_an_unwritable_cache_still_load(tmp_path, monkeypatch):
    _corpus(tmp_path / "data")
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "data").iterdir()}
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("LMLAB_CACHE_DIR", str(tmp_path / "file" / "cache"))  # cannot be created, even as root
    assert sum(len(a) for a in open_split(tmp_path / "data", "train")) == 25
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "data").iterdir()} == before


def test_a_token_id_outside_the_vocabulary_names_the_shard(tmp_path):
    ids = np.arange(25) % 50
    ids[17] = 50
    _corpus(tmp_path, ids)
    with pytest.raises(DataError, match=r"train-00001\.bin: token id 50 out of range, expected ids below the "
                                        r"vocabulary size 50$"):
        open_split(tmp_path, "train")


def _flip(path, at):
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def _out_of_range(path, data_dir):
    """A shard written by another tokenizer: ids past the vocabulary, with a matching checksum."""
    ids = np.fromfile(path, dtype="<u2")
    ids[len(ids) // 2] = 65535
    ids.tofile(path)
    manifest = json.loads((data_dir / "manifest.json").read_text())
    for shard in manifest["splits"]["train"]["shards"]:
        if shard["file"] == path.name:
            shard["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (data_dir / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.slow
@pytest.mark.parametrize("damage,message", [("flip", "corrupt, sha256"), ("range", "token id 65535 out of range")])
def test_lmlab_train_refuses_a_damaged_shard_in_one_line_before_training(data_root, tmp_path, damage, message):
    data = tmp_path / "data"
    shutil.copytree(data_root / "sotu", data / "sotu")
    shard = data / "sotu" / "train-00000.bin"
    if damage == "flip":
        _flip(shard, shard.stat().st_size // 2)
    else:
        _out_of_range(shard, data / "sotu")
    proc = run_cli(["-m", "lmlab.train", f"paths.data_dir={data}", f"paths.runs_dir={tmp_path / 'runs'}", *FAST],
                   env={"LMLAB_CACHE_DIR": str(tmp_path / "cache")}, timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and f"shard {shard}: {message}" in errors[0], proc.stderr[-2000:]
    assert not list((tmp_path / "runs").glob("*/*/config.yaml"))
