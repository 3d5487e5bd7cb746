"""A run whose data cannot serve it as asked says so in one warning line: a budget of many passes over
the training split, or a tokenizer vocabulary smaller than the one asked for."""

from __future__ import annotations

import logging

import pytest

from lmlab.data.datamodule import MANY_PASSES, data_warning
from lmlab.data.shards import read_manifest
from tests.conftest import compose


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    """Three speeches with a tokenizer asked for more tokens than three speeches can give."""
    from lmlab.data.prepare import prepare_preset

    return prepare_preset("sotu", tmp_path_factory.mktemp("small"),
                          ["source.max_documents=3", "tokenizer.vocab_size=30000", "shard_tokens=20000"])


def warnings_of(caplog, data_dir, tokens, tmp_path):
    from lmlab.train.run import Run

    cfg = compose([f"paths.data_dir={data_dir.parent}", f"data.name={data_dir.name}", "data.prepare=false",
                   f"paths.runs_dir={tmp_path}", "model.size=14k", "model.seq_len=64", f"budget.tokens={tokens}",
                   "trainer.global_batch_size=8", "trainer.micro_batch_size=8", "trainer.val_tokens=1024"])
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        Run(cfg)  # the data and the plan are known here, before anything trains
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("lmlab")]


def test_many_passes_and_a_small_vocabulary_are_one_warning_line(small_corpus, caplog, tmp_path):
    manifest = read_manifest(small_corpus)
    train = manifest["splits"]["train"]["tokens"]
    assert manifest["vocab_size"] < 30000  # the corpus ran out of merges
    (line,) = warnings_of(caplog, small_corpus, int(train * (MANY_PASSES + 2)), tmp_path)
    assert "passes over its" in line and f"{manifest['vocab_size']:,} tokens, fewer than the 30,000 asked" in line
    assert "\n" not in line


def test_a_budget_within_a_few_passes_and_the_vocabulary_asked_for_say_nothing(data_root, small_corpus, caplog,
                                                                              tmp_path):
    assert warnings_of(caplog, data_root / "sotu", 16384, tmp_path) == []
    manifest = read_manifest(small_corpus)
    passes = data_warning(manifest, int(manifest["splits"]["train"]["tokens"] * MANY_PASSES * 0.9))
    assert "passes" not in passes and "fewer than" in passes  # the vocabulary alone
