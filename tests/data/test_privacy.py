"""What prepare keeps and how: no raw text unless asked, only the named fields, owner-only files,
encrypted shards that train like clear ones, and a key that is never written anywhere."""

from __future__ import annotations

import json
import shutil
import stat

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from lmlab import crypto
from lmlab.data.card import CARD_JSON, CARD_MD, add_section
from lmlab.data.datamodule import TokenDataModule
from lmlab.data.prepare import compose_prepare_config, run_prepare
from lmlab.data.shards import open_split, read_manifest
from lmlab.errors import ConfigError
from tests.conftest import run_cli
from tests.data.corpus_bits import paragraphs
from tests.train.conftest import FAST

KEY = bytes(range(100, 132))
RAW_EMAIL = "grace.hopper@navy.example.org"


@pytest.fixture(scope="module")
def jsonl(tmp_path_factory):
    path = tmp_path_factory.mktemp("src") / "docs.jsonl"
    docs = paragraphs(30, 60, seed=3)
    docs[0] += f" Write to {RAW_EMAIL} for the files."
    with open(path, "w") as f:
        f.writelines(json.dumps({"text": p, "tag": f"t{i % 3}", "author": "someone"}) + "\n" for i, p in enumerate(docs))
    return path


def prepare(jsonl, root, *extra):
    return run_prepare(compose_prepare_config([f"data_dir={root}", "source=local", f"source.paths=[{jsonl}]",
                                               "source.name=tiny", "tokenizer.vocab_size=300", *extra]))


@pytest.fixture(scope="module")
def clear(jsonl, tmp_path_factory):
    return prepare(jsonl, tmp_path_factory.mktemp("clear"))


