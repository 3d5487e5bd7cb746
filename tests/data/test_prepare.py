"""The prepare pipeline as a whole: determinism, disjoint splits, skip/overwrite rules, interruption,
the Hydra command line, and bad input stopping early without damage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer

from lmlab.data.prepare import compose_prepare_config, prepare_preset, run_prepare
from lmlab.data.shards import open_split, read_manifest
from lmlab.errors import ConfigError, DataError
from tests.data.corpus_bits import paragraphs


@pytest.fixture(scope="module")
def jsonl(tmp_path_factory):
    path = tmp_path_factory.mktemp("src") / "docs.jsonl"
    with open(path, "w") as f:
        f.writelines(json.dumps({"text": p, "tag": "x"}) + "\n" for p in paragraphs(30, 60))
    return path


def _local(jsonl, root, *extra, tokenizer=("tokenizer.vocab_size=300",)):
    return compose_prepare_config([f"data_dir={root}", "source=local", f"source.paths=[{jsonl}]",
                                   "source.name=tiny", *tokenizer, *extra])


def _files(path):
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_same_inputs_and_config_give_the_same_directory(tmp_path):
    a = prepare_preset("sotu", tmp_path / "a", ["source.max_documents=40", "shard_tokens=100000"])
    b = prepare_preset("sotu", tmp_path / "b", ["source.max_documents=40", "shard_tokens=100000"])
    fa, fb = _files(a), _files(b)
    assert sorted(fa) == sorted(fb) and len([f for f in fa if f.endswith(".bin")]) > 3
    assert [f for f in fa if fa[f] != fb[f]] == []


def test_a_local_source_prepared_twice_gives_identical_files(jsonl, tmp_path):
    a, b = run_prepare(_local(jsonl, tmp_path / "a")), run_prepare(_local(jsonl, tmp_path / "b"))
    fa, fb = _files(a), _files(b)
    assert sorted(fa) == sorted(fb) and [f for f in fa if fa[f] != fb[f]] == []


def test_every_document_is_in_one_split_and_its_tokens_decode_to_its_text(jsonl, tmp_path):
    out = run_prepare(_local(jsonl, tmp_path, "keep_stages=final"))
    docs = pq.read_table(out / "documents.parquet").to_pylist()
    last_stage = pq.read_table(out / "stages" / "4-pii.parquet").to_pydict()
    assert len({d["id"] for d in docs}) == len(docs) == len(last_stage["id"]) > 20
    texts = dict(zip(last_stage["id"], last_stage["text"]))
    manifest = read_manifest(out)
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    for split in ("train", "validation", "test"):
        stream = np.concatenate(open_split(out, split))
        ends = np.flatnonzero(stream == manifest["eot_id"]) + 1
        pieces = np.split(stream, ends[:-1])
        mine = [d for d in docs if d["split"] == split]
        assert [len(p) for p in pieces] == [d["tokens"] for d in mine]
        for doc, piece in zip(mine, pieces):
            assert tok.decode(piece[:-1].tolist()) == texts[doc["id"]]


def test_a_finished_name_is_not_overwritten_by_another_config(jsonl, tmp_path):
    out = run_prepare(_local(jsonl, tmp_path))
    before = _files(out)
    with pytest.raises(ConfigError, match=r"tiny: already prepared with config .*overwrite=true"):
        run_prepare(_local(jsonl, tmp_path, "tokenizer.vocab_size=320"))
    assert _files(out) == before
    assert run_prepare(_local(jsonl, tmp_path, "tokenizer.vocab_size=320", "overwrite=true")) == out
    assert read_manifest(out)["vocab_size"] == 320 and not (tmp_path / "tiny.partial").exists()


def test_bad_input_stops_early_and_writes_nothing(jsonl, tmp_path):
    with pytest.raises(DataError, match="no documents left after stage 'clean'"):
        run_prepare(_local(jsonl, tmp_path, "clean.filters.min_words=100000"))
    with pytest.raises(ConfigError, match="tokenizer.vocab_size: got 100, expected more than 257"):
        run_prepare(_local(jsonl, tmp_path, "tokenizer.vocab_size=100"))
    with pytest.raises(ConfigError, match="name: got 'a/b'"):
        run_prepare(_local(jsonl, tmp_path, "name=a/b"))
    with pytest.raises(ConfigError, match="data preset: got 'nope', expected one of sotu"):
        prepare_preset("nope", tmp_path)
    assert not (tmp_path / "tiny").exists()


def test_loading_a_tokenizer_file_reuses_it(jsonl, tmp_path):
    first = run_prepare(_local(jsonl, tmp_path / "a"))
    use = ("tokenizer=file", f"tokenizer.path={first}/tokenizer.json")
    again = run_prepare(_local(jsonl, tmp_path / "b", tokenizer=use))
    assert read_manifest(again)["tokenizer_sha256"] == read_manifest(first)["tokenizer_sha256"]
    with pytest.raises(ConfigError, match="eot_token: '<eos>' is not in the tokenizer's vocabulary"):
        run_prepare(_local(jsonl, tmp_path / "c", "tokenizer.eot_token='<eos>'", tokenizer=use))


@pytest.mark.slow
def test_prepare_preset_composes_inside_a_running_hydra_app(sotu_dir):
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from lmlab.data.prepare import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        outer = GlobalHydra.instance().hydra
        assert prepare_preset("sotu", sotu_dir.parent) == sotu_dir
        assert GlobalHydra.instance().hydra is outer


def test_command_line_prepares_and_reports_bad_input_in_one_line(jsonl, tmp_path):
    cmd = [sys.executable, "-m", "lmlab.prepare", f"data_dir={tmp_path}", "source=local",
           f"source.paths=[{jsonl}]", "source.name=cli", "tokenizer.vocab_size=300"]
    ok = subprocess.run(cmd, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().splitlines()[-1] == str(tmp_path / "cli")
    assert "stage shards" in ok.stdout and read_manifest(tmp_path / "cli")["splits"]["test"]["documents"] == 2
    bad = subprocess.run(cmd[:-1] + ["tokenizer.vocab_size=10"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip() == ("lmlab-prepare: error: tokenizer.vocab_size: got 10, expected more than 257 "
                                  "(256 bytes plus the special tokens)")


@pytest.mark.slow
def test_an_interrupted_prepare_leaves_nothing_that_loads(tmp_path):
    cmd = [sys.executable, "-m", "lmlab.prepare", f"data_dir={tmp_path}", "preset=sotu",
           "source.max_documents=120", "shard_tokens=20000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = tmp_path / "sotu.partial"
    deadline = time.monotonic() + 120
    while not list(partial.glob("train-0000[1-9].bin")) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(partial.glob("train-*.bin")), "the prepare finished before it could be interrupted"
    assert not (tmp_path / "sotu").exists()
    with pytest.raises(DataError, match="no manifest.json"):
        open_split(partial, "train")
    out = prepare_preset("sotu", tmp_path, ["source.max_documents=120", "shard_tokens=20000"])
    assert len(open_split(out, "train", verify=True)) > 1 and not partial.exists()


def test_data_card_counts_what_each_stage_removed_and_replaced(tmp_path):
    docs = paragraphs(24, 60, seed=5)
    words = docs[1].split()
    near = " ".join(words[:10] + ["notwithstanding"] + words[11:])
    pii = [docs[2] + " Write to ada.lovelace@example.org today.", docs[3] + " Call (202) 555-0143 now.",
           docs[4] + " Card 4111 1111 1111 1111, again 4111-1111-1111-1111."]
    texts = pii + docs[5:] + [docs[5].upper(), near + " ", "Too short to keep.", "Also short, bob@example.com."]
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in [docs[1]] + texts))
    out = run_prepare(_local(src, tmp_path))
    card = json.loads((out / "data_card.json").read_text())
    stages = {s["stage"]: s for s in card["stages"]}
    assert stages["source"]["documents_out"] == 1 + len(texts)
    assert stages["clean"]["removed"] == {"min_words": 2}
    # Examples in the card are scrubbed too, although the document never reached the PII stage.
    assert stages["clean"]["examples"]["min_words"] == ["Too short to keep.", "Also short, <EMAIL>."]
    assert stages["dedup"]["removed"] == {"exact_duplicate": 1, "near_duplicate": 1}
    assert stages["pii"]["replaced"] == {"SECRET": 0, "EMAIL": 1, "IBAN": 0, "CREDIT_CARD": 2, "US_SSN": 0,
                                         "IPV6": 0, "IPV4": 0, "PHONE": 1}
    assert sum(s["documents"] for s in card["splits"].values()) == stages["pii"]["documents_out"] == len(texts) - 3
    assert stages["shards"]["tokens_out"] == sum(s["tokens"] for s in card["splits"].values())
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    text = "".join(tok.decode(np.concatenate(open_split(out, s)).tolist()) for s in ("train", "validation", "test"))
    assert "<EMAIL>" in text and "ada.lovelace" not in text and "4111" not in text
    assert (out / "data_card.png").read_bytes()[:4] == b"\x89PNG"
    md = (out / "data_card.md").read_text()
    assert "| min_words | 2 |" in md and "| near_duplicate | 1 |" in md and "| CREDIT_CARD | 2 |" in md


def test_concurrent_prepares_of_one_name_build_it_once(jsonl, tmp_path):
    cmd = [sys.executable, "-m", "lmlab.prepare", f"data_dir={tmp_path}", "source=local",
           f"source.paths=[{jsonl}]", "source.name=both", "tokenizer.vocab_size=300"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate()[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert sum("done in" in o for o in outputs) == 1 and sum("skipping" in o for o in outputs) == 1
    assert len(open_split(tmp_path / "both", "train", verify=True)) == 1


def test_an_unreadable_manifest_is_not_taken_for_a_prepared_corpus(jsonl, tmp_path):
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "manifest.json").write_text("{truncated")
    with pytest.raises(DataError, match="manifest.json is unreadable"):
        run_prepare(_local(jsonl, tmp_path))
    assert run_prepare(_local(jsonl, tmp_path, "overwrite=true")) == tmp_path / "tiny"
    assert read_manifest(tmp_path / "tiny")["splits"]["train"]["documents"] == 26
