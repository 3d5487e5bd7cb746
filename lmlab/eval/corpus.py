"""Held-out documents of a prepared corpus, as text: the raw material of lmlab's built-in tasks.

The text is decoded from the split's token shards (documents.parquet gives each document's id and
token count in stream order), so a task sees exactly the cleaned, PII-scrubbed text of documents
that no training step saw. The train split is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmlab.errors import ConfigError, DataError

HELD_OUT = ("test", "validation")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]*[A-Z0-9])")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class Document:
    id: str
    text: str


def documents(data_dir: str | Path, split: str, allow_train: bool = False) -> list[Document]:
    """The documents of one split, decoded. Evaluation passes the default allow_train=False, so a
    task can never be built from text the model trained on; fine-tuning reads its training set with True."""
    from lmlab.data.shards import open_split, read_manifest
    from lmlab.data.tokenizer import load_tokenizer

    if split not in HELD_OUT and not (allow_train and split == "train"):
        raise ConfigError(f"task split={split!r}: expected a held-out split, one of {', '.join(HELD_OUT)}")
    data_dir = Path(data_dir)
    manifest = read_manifest(data_dir)
    index_path = data_dir / manifest.get("documents_file", "documents.parquet")
    if not index_path.is_file():
        raise DataError(f"data dir {data_dir}: no {index_path.name}, expected the document index lmlab-prepare writes")
    import pyarrow.parquet as pq

    index = pq.read_table(index_path, columns=["id", "split", "tokens"]).to_pydict()
    ids = [i for i, s in zip(index["id"], index["split"]) if s == split]
    lengths = np.array([n for n, s in zip(index["tokens"], index["split"]) if s == split], dtype=np.int64)
    stream = np.concatenate(open_split(data_dir, split))
    if int(lengths.sum()) != len(stream):
        raise DataError(f"data dir {data_dir}: split {split!r} holds {len(stream)} tokens but {index_path.name} "
                        f"lists {int(lengths.sum())}, expected them to agree")
    tok = load_tokenizer(data_dir / manifest.get("tokenizer_file", "tokenizer.json"))
    ends = np.cumsum(lengths)
    starts = ends - lengths
    # Each document ends with the end-of-text separator, which is not part of its text.
    return [Document(doc_id, tok.decode(stream[s:e - 1].tolist(), skip_special_tokens=False))
            for doc_id, s, e in zip(ids, starts, ends)]


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in _PARAGRAPH_BREAK.split(text) if p.strip()]


def sentences(paragraph: str) -> list[str]:
    """A plain rule (end punctuation, space, a capital or a digit): good enough for speeches."""
    return [s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip()]
