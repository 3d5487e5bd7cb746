"""Shards: writing across shard boundaries; loading refuses truncated, corrupt or missing shards."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from lmlab.data.shards import ShardWriter, dtype_for_vocab, open_split, read_manifest, write_manifest
from lmlab.errors import DataError


def _tiny_corpus(path, tokens_per_shard=10, dtype="uint16"):
    writer = ShardWriter(path, "train", dtype, tokens_per_shard)
    stream = np.arange(37) % 50
    for chunk in np.split(stream, [5, 6, 30]):
        writer.write(chunk)
    shards = writer.close()
    write_manifest(path, {"vocab_size": 50, "dtype": dtype, "eot_id": 0, "tokenizer_sha256": "x",
                          "splits": {"train": {"tokens": 37, "documents": 1, "shards": shards}}})
    return stream, shards


def test_writer_rolls_over_shards_and_loading_returns_the_stream(tmp_path):
    stream, shards = _tiny_corpus(tmp_path)
    assert [s["tokens"] for s in shards] == [10, 10, 10, 7]
    assert not list(tmp_path.glob("*.tmp"))
    arrays = open_split(tmp_path, "train", verify=True)
    assert np.array_equal(np.concatenate(arrays), stream) and arrays[0].dtype == np.uint16


def test_dtype_follows_the_vocabulary():
    assert dtype_for_vocab(65536) == "uint16" and dtype_for_vocab(65537) == "uint32"


def test_truncated_shard_is_an_error_naming_it(tmp_path):
    _tiny_corpus(tmp_path)
    path = tmp_path / "train-00001.bin"
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(DataError, match=r"train-00001\.bin: truncated, 18 bytes, expected 20"):
        open_split(tmp_path, "train")


def test_corrupt_shard_is_found_by_its_checksum(tmp_path):
    _tiny_corpus(tmp_path)
    path = tmp_path / "train-00002.bin"
    data = bytearray(path.read_bytes())
    data[3] ^= 0xFF
    path.write_bytes(bytes(data))
    assert len(open_split(tmp_path, "train", verify=False)) == 4  # same size: only the checksum can tell
    with pytest.raises(DataError, match=r"train-00002\.bin: corrupt, sha256"):
        open_split(tmp_path, "train")


def test_missing_shard_manifest_and_split_are_errors(tmp_path):
    with pytest.raises(DataError, match="no manifest.json"):
        read_manifest(tmp_path)
    _tiny_corpus(tmp_path)
    with pytest.raises(DataError, match="no split 'validation', expected one of train"):
        open_split(tmp_path, "validation")
    (tmp_path / "train-00003.bin").unlink()
    with pytest.raises(DataError, match=r"train-00003\.bin: missing"):
        open_split(tmp_path, "train")


def test_manifest_without_required_keys_or_not_json_is_an_error(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"dtype": "uint16"}))
    with pytest.raises(DataError, match="missing keys"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        read_manifest(tmp_path)


@pytest.mark.slow
def test_a_damaged_copy_of_the_bundled_corpus_is_refused(sotu_dir, tmp_path):
    copy = tmp_path / "sotu"
    shutil.copytree(sotu_dir, copy)
    shard = copy / read_manifest(copy)["splits"]["validation"]["shards"][0]["file"]
    with open(shard, "r+b") as f:
        f.truncate(shard.stat().st_size - 1)
    with pytest.raises(DataError, match=f"{shard.name}: truncated"):
        open_split(copy, "validation")
    assert len(open_split(sotu_dir, "validation", verify=True)) == 1  # the original is intact
