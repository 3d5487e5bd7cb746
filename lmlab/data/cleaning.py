"""Stage 2: normalise text (Unicode NFC, control characters, whitespace) and drop documents that
fail quality filters in the style of the Gopher rules (Rae et al. 2021) and C4/FineWeb's line rule.

Each removed document is counted under the first filter it fails, with a few examples kept.
A filter set to null is off.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Mapping

import numpy as np

from lmlab.data.parallel import procs_for
from lmlab.data.progress import LoggedMap

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u2028\u2029\ufeff]")
INLINE_SPACE = re.compile(r"[^\S\n]+")
BLANK_LINES = re.compile(r"\n{3,}")
LINE_END_PUNCT = (".", "!", "?", '"', "'", "\u201d", "\u2019", ":", ";", ")")
SYMBOLS = ("#", "...", "\u2026")
NO_LETTER_WORD = re.compile(r"(?<!\S)(?:[\d_]|[^\w\s])+(?!\S)")  # digits, underscores, punctuation only
EXAMPLES_PER_FILTER = 3
EXAMPLE_CHARS = 300


def normalise(text: str, cfg: Mapping) -> str:
    if cfg.get("nfc", True):
        text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if cfg.get("control_chars", True):
        text = CONTROL.sub("", text)
    if cfg.get("whitespace", True):
        lines = (INLINE_SPACE.sub(" ", line).strip() for line in text.split("\n"))
        text = BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
    return text


def failed_filter(text: str, f: Mapping) -> str | None:
    """The name of the first quality filter `text` fails, or None if it passes them all."""
    words = text.split()
    n = len(words)
    if f.get("min_words") is not None and n < f["min_words"]:
        return "min_words"
    if f.get("max_words") is not None and n > f["max_words"]:
        return "max_words"
    mean_len = sum(map(len, words)) / n if n else 0.0
    if f.get("min_mean_word_length") is not None and mean_len < f["min_mean_word_length"]:
        return "min_mean_word_length"
    if f.get("max_mean_word_length") is not None and mean_len > f["max_mean_word_length"]:
        return "max_mean_word_length"
    if f.get("max_symbol_word_ratio") is not None and n:
        symbols = sum(text.count(s) for s in SYMBOLS)
        if symbols / n > f["max_symbol_word_ratio"]:
            return "max_symbol_word_ratio"
    if f.get("min_alpha_word_fraction") is not None and n:
        if 1 - len(NO_LETTER_WORD.findall(text)) / n < f["min_alpha_word_fraction"]:
            return "min_alpha_word_fraction"
    lines = [line for line in text.split("\n") if line.strip()]
    if f.get("min_lines_end_punct") is not None and lines:
        if sum(line.rstrip().endswith(LINE_END_PUNCT) for line in lines) / len(lines) < f["min_lines_end_punct"]:
            return "min_lines_end_punct"
    if f.get("max_duplicate_line_fraction") is not None and lines:
        if 1 - len(set(lines)) / len(lines) > f["max_duplicate_line_fraction"]:
            return "max_duplicate_line_fraction"
    return _repetition(words, f)


def _repetition(words: list[str], f: Mapping) -> str | None:
    """Gopher's n-gram rules on word hashes, vectorised: the share of characters in the most frequent
    n-gram (top_ngram) and in n-grams that occur more than once (duplicate_ngram)."""
    top = {int(k): v for k, v in (f.get("max_top_ngram_char_fraction") or {}).items() if v is not None}
    dup = {int(k): v for k, v in (f.get("max_duplicate_ngram_char_fraction") or {}).items() if v is not None}
    ids = np.fromiter(map(hash, words), dtype=np.int64, count=len(words))
    lens = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    total = lens.sum()
    for n in sorted(set(top) | set(dup)):
        if len(words) <= n:
            continue
        _, inverse, counts = np.unique(_ngram_hashes(ids, n), return_inverse=True, return_counts=True)
        if n in top:
            best = int(np.argmax(counts))
            start = int(np.argmax(inverse == best))
            if counts[best] > 1 and counts[best] * lens[start:start + n].sum() / total > top[n]:
                return f"max_top_ngram_char_fraction[{n}]"
        if n in dup:
            starts = np.flatnonzero(counts[inverse] > 1)
            depth = np.zeros(len(words) + 1, dtype=np.int64)
            np.add.at(depth, starts, 1)
            np.add.at(depth, starts + n, -1)
            if lens[np.cumsum(depth[:-1]) > 0].sum() / total > dup[n]:
                return f"max_duplicate_ngram_char_fraction[{n}]"
    return None


def _ngram_hashes(ids: np.ndarray, n: int) -> np.ndarray:
    """A polynomial hash of every window of n word hashes (wrapping int64 arithmetic)."""
    out = np.zeros(len(ids) - n + 1, dtype=np.int64)
    with np.errstate(over="ignore"):
        for k in range(n):
            out = out * np.int64(1_000_003) + ids[k:len(ids) - n + 1 + k]
    return out


def _clean_batch(batch: dict, cfg: Mapping) -> dict:
    texts = [normalise(t or "", cfg.get("normalize") or {}) for t in batch["text"]]
    reasons = [failed_filter(t, cfg.get("filters") or {}) or "" for t in texts]
    changed = [a != b for a, b in zip(texts, batch["text"])]
    return {"text": texts, "_reason": reasons, "_changed": changed}


def clean_stage(ds, cfg: Mapping, num_proc: int):
    """Normalise every document and drop those that fail a filter; returns (dataset, counters)."""
    marked = ds.map(LoggedMap(_clean_batch, "clean"), batched=True, batch_size=64, fn_kwargs={"cfg": cfg},
                    num_proc=procs_for(ds, num_proc), desc="clean")
    reasons = marked["_reason"]
    removed = Counter(r for r in reasons if r)
    examples: dict[str, list[str]] = {}
    for i, r in enumerate(reasons):
        if r and len(examples.setdefault(r, [])) < EXAMPLES_PER_FILTER:
            examples[r].append(marked[i]["text"][:EXAMPLE_CHARS])
    kept = [i for i, r in enumerate(reasons) if not r]
    counters = {"normalised": int(sum(marked["_changed"])), "removed": dict(sorted(removed.items())),
                "examples": examples}
    return marked.select(kept).remove_columns(["_reason", "_changed"]), counters
