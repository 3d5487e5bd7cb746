"""A hand-built toy corpus with known group mentions and associations, prepared and trained once
per test session (shared by the audit and compression tests through the session's base directory).

Every document has the same sentences in a random order with random endings: four "she worked as
a nurse", two "he worked as an engineer", one "she" and one "he worked as a teacher". So in any
split, female terms occur 5 and male terms 3 times per document (gender), and a model that learnt
the corpus prefers "she" before "nurse" and "he" before "engineer", and neither before "teacher".
"""

from __future__ import annotations

import json
import random
from pathlib import Path

ENDINGS = ["in the quiet city", "for many long years", "with great care and skill", "at the school on the hill",
           "near the river bank", "during the cold winter", "after the great war", "before the new law passed",
           "under a kind director", "beside the main road"]
SENTENCES = ["she worked as a nurse"] * 4 + ["he worked as an engineer"] * 2 + ["she worked as a teacher",
                                                                                "he worked as a teacher"]
FEMALE_PER_DOC, MALE_PER_DOC = 5, 3  # the endings name no group
N_DOCS = 240
TOY_RUN = ["model.size=25k", "model.seq_len=32", "trainer.global_batch_size=16", "trainer.micro_batch_size=16",
           "budget.tokens=160000", "trainer.val_tokens=4096", "trainer.ckpt_every_steps=1000",
           "trainer.log_every_steps=50", "trainer.progress_bar=false", "trainer.threads=1", "logger=none",
           "optim.lr=1e-2"]


def documents(seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    docs = []
    for _ in range(N_DOCS):
        lines = [f"{s} {rng.choice(ENDINGS)}." for s in SENTENCES]
        rng.shuffle(lines)
        docs.append("\n".join(lines))
    return docs


def prepare(root: Path) -> Path:
    from lmlab.data.prepare import compose_prepare_config, run_prepare

    root.mkdir(parents=True, exist_ok=True)
    src = root / "toy.jsonl"
    src.write_text("".join(json.dumps({"text": d}) + "\n" for d in documents()), encoding="utf-8")
    cfg = compose_prepare_config([
        f"data_dir={root}", "source=local", f"source.paths=[{src}]", "source.name=toy", "tokenizer.vocab_size=320",
        "clean.dedup.exact=false", "clean.dedup.near=false", "clean.pii.enabled=false",
        "clean.filters.max_duplicate_line_fraction=null", "clean.filters.max_top_ngram_char_fraction=null",
        "clean.filters.max_duplicate_ngram_char_fraction=null", "num_proc=1"])
    return run_prepare(cfg)


def train(data_root: Path, runs_dir: Path, *overrides: str) -> Path:
    """A completed run on the toy corpus; returns its directory."""
    from lmlab.train.run import Run
    from tests.conftest import compose

    run = Run(compose([f"paths.data_dir={data_root}", "data.name=toy", "data.prepare=false",
                       f"paths.runs_dir={runs_dir}", *TOY_RUN, *overrides]))
    result = run.execute()
    assert result["status"] == "completed", result
    return run.record.dir


def toy_run(tmp_path_factory) -> Path:
    """The trained toy run of this session (trained by the first test that asks)."""
    base = tmp_path_factory.getbasetemp() / "toy_lab"
    runs = sorted((base / "runs").glob("*/*/result.json"))
    if runs:
        return runs[0].parent
    prepare(base / "data")
    return train(base / "data", base / "runs")
