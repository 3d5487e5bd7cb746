"""End to end on the bundled corpus: shards, manifest, splits by document, tokenizer, skip when done."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tokenizers import Tokenizer

from lmlab.data.prepare import prepare_preset
from lmlab.data.shards import open_split, read_manifest

pytestmark = pytest.mark.slow


def test_manifest_counts_match_the_shards(sotu_dir):
    manifest = read_manifest(sotu_dir)
    assert manifest["dtype"] == "uint16" and manifest["vocab_size"] == 4096
    for split in ("train", "validation", "test"):
        arrays = open_split(sotu_dir, split, verify=True)
        tokens = sum(len(a) for a in arrays)
        assert tokens == manifest["splits"][split]["tokens"] > 0
        stream = np.concatenate(arrays)
        # One end-of-text token after every document of the split, and the stream ends with one.
        assert int((stream == manifest["eot_id"]).sum()) == manifest["splits"][split]["documents"]
        assert stream[-1] == manifest["eot_id"]
        assert stream.max() < manifest["vocab_size"]


def test_documents_split_about_5_5_90_and_tokens_decode_to_the_speeches(sotu_dir):
    manifest = read_manifest(sotu_dir)
    docs = {s: manifest["splits"][s]["documents"] for s in ("train", "validation", "test")}
    assert sum(docs.values()) == 249
    assert docs["validation"] == docs["test"] == round(0.05 * 249)
    tok = Tokenizer.from_file(str(sotu_dir / "tokenizer.json"))
    stream = np.concatenate(open_split(sotu_dir, "validation"))
    first_doc = stream[: int(np.argmax(stream == manifest["eot_id"]))]
    text = tok.decode(first_doc.tolist())
    assert len(text.split()) > 500 and "Congress" in text


def test_a_finished_prepare_is_skipped_and_leaves_files_untouched(sotu_dir):
    before = {p.name: p.stat().st_mtime_ns for p in sotu_dir.iterdir()}
    assert prepare_preset("sotu", sotu_dir.parent) == sotu_dir
    assert {p.name: p.stat().st_mtime_ns for p in sotu_dir.iterdir()} == before


def test_data_card_counts_every_stage(sotu_dir):
    card = json.loads((sotu_dir / "data_card.json").read_text())
    stages = [s["stage"] for s in card["stages"]]
    assert stages[0] == "source" and "clean" in stages
    for before, after in zip(card["stages"], card["stages"][1:]):
        assert after["documents_in"] == before["documents_out"]
    assert card["splits"]["train"]["tokens"] == read_manifest(sotu_dir)["splits"]["train"]["tokens"]
    assert (sotu_dir / "data_card.md").read_text().startswith("# Data card: sotu")