@pytest.fixture(scope="module")
def encrypted(jsonl, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LMLAB_TEST_KEY", KEY.hex())
        return prepare(jsonl, tmp_path_factory.mktemp("enc"), "encrypt.key=env:LMLAB_TEST_KEY")


def _all_bytes(path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())


def test_by_default_no_text_is_kept_and_only_the_text_field_goes_on(clear):
    assert not (clear / "stages").exists()
    assert RAW_EMAIL.encode() not in _all_bytes(clear)
    fields = read_manifest(clear)["fields"]
    assert fields == {"text": "text", "id": "row number", "kept": ["text"], "dropped": ["tag", "author"]}
    assert pq.read_schema(clear / "documents.parquet").names == ["id", "split", "tokens"]
    assert "dropped: tag, author" in (clear / CARD_MD).read_text()


def test_fields_are_kept_only_when_listed(jsonl, tmp_path):
    out = prepare(jsonl, tmp_path, "source.keep_fields=[tag]")
    assert read_manifest(out)["fields"]["kept"] == ["text", "tag"] and read_manifest(out)["fields"]["dropped"] == ["author"]
    docs = pq.read_table(out / "documents.parquet").to_pydict()
    assert set(docs["tag"]) == {"t0", "t1", "t2"} and "author" not in docs


@pytest.mark.parametrize("keep,files", [("final", ["4-pii.parquet"]),
                                        ("all", ["1-source.parquet", "2-clean.parquet", "3-dedup.parquet", "4-pii.parquet"])])
def test_stage_snapshots_only_when_asked_and_raw_text_only_with_all(jsonl, tmp_path, keep, files):
    out = prepare(jsonl, tmp_path, f"keep_stages={keep}")
    assert sorted(p.name for p in (out / "stages").iterdir()) == files
    assert (RAW_EMAIL.encode() in _all_bytes(out)) == (keep == "all")
    assert read_manifest(out)["stages_kept"] == keep


def test_owner_only_makes_every_directory_0700_and_every_file_0600(jsonl, tmp_path):
    out = prepare(jsonl, tmp_path, "owner_only=true", "keep_stages=all")
    modes = {p.relative_to(out).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in [out, *out.rglob("*")]}
    assert len(modes) > 10
    assert {p: m for p, m in modes.items() if m != (0o700 if (out / p).is_dir() else 0o600)} == {}


def test_encrypted_shards_hide_the_tokens_and_train_like_clear_ones(clear, encrypted, monkeypatch):
    monkeypatch.setenv("LMLAB_TEST_KEY", KEY.hex())
    manifest = read_manifest(encrypted)
    assert manifest["encryption"] == {"cipher": "AES-256-GCM", "key": "env:LMLAB_TEST_KEY", "key_id": crypto.key_id(KEY)}
    everything = _all_bytes(encrypted)
    assert KEY.hex().encode() not in everything and KEY not in everything
    for split in ("train", "validation", "test"):
        assert [np.asarray(a).tolist() for a in open_split(encrypted, split)] == \
               [np.asarray(a).tolist() for a in open_split(clear, split)]
    for shard in manifest["splits"]["train"]["shards"]:
        blob = (encrypted / shard["file"]).read_bytes()
        assert crypto.is_encrypted(blob) and (clear / shard["file"]).read_bytes()[:64] not in blob
    modules = [TokenDataModule(d, 32, 4, seed=0, val_tokens=256, accumulation=1) for d in (clear, encrypted)]
    for m in modules:
        m.setup()
    assert torch.equal(modules[0].val, modules[1].val)
    batches = [next(iter(m.train_dataloader())) for m in modules]
    assert torch.equal(*batches) and batches[0].max() < 300


def test_encryption_with_stage_snapshots_is_refused(jsonl, tmp_path, monkeypatch):
    monkeypatch.setenv("LMLAB_TEST_KEY", KEY.hex())
    with pytest.raises(ConfigError, match="keep_stages: got 'final' with encrypt.key set"):
        prepare(jsonl, tmp_path, "encrypt.key=env:LMLAB_TEST_KEY", "keep_stages=final")
    assert not (tmp_path / "tiny").exists()


def test_a_missing_key_stops_prepare_in_one_line(jsonl, tmp_path):
    proc = run_cli(["-m", "lmlab.prepare", f"data_dir={tmp_path}", "source=local", f"source.paths=[{jsonl}]",
                    "source.name=tiny", "encrypt.key=env:LMLAB_NO_SUCH_KEY"])
    assert proc.returncode == 2 and "\n" not in proc.stderr.strip() and proc.stderr.strip().endswith(
        "error: encryption key env:LMLAB_NO_SUCH_KEY: environment variable LMLAB_NO_SUCH_KEY is not set; "
        "expected 32 bytes as 64 hex digits or base64")
    assert not (tmp_path / "tiny").exists()


@pytest.mark.slow
@pytest.mark.parametrize("damage,message", [
    ("wrong key", "encryption key env:LMLAB_TEST_KEY: key id {other} is not the key the shards were encrypted with"),
    ("flip", "shard {shard}: tampered or corrupt (authentication failed)"),
])
def test_lmlab_train_refuses_a_wrong_key_or_a_tampered_shard_in_one_line(encrypted, tmp_path, damage, message):
    data = tmp_path / "data"
    shutil.copytree(encrypted, data / "tiny")
    shard = data / "tiny" / "train-00000.bin"
    key = bytes(32) if damage == "wrong key" else KEY
    if damage == "flip":
        blob = bytearray(shard.read_bytes())
        blob[len(blob) // 2] ^= 0x01
        shard.write_bytes(bytes(blob))
    proc = run_cli(["-m", "lmlab.train", f"paths.data_dir={data}", "data.name=tiny", "data.prepare=false",
                    f"paths.runs_dir={tmp_path / 'runs'}", *FAST, "model.seq_len=32"],
                   env={"LMLAB_TEST_KEY": key.hex(), "LMLAB_CACHE_DIR": str(tmp_path / "cache")}, timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    expected = message.format(other=crypto.key_id(key), shard=shard)
    assert len(errors) == 1 and expected in errors[0], proc.stderr[-2000:]
    assert key.hex() not in proc.stderr
    assert not list((tmp_path / "runs").glob("*/*/config.yaml"))


def test_the_card_says_which_personal_data_is_covered_and_takes_extra_sections(clear, tmp_path):
    card_md = (clear / CARD_MD).read_text()
    assert "## Privacy" in card_md and "| PHONE | international numbers" in card_md and "(US, GB, DE, FR, IN) |" in card_md
    assert "Not looked for: person names; street addresses" in card_md
    copy = tmp_path / "tiny"
    shutil.copytree(clear, copy)
    add_section(copy, "bias", "Bias audit", "| group | count |\n|---|---:|\n| a | 3 |", {"a": 3})
    card = json.loads((copy / CARD_JSON).read_text())
    assert card["sections"]["bias"] == {"title": "Bias audit", "markdown": "| group | count |\n|---|---:|\n| a | 3 |",
                                        "data": {"a": 3}}
    assert (copy / CARD_MD).read_text().endswith("## Bias audit\n\n| group | count |\n|---|---:|\n| a | 3 |\n")
