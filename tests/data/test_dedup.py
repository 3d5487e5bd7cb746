"""Deduplication: exact copies and near-copies with small edits go, distinct paragraphs stay."""

from __future__ import annotations

import random

import datasets

from lmlab.data.dedup import dedup_stage, jaccard, lsh_bands, minhash, permutations, shingle_hashes
from tests.data.corpus_bits import paragraphs

CFG = {"dedup": {"exact": True, "near": True, "threshold": 0.8, "ngram": 5, "num_perm": 128, "seed": 1}}


def small_edit(text: str, rng: random.Random) -> str:
    """Two word-level edits (a substitution and a deletion) plus case and spacing changes."""
    words = text.split()
    i, j = rng.sample(range(len(words)), 2)
    words[i] = "notwithstanding"
    del words[j]
    return "  ".join(words).upper() if rng.random() < 0.3 else " ".join(words)


def _run(texts):
    ds = datasets.Dataset.from_dict({"id": [f"d{i}" for i in range(len(texts))], "text": texts})
    out, counters = dedup_stage(ds, CFG, num_proc=1)
    return out["id"], counters


def test_near_duplicates_with_small_edits_are_found_and_distinct_paragraphs_kept():
    rng = random.Random(0)
    originals = paragraphs(60, min_words=150)
    edited = [small_edit(p, rng) for p in originals]
    kept, counters = _run(originals + edited)
    assert kept == [f"d{i}" for i in range(60)]  # every original kept, the first of each pair
    assert counters["removed"] == {"exact_duplicate": 0, "near_duplicate": 60}
    assert counters["examples"]["near_duplicate"][0].startswith("d60 duplicates d0")


def test_exact_duplicates_ignore_case_and_spacing_and_keep_the_first():
    texts = paragraphs(5, min_words=60, seed=1)
    kept, counters = _run([texts[0], texts[1], "  " + texts[0].upper() + "\n", texts[2], texts[1]])
    assert kept == ["d0", "d1", "d3"]
    assert counters["removed"]["exact_duplicate"] == 2


def test_paragraphs_sharing_a_sentence_are_not_duplicates():
    a, b = paragraphs(2, min_words=120, seed=2)
    shared = " ".join(a.split()[:20])
    kept, counters = _run([a, shared + " " + b])
    assert kept == ["d0", "d1"] and counters["removed"]["near_duplicate"] == 0


def test_minhash_agreement_estimates_jaccard():
    a = paragraphs(1, min_words=200, seed=3)[0]
    words = a.split()
    b = " ".join(words[: len(words) // 2] + ["other"] * 5 + words[len(words) // 2 + 10:])
    true = jaccard(shingle_hashes(a, 5), shingle_hashes(b, 5))
    pa, pb = permutations(512, 7)
    estimate = float((minhash(a, 5, pa, pb) == minhash(b, 5, pa, pb)).mean())
    assert 0.5 < true < 0.95 and abs(estimate - true) < 0.08


def test_lsh_bands_fit_the_threshold():
    for threshold in (0.5, 0.8, 0.95):
        b, r = lsh_bands(128, threshold)
        assert b * r == 128 and 1 - (1 - threshold**r) ** b >= 0.9
