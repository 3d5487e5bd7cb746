"""Stage 3: drop duplicate documents across the whole source, keeping the first of each group.

Exact: sha256 of the text lower-cased with whitespace collapsed. Near: MinHash signatures over word
shingles, candidate pairs from locality-sensitive hashing (bands of rows), confirmed when the
signatures agree on at least `threshold` of their values (an estimate of the Jaccard similarity).
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Mapping

import numpy as np

from lmlab.data.parallel import procs_for
from lmlab.errors import ConfigError

WORD = re.compile(r"\w+")
EXAMPLE_CHARS = 300
EXAMPLES = 3


def exact_key(text: str) -> str:
    return hashlib.sha256(" ".join(text.lower().split()).encode("utf-8")).hexdigest()


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients of multiply-shift hash functions h(x) = ((a x + b) mod 2^64) >> 32, a odd:
    a universal family like (a x + b) mod p, without the (slow) modulo."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, np.iinfo(np.uint64).max, size=num_perm, dtype=np.uint64, endpoint=True) | np.uint64(1)
    b = rng.integers(0, np.iinfo(np.uint64).max, size=num_perm, dtype=np.uint64, endpoint=True)
    return a, b


def shingle_hashes(text: str, ngram: int) -> np.ndarray:
    """32-bit hashes of the distinct word n-grams of `text` (lower-cased words, punctuation dropped).

    Words are hashed with crc32 rather than hash(), which differs between processes and runs;
    n-grams combine their words' hashes with a polynomial, vectorised."""
    words = WORD.findall(text.lower())
    h = np.fromiter(map(zlib.crc32, map(str.encode, words)), dtype=np.uint64, count=len(words))
    if len(h) < ngram:
        h = np.concatenate([h, np.zeros(ngram - len(h), dtype=np.uint64)])
    grams = np.zeros(len(h) - ngram + 1, dtype=np.uint64)
    for k in range(ngram):
        grams = grams * np.uint64(0x100000001B3) + h[k:len(h) - ngram + 1 + k]  # wraps mod 2^64
    return np.unique((grams ^ (grams >> np.uint64(32))) & np.uint64(0xFFFFFFFF))


def minhash(text: str, ngram: int, a: np.ndarray, b: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """The MinHash signature of `text`: per hash function, the minimum over its shingles."""
    x = shingle_hashes(text, ngram)
    sig = np.full(len(a), np.iinfo(np.uint64).max, dtype=np.uint64)
    for i in range(0, len(x), chunk):
        h = a[:, None] * x[None, i:i + chunk] + b[:, None]  # wraps mod 2^64
        np.minimum(sig, h.min(axis=1), out=sig)  # the minimum of h is the minimum of h >> 32
    return (sig >> np.uint64(32)).astype(np.uint32)


def lsh_bands(num_perm: int, threshold: float) -> tuple[int, int]:
    """(bands, rows) with bands * rows == num_perm whose S-curve midpoint (1/b)^(1/r) is nearest the threshold."""
    pairs = [(b, num_perm // b) for b in range(1, num_perm + 1) if num_perm % b == 0]
    return min(pairs, key=lambda br: abs((1 / br[0]) ** (1 / br[1]) - threshold))


def _signature_batch(batch: dict, ngram: int, a: np.ndarray, b: np.ndarray) -> dict:
    return {"_exact": [exact_key(t) for t in batch["text"]],
            "_minhash": [minhash(t, ngram, a, b) for t in batch["text"]]}


def near_duplicates(signatures: np.ndarray, threshold: float, bands: int, rows: int, drop: np.ndarray) -> dict:
    """Map each near-duplicate document index to the earlier kept document it duplicates.

    Documents already in `drop` (exact duplicates) neither match nor are matched."""
    buckets: list[dict[bytes, list[int]]] = [{} for _ in range(bands)]
    found: dict[int, int] = {}
    for i, sig in enumerate(signatures):
        if drop[i]:
            continue
        keys = [sig[k * rows:(k + 1) * rows].tobytes() for k in range(bands)]
        candidates = {j for k, key in enumerate(keys) for j in buckets[k].get(key, ())}
        match = next((j for j in sorted(candidates) if np.mean(signatures[j] == sig) >= threshold), None)
        if match is not None:
            found[i] = match
            continue
        for k, key in enumerate(keys):
            buckets[k].setdefault(key, []).append(i)
    return found


def dedup_stage(ds, cfg: Mapping, num_proc: int):
    """Remove exact and near duplicates; returns (dataset, counters with examples of each)."""
    d = cfg.get("dedup") or {}
    if not (d.get("exact", True) or d.get("near", True)):
        return ds, {"removed": {}}
    threshold, num_perm, ngram = float(d.get("threshold", 0.8)), int(d.get("num_perm", 128)), int(d.get("ngram", 5))
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"clean.dedup.threshold: got {threshold}, expected a Jaccard similarity in (0, 1]")
    a, b = permutations(num_perm, int(d.get("seed", 1)))
    marked = ds.map(_signature_batch, batched=True, batch_size=32, fn_kwargs={"ngram": ngram, "a": a, "b": b},
                    num_proc=procs_for(ds, num_proc), desc="dedup signatures")
    drop = np.zeros(len(marked), dtype=bool)
    exact_of: dict[int, int] = {}
    if d.get("exact", True):
        first: dict[str, int] = {}
        for i, key in enumerate(marked["_exact"]):
            if key in first:
                exact_of[i] = first[key]
            else:
                first[key] = i
        drop[list(exact_of)] = True
    near_of: dict[int, int] = {}
    if d.get("near", True):
        bands, rows = lsh_bands(num_perm, threshold)
        signatures = np.asarray(marked.with_format("numpy")["_minhash"], dtype=np.uint32)
        near_of = near_duplicates(signatures, threshold, bands, rows, drop)
        drop[list(near_of)] = True
    ids = marked["id"]
    counters = {"removed": {"exact_duplicate": len(exact_of), "near_duplicate": len(near_of)},
                "examples": {name: [f"{ids[i]} duplicates {ids[j]}: {marked[i]['text'][:EXAMPLE_CHARS]}"
                                    for i, j in list(pairs.items())[:EXAMPLES]]
                             for name, pairs in (("exact_duplicate", exact_of), ("near_duplicate", near_of)) if pairs}}
    kept = np.flatnonzero(~drop).tolist()
    return marked.select(kept).remove_columns(["_exact", "_minhash"]), counters
