"""How often each group of the lexicon occurs in a prepared corpus, and how unequal the groups are.

The text is the corpus as the model saw it: the split's token shards decoded document by document
(lmlab.eval.corpus.documents). Terms match as whole words, case-insensitively. Intervals come from
resampling documents (a corpus is a sample of documents, and mentions cluster within them).
"""

from __future__ import annotations

import re

import numpy as np

from lmlab.audit.lexicon import Lexicon
from lmlab.audit.stats import bootstrap, interval

WORD = re.compile(r"\w+")


def group_patterns(lexicon: Lexicon) -> dict[str, dict[str, re.Pattern]]:
    """dimension -> group -> one regex of all its terms, longest first so phrases win over their words."""
    return {dim: {group: re.compile(r"\b(?:" + "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
                                    + r")\b", re.IGNORECASE)
                  for group, terms in groups.items()}
            for dim, groups in lexicon.items()}


def count_groups(texts: list[str], lexicon: Lexicon) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(dimension -> [documents, groups] mention counts, words per document)."""
    patterns = group_patterns(lexicon)
    counts = {dim: np.array([[len(p.findall(text)) for p in groups.values()] for text in texts], dtype=np.int64)
              .reshape(len(texts), len(groups))
              for dim, groups in patterns.items()}
    return counts, np.array([len(WORD.findall(text)) for text in texts], dtype=np.int64)


def imbalance(shares: np.ndarray) -> np.ndarray:
    """Largest over smallest share along the last axis (inf when a group never occurs)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return shares.max(-1) / shares.min(-1)


def summarise(counts: dict[str, np.ndarray], words: np.ndarray, lexicon: Lexicon, n_boot: int, seed: int,
              confidence: float) -> dict:
    """Per dimension: each group's count, rate per million words and share of the dimension's mentions
    (value, with a bootstrap interval over documents), and the imbalance (largest / smallest share)."""
    n_docs, total_words = len(words), int(words.sum())
    out = {}
    for dim, matrix in counts.items():
        totals = matrix.sum(0)

        def shares(index, matrix=matrix):
            sums = matrix[index].sum(1).astype(float)  # [resamples, groups]
            with np.errstate(divide="ignore", invalid="ignore"):
                return sums / sums.sum(-1, keepdims=True)

        boot = bootstrap(shares, n_docs, n_boot, seed)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = totals / totals.sum()
        groups = {group: {"value": float(share[i]), "interval": interval(boot[:, i], confidence),
                          "count": int(totals[i]), "per_million_words": 1e6 * totals[i] / max(1, total_words)}
                  for i, group in enumerate(lexicon[dim])}
        out[dim] = {"groups": groups, "mentions": int(totals.sum()),
                    "imbalance": {"value": float(imbalance(share)), "interval": interval(imbalance(boot), confidence)}}
    return {"documents": n_docs, "words": total_words, "confidence": confidence, "dimensions": out}


def audit_data(data_dir, lexicon: Lexicon, split: str = "train", n_boot: int = 1000, seed: int = 0,
               confidence: float = 0.95) -> dict:
    from lmlab.eval.corpus import documents

    texts = [doc.text for doc in documents(data_dir, split, allow_train=True)]
    counts, words = count_groups(texts, lexicon)
    return {"data_dir": str(data_dir), "split": split, **summarise(counts, words, lexicon, n_boot, seed, confidence)}


def card_markdown(audit: dict) -> str:
    """The data audit as the data card's "Bias audit" section: per dimension, each group's mentions
    and share with its interval, and the imbalance."""
    pct = f"{audit['confidence']:.0%}"
    lines = [f"Mentions of the lexicon's groups in the {audit['split']} split ({audit['documents']} documents, "
             f"{audit['words']:,} words), written by `lmlab audit bias`; shares with {pct} intervals over documents.", ""]
    for dim, d in audit["dimensions"].items():
        imb = d["imbalance"]["value"]
        lines += [f"**{dim}**: {d['mentions']} mentions, imbalance (largest / smallest share) "
                  f"{'n/a' if imb is None or not np.isfinite(imb) else f'{imb:.2f}'}", "",
                  "| group | mentions | per million words | share | interval |", "|---|---:|---:|---:|---|"]
        for group, g in d["groups"].items():
            lo, hi = g["interval"]
            share = "n/a" if not np.isfinite(g["value"]) else f"{g['value']:.3f}"
            band = "" if lo is None else f"[{lo:.3f}, {hi:.3f}]"
            lines.append(f"| {group} | {g['count']} | {g['per_million_words']:.1f} | {share} | {band} |")
        lines.append("")
    return "\n".join(lines)
