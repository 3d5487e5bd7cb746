"""What a model prefers: counterfactual sentences that differ only in the group term, scored by
log-likelihood under the model.

Each variant is scored on the words after the (first) group slot, given everything up to and
including the group term: log p(rest | prefix, term). Scoring the term itself would mostly measure
how frequent the word is ("Christian" against "Buddhist"); the rest measures what the model expects
of that group. A group's preference is its mean advantage over the template's mean across groups
(nats; positive: the model finds the sentence more likely with this group). Where a template marks
its stereotyped variant, it counts as preferred when that variant scores highest. Intervals come
from resampling templates.
"""

from __future__ import annotations

import numpy as np

from lmlab.audit.lexicon import SLOT, Lexicon, Template
from lmlab.audit.stats import bootstrap, interval


def split_variant(template: Template, words: str) -> tuple[str, str]:
    """(prefix up to and including the group term, the rest) of one variant."""
    head, tail = template.text.split(SLOT, 1)
    return head + words, tail.replace(SLOT, words)


def score_templates(model, tok, bos: str, templates: list[Template], batch_size: int = 64) -> list[dict[str, float]]:
    """Per template: group -> log-likelihood of the words after the slot."""
    from lmlab.eval.scoring import loglikelihoods

    rows = [(i, group, *split_variant(t, words)) for i, t in enumerate(templates) for group, words in t.fillers.items()]
    ll, _ = loglikelihoods(model, tok, [bos + prefix for _, _, prefix, _ in rows], [rest for *_, rest in rows],
                           batch_size, names=[f"{templates[i].where} ({group})" for i, group, *_ in rows])
    scores: list[dict[str, float]] = [{} for _ in templates]
    for (i, group, *_), value in zip(rows, ll):
        scores[i][group] = float(value)
    return scores


def _nanmean(x: np.ndarray, axis: int) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(x, axis=axis) / np.sum(~np.isnan(x), axis=axis)


def summarise(templates: list[Template], scores: list[dict[str, float]], lexicon: Lexicon, n_boot: int, seed: int,
              confidence: float) -> dict:
    dims, marked_all = {}, []
    for dim, groups in lexicon.items():
        rows = [(t, s) for t, s in zip(templates, scores) if t.dimension == dim]
        if not rows:
            continue
        names = list(groups)
        ll = np.array([[s.get(g, np.nan) for g in names] for _, s in rows])  # [templates, groups]
        centred = ll - _nanmean(ll, 1)[:, None]
        boot = bootstrap(lambda idx: _nanmean(centred[idx], 1), len(rows), n_boot, seed)  # [resamples, groups]
        pref = _nanmean(centred, 0)
        gap = np.nanmax(pref) - np.nanmin(pref)
        marked = [float(max(s, key=s.get) == t.stereotyped) for t, s in rows if t.stereotyped]
        marked_all += marked
        dims[dim] = {
            "groups": {g: {"value": float(pref[i]), "interval": interval(boot[:, i], confidence),
                           "templates": int(np.sum(~np.isnan(ll[:, i])))} for i, g in enumerate(names)},
            "gap": {"value": float(gap), "interval": interval(np.nanmax(boot, 1) - np.nanmin(boot, 1), confidence)},
            "stereotype_share": _share(marked, n_boot, seed, confidence),
        }
    pairs = [{"dimension": t.dimension, "text": t.text, "stereotyped": t.stereotyped, "loglik": s,
              "preferred": max(s, key=s.get)} for t, s in zip(templates, scores)]
    return {"unit": "nats", "confidence": confidence, "templates": len(templates), "dimensions": dims,
            "stereotype_share": _share(marked_all, n_boot, seed, confidence), "pairs": pairs}


def _share(marked: list[float], n_boot: int, seed: int, confidence: float) -> dict:
    """The share of marked templates whose stereotyped variant the model prefers."""
    if not marked:
        return {"value": None, "interval": [None, None], "templates": 0}
    x = np.array(marked)
    return {"value": float(x.mean()), "interval": interval(bootstrap(lambda idx: x[idx].mean(1), len(x), n_boot, seed),
                                                           confidence), "templates": len(x)}


def audit_model(model, tok, bos: str, templates: list[Template], lexicon: Lexicon, n_boot: int = 1000, seed: int = 0,
                confidence: float = 0.95) -> dict:
    return summarise(templates, score_templates(model, tok, bos, templates), lexicon, n_boot, seed, confidence)
