"""Stage 6: tokenize documents in batches (HF `tokenizers` spreads each batch over all cores) and
append them, each followed by the end-of-text id, to the shard writer of their split."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from lmlab.data.shards import ShardWriter


def encode_batch_ids(tok, texts: list[str], eot: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of `texts` as one flat array with `eot` after every document, and the per-document lengths."""
    ids = [e.ids for e in tok.encode_batch_fast(texts, add_special_tokens=False)]
    lengths = np.fromiter((len(i) + 1 for i in ids), dtype=np.int64, count=len(ids))
    flat = np.empty(int(lengths.sum()), dtype=dtype)
    pos = 0
    for doc, n in zip(ids, lengths):
        flat[pos:pos + n - 1] = doc
        flat[pos + n - 1] = eot
        pos += n
    return flat, lengths


def write_split_shards(tok, batches: Iterable[Mapping], eot: int, writers: Mapping[str, ShardWriter],
                       doc_tokens: list | None = None) -> dict:
    """Encode column batches (`text`, `split`) and route each document's ids to its split's writer.

    The next batch is encoded in a background thread while this one is written, so the cores stay
    busy with tokenization (the tokenizer releases the GIL). Returns documents and tokens per split;
    appends each document's token count (with its separator) to `doc_tokens` when given.
    """
    dtype = next(iter(writers.values())).dtype
    counts = {name: {"documents": 0, "tokens": 0} for name in writers}
    doc_tokens = [] if doc_tokens is None else doc_tokens
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for batch in batches:
            job = (pool.submit(encode_batch_ids, tok, list(batch["text"]), eot, dtype), list(batch["split"]))
            if pending is not None:
                doc_tokens.append(_route(*pending, writers, counts))
            pending = job
        if pending is not None:
            doc_tokens.append(_route(*pending, writers, counts))
    return counts


def _route(future, splits: list[str], writers: Mapping[str, ShardWriter], counts: dict) -> np.ndarray:
    flat, lengths = future.result()
    ends = np.cumsum(lengths)
    start = 0
    # Write runs of consecutive documents of the same split in one call.
    for i, split in enumerate(splits):
        if i + 1 == len(splits) or splits[i + 1] != split:
            writers[split].write(flat[start:ends[i]])
            counts[split]["tokens"] += int(ends[i] - start)
            start = int(ends[i])
        counts[split]["documents"] += 1
    return lengths
