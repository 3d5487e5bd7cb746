from __future__ import annotations

import pytest

# Small enough to train in seconds on a busy 2-core machine, large enough to learn the corpus.
FAST = ["model.size=100k", "model.seq_len=64", "trainer.global_batch_size=16", "trainer.micro_batch_size=8",
        "trainer.val_tokens=8192", "trainer.ckpt_every_steps=20", "trainer.log_every_steps=10",
        "trainer.progress_bar=false", "trainer.threads=1", "logger=csv"]


@pytest.fixture
def train_overrides(data_root, tmp_path):
    """Overrides that point a run at the session's prepared corpus and a fresh runs directory."""
    return [f"paths.data_dir={data_root}", f"paths.runs_dir={tmp_path / 'runs'}", *FAST]
