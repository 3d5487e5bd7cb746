"""Stage 3: drop duplicate documents across the whole source, keeping the first of each group.

Exact: sha256 of the text lower-cased with whitespace collapsed. Near: MinHash signatures over word
shingles, candidate pairs from locality-sensitive hashing (bands of rows), confirmed when the exact
Jaccard similarity of their shingle sets reaches `threshold`.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Callable, Mapping

import numpy as np

from lmlab.data.parallel import procs_for
from lmlab.data.progress import LoggedMap
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


def lsh_bands(num_perm: int, threshold: float, recall: float = 0.9) -> tuple[int, int]:
    """(bands, rows), bands * rows == num_perm: the most rows per band (fewest false candidates) for
    which a pair at exactly the threshold still becomes a candidate with probability >= recall."""
    pairs = [(num_perm // r, r) for r in range(1, num_perm + 1) if num_perm % r == 0]
    ok = [(b, r) for b, r in pairs if 1 - (1 - threshold**r) ** b >= recall]
    return max(ok, key=lambda br: br[1]) if ok else (num_perm, 1)


def _signature_batch(batch: dict, ngram: int, a: np.ndarray, b: np.ndarray) -> dict:
    return {"_exact": [exact_key(t) for t in batch["text"]],
            "_minhash": [minhash(t, ngram, a, b) for t in batch["text"]]}


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted arrays of distinct shingle hashes."""
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter) if len(a) + len(b) else 1.0


def near_duplicates(signatures: np.ndarray, bands: int, rows: int, drop: np.ndarray,
                    similar: Callable[[int, int], bool]) -> dict[int, int]:
    """Map each near-duplicate document index to the earlier kept document it duplicates.

    LSH proposes candidates (documents that agree on all rows of some band); `similar(i, j)`
    confirms them. Documents already in `drop` (exact duplicates) neither match nor are matched."""
    buckets: list[dict[bytes, list[int]]] = [{} for _ in range(bands)]
    found: dict[int, int] = {}
    for i, sig in enumerate(signatures):
        if drop[i]:
            continue
        keys = [sig[k * rows:(k + 1) * rows].tobytes() for k in range(bands)]
        candidates = sorted({j for k, key in enumerate(keys) for j in buckets[k].get(key, ())})
        match = next((j for j in candidates if similar(i, j)), None)
        if match is not None:
            found[i] = match
            continue
        for k, key in enumerate(keys):
            buckets[k].setdefault(key, []).append(i)
    return found


def check_config(cfg: Mapping) -> None:
    d = cfg.get("dedup") or {}
    threshold = d.get("threshold", 0.8)
    if not isinstance(threshold, (int, float)) or not 0.0 < threshold <= 1.0:
        raise ConfigError(f"clean.dedup.threshold: got {threshold!r}, expected a Jaccard similarity in (0, 1]")
    for key, default in (("num_perm", 128), ("ngram", 5)):
        if not isinstance(d.get(key, default), int) or d.get(key, default) < 1:
            raise ConfigError(f"clean.dedup.{key}: got {d.get(key)!r}, expected a positive integer")


def dedup_stage(ds, cfg: Mapping, num_proc: int):
    """Remove exact and near duplicates; returns (dataset, counters with examples of each)."""
    check_config(cfg)
    d = cfg.get("dedup") or {}
    if not (d.get("exact", True) or d.get("near", True)):
        return ds, {"removed": {}}
    threshold, num_perm, ngram = float(d.get("threshold", 0.8)), int(d.get("num_perm", 128)), int(d.get("ngram", 5))
    a, b = permutations(num_perm, int(d.get("seed", 1)))
    marked = ds.map(LoggedMap(_signature_batch, "dedup signatures"), batched=True, batch_size=32,
                    fn_kwargs={"ngram": ngram, "a": a, "b": b}, num_proc=procs_for(ds, num_proc),
                    desc="dedup signatures")
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

        texts = marked.select_columns(["text"])

        def similar(i: int, j: int) -> bool:  # exact Jaccard of the shingle sets, for candidates only
            a_i, a_j = shingle_hashes(texts[i]["text"], ngram), shingle_hashes(texts[j]["text"], ngram)
            return jaccard(a_i, a_j) >= threshold

        near_of = near_duplicates(signatures, bands, rows, drop, similar)
        drop[list(near_of)] = True
    ids = marked["id"]
    counters = {"removed": {"exact_duplicate": len(exact_of), "near_duplicate": len(near_of)},
                "examples": {name: [f"{ids[i]} duplicates {ids[j]}: {marked[i]['text'][:EXAMPLE_CHARS]}"
                                    for i, j in list(pairs.items())[:EXAMPLES]]
                             for name, pairs in (("exact_duplicate", exact_of), ("near_duplicate", near_of)) if pairs}}
    kept = np.flatnonzero(~drop).tolist()
    return marked.select(kept).remove_columns(["_exact", "_minhash"]), counters
