"""The stages of one prepare, run in order into a fresh directory; each returns its counters.

What the directory holds is the least the training needs: token shards (encrypted when `encrypt.key`
names a key), the tokenizer, per-document counts and the fields named in `source.keep_fields`, the
manifest and the data card. Text is kept only when asked (`keep_stages`), and the raw text from before
PII scrubbing only with `keep_stages=all`. `owner_only` makes every file 0600 (its directory is 0700).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from lmlab import crypto
from lmlab.data.card import write_card, write_card_figure
from lmlab.data.encode import write_split_shards
from lmlab.data.pii import coverage, scrub
from lmlab.data.progress import batches_with_progress
from lmlab.data.shards import ShardWriter, dtype_for_vocab, write_manifest
from lmlab.data.sources import load_source
from lmlab.data.splits import TRAIN, assign_splits
from lmlab.data.tokenizer import build_tokenizer, eot_id, save_tokenizer
from lmlab.errors import ConfigError, DataError
from lmlab.io import atomic_path

log = logging.getLogger("lmlab.data")

TOKENIZER_FILE = "tokenizer.json"
DOCUMENTS_FILE = "documents.parquet"
READ_BATCH = 256
FORMAT_VERSION = 1
# Config keys that change what is written; the others (where, how fast, whether to overwrite) do not.
HASHED_KEYS = ("source", "clean", "tokenizer", "splits", "seed", "shard_tokens")
# keep_stages: which text stages are written to stages/ (the text stages before "pii" hold raw text).
KEEP_STAGES = ("none", "final", "all")
OWNER_ONLY_FILE, OWNER_ONLY_DIR = 0o600, 0o700


def text_stages():
    """(name, function) of the stages that turn source text into clean text, in order.

    Each function takes (dataset, its config section, num_proc) and returns (dataset, counters).
    """
    from lmlab.data.cleaning import clean_stage
    from lmlab.data.dedup import dedup_stage
    from lmlab.data.pii import pii_stage

    return [("clean", clean_stage), ("dedup", dedup_stage), ("pii", pii_stage)]


def check_config(cfg: dict) -> None:
    """Every check that needs no data, so a bad config fails before any work or any write."""
    from lmlab.data import dedup, pii, sources, splits, tokenizer

    sources.check_config(cfg["source"])
    tokenizer.check_config(cfg["tokenizer"])
    splits.check_fractions(cfg["splits"])
    dedup.check_config(cfg["clean"])
    pii.check_config(cfg["clean"])
    for key in ("shard_tokens", "encode_batch"):
        if not isinstance(cfg.get(key), int) or cfg[key] < 1:
            raise ConfigError(f"{key}: got {cfg.get(key)!r}, expected a positive integer")
    keep = keep_stages(cfg)
    if shard_key(cfg) is not None and keep != "none":
        raise ConfigError(f"keep_stages: got {keep!r} with encrypt.key set; stage snapshots are text in the clear, "
                          "expected none")


def keep_stages(cfg: dict) -> str:
    keep = cfg.get("keep_stages") or "none"
    if keep not in KEEP_STAGES:
        raise ConfigError(f"keep_stages: got {keep!r}, expected one of {', '.join(KEEP_STAGES)}")
    return keep


def shard_key(cfg: dict) -> bytes | None:
    """The key that encrypts the shards (None: in the clear); a missing key fails before any work."""
    return crypto.load_key((cfg.get("encrypt") or {}).get("key"))


def file_mode(cfg: dict) -> int | None:
    return OWNER_ONLY_FILE if cfg.get("owner_only") else None


def build_corpus(cfg: dict, digest: str, out: Path) -> None:
    import datasets

    if not sys.stderr.isatty():
        datasets.disable_progress_bars()
    cache = out / "hf_cache"
    num_proc = int(cfg.get("num_proc") or os.cpu_count() or 1)
    mode = file_mode(cfg)
    stages = []

    t0 = time.monotonic()
    ds, provenance = load_source(cfg["source"], cache)
    stages.append(_record("source", None, ds, {}, t0))
    _keep(ds, out, 1, "source", cfg, mode)

    for i, (name, fn) in enumerate(text_stages(), start=2):
        t0 = time.monotonic()
        ds, counters = fn(ds, cfg["clean"], num_proc)
        stages.append(_record(name, stages[-1], ds, counters, t0))
        if len(ds) == 0:
            raise DataError(f"source {provenance['description']}: no documents left after stage {name!r} "
                            f"(removed {counters.get('removed')})")
        _keep(ds, out, i, name, cfg, mode)

    ds = ds.add_column("split", assign_splits(ds["id"], cfg["splits"], int(cfg["seed"])))
    tok, tok_info = _tokenizer(cfg["tokenizer"], ds, out, mode)
    key = shard_key(cfg)
    counts = _shards(cfg, ds, tok, tok_info, out, key, mode)
    text_out = stages[-1]
    stages.append({"stage": "shards", "documents_in": text_out["documents_out"], "words_in": text_out["words_out"],
                   "documents_out": sum(c["documents"] for c in counts.values()), "words_out": text_out["words_out"],
                   "tokens_out": sum(c["tokens"] for c in counts.values())})
    shutil.rmtree(cache, ignore_errors=True)

    manifest = {
        "format_version": FORMAT_VERSION, "name": cfg["name"], "config_hash": digest,
        "config": {k: cfg[k] for k in HASHED_KEYS},
        "source": provenance, "vocab_size": tok_info["vocab_size"], "dtype": tok_info["dtype"],
        "eot_id": tok_info["eot_id"], "eot_token": tok_info["eot_token"], "tokenizer_file": TOKENIZER_FILE,
        "tokenizer_sha256": tok_info["sha256"], "splits": counts, "documents_file": DOCUMENTS_FILE,
        "fields": provenance["fields"], "stages_kept": keep_stages(cfg), "owner_only": bool(cfg.get("owner_only")),
        "encryption": _encryption(cfg, key),
    }
    card = {"name": cfg["name"], "config_hash": digest, "source": provenance, "stages": stages,
            "splits": {k: {"documents": v["documents"], "tokens": v["tokens"], "shards": len(v["shards"])}
                       for k, v in counts.items()},
            "tokenizer": tok_info, "clean_config": cfg["clean"], "pii": coverage(cfg["clean"]),
            "fields": provenance["fields"], "encryption": manifest["encryption"], "stages_kept": manifest["stages_kept"]}
    write_card(out, card, mode)
    documents = pq.read_table(out / DOCUMENTS_FILE, columns=["split", "tokens"]).to_pydict()
    write_card_figure(out, card, documents["tokens"], documents["split"], mode)
    write_manifest(out, manifest, mode)


def _encryption(cfg: dict, key: bytes | None) -> dict | None:
    """How the shards are encrypted and where the key is found; never the key."""
    if key is None:
        return None
    return {"cipher": crypto.CIPHER, "key": cfg["encrypt"]["key"], "key_id": crypto.key_id(key)}


def _record(name: str, previous: dict | None, after, counters: dict, t0: float) -> dict:
    """Documents and words in and out of a stage (what came out of the one before), with its own counters."""
    rec = {"stage": name, "documents_out": len(after), "words_out": _words(after)}
    rec["documents_in"] = previous["documents_out"] if previous else rec["documents_out"]
    rec["words_in"] = previous["words_out"] if previous else rec["words_out"]
    rec.update(counters)
    if "examples" in rec:  # the card is meant to be shared: examples never carry personal data
        rec["examples"] = {k: [scrub(text)[0] for text in v] for k, v in rec["examples"].items()}
    log.info("stage %s: %d -> %d documents, %d -> %d words (%.1fs)", name, rec["documents_in"],
             rec["documents_out"], rec["words_in"], rec["words_out"], time.monotonic() - t0)
    return rec


def _words(ds) -> int:
    return sum(len(t.split()) for batch in ds.iter(batch_size=READ_BATCH) for t in batch["text"])


def _keep(ds, out: Path, index: int, name: str, cfg: dict, mode: int | None) -> None:
    """The stage's output as stages/<index>-<name>.parquet, for inspection, when keep_stages asks:
    `final` keeps the text that is tokenized (after PII), `all` also the raw text before it."""
    keep = keep_stages(cfg)
    if keep == "none" or (keep == "final" and name != text_stages()[-1][0]):
        return
    (out / "stages").mkdir(mode=0o777 if mode is None else OWNER_ONLY_DIR, exist_ok=True)
    with atomic_path(out / "stages" / f"{index}-{name}.parquet", mode) as tmp:
        ds.to_parquet(str(tmp))


def _tokenizer(cfg: dict, ds, out: Path, mode: int | None):
    train = ds.filter(lambda b: [s == TRAIN for s in b["split"]], batched=True, desc="train texts")

    def texts():
        for batch in batches_with_progress(train.iter(batch_size=READ_BATCH), "tokenizer", len(train)):
            yield batch["text"]

    t0 = time.monotonic()
    tok = build_tokenizer(cfg, texts(), length=len(train))
    sha = save_tokenizer(tok, out / TOKENIZER_FILE, mode)
    vocab = tok.get_vocab_size(with_added_tokens=True)
    info = {"kind": cfg["kind"], "vocab_size": vocab, "eot_token": cfg["eot_token"],
            "eot_id": eot_id(tok, cfg["eot_token"]), "sha256": sha, "dtype": dtype_for_vocab(vocab)}
    log.info("stage tokenizer: vocabulary %d, sha256 %s (%.1fs)", vocab, sha[:12], time.monotonic() - t0)
    return tok, info


def _write_documents(out: Path, ds, doc_tokens: np.ndarray, keep_fields: list[str], mode: int | None) -> None:
    """documents.parquet: each document's id, split, token count (with its separator) and the fields
    named in source.keep_fields, in stream order."""
    import pyarrow as pa

    table = pa.table({"id": ds["id"], "split": ds["split"], "tokens": doc_tokens.astype(np.int64),
                      **{field: ds[field] for field in keep_fields}})
    with atomic_path(out / DOCUMENTS_FILE, mode) as tmp:
        pq.write_table(table, tmp)


def _shards(cfg: dict, ds, tok, info: dict, out: Path, key: bytes | None, mode: int | None) -> dict:
    t0 = time.monotonic()
    names = [TRAIN, *[k for k, v in cfg["splits"].items() if float(v) > 0]]
    writers = {s: ShardWriter(out, s, info["dtype"], int(cfg["shard_tokens"]), key, mode) for s in names}
    batches = batches_with_progress(ds.select_columns(["text", "split"]).iter(batch_size=int(cfg["encode_batch"])),
                                    "tokenize", len(ds))
    doc_tokens: list = []
    counts = write_split_shards(tok, batches, info["eot_id"], writers, doc_tokens)
    for s, w in writers.items():
        counts[s]["shards"] = w.close()
    _write_documents(out, ds, np.concatenate(doc_tokens), list(cfg["source"].get("keep_fields") or []), mode)
    total = sum(c["tokens"] for c in counts.values())
    log.info("stage shards: %d tokens (%s) in %.1fs", total,
             ", ".join(f"{s} {c['tokens']}" for s, c in counts.items()), time.monotonic() - t0)
    return counts
