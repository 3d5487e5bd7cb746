"""Stage 7: the data card, in JSON (for tools) and markdown (for people).

Other parts of lmlab add their own findings to a prepared corpus's card with `add_section(data_dir, key,
title, markdown, data)`: the card's JSON keeps them under `sections[key]` as {"title", "markdown", "data"}
and the markdown shows each as a `## title` section after the built-in ones (e.g. the bias audit's
group counts under key "bias").
"""

from __future__ import annotations

import os
from pathlib import Path

from lmlab.io import atomic_path, dumps, read_json, write_atomic

CARD_JSON = "data_card.json"
CARD_MD = "data_card.md"
CARD_PNG = "data_card.png"


def write_card(out_dir: Path, card: dict, mode: int | None = None) -> None:
    write_atomic(out_dir / CARD_JSON, dumps(card, indent=2, sort_keys=True) + "\n", mode)
    write_atomic(out_dir / CARD_MD, render_markdown(card), mode)


def add_section(data_dir: str | os.PathLike, key: str, title: str, markdown: str, data: dict | None = None) -> None:
    """Add (or replace) the section `key` of a prepared corpus's card, keeping its files' permissions."""
    data_dir = Path(data_dir)
    card = read_json(data_dir / CARD_JSON)
    card.setdefault("sections", {})[key] = {"title": title, "markdown": markdown, "data": data or {}}
    write_card(data_dir, card, (data_dir / CARD_JSON).stat().st_mode & 0o777)


def write_card_figure(out_dir: Path, card: dict, doc_tokens, doc_splits, mode: int | None = None) -> None:
    """data_card.png: documents left after each stage, and the length of documents in each split."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    fig = Figure(figsize=(10, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    names = [st["stage"] for st in card["stages"]]
    left.bar(names, [st["documents_out"] for st in card["stages"]], color="tab:blue")
    left.set(title="documents after each stage", ylabel="documents")
    tokens, splits = np.asarray(doc_tokens), np.asarray(doc_splits)
    bins = np.logspace(np.log10(tokens.min()), np.log10(tokens.max() + 1), 30)
    for name in card["splits"]:
        part = tokens[splits == name]
        right.hist(part, bins=bins, weights=np.full(len(part), 1 / max(1, len(part))), histtype="step", label=name)
    right.set(xscale="log", title="tokens per document", xlabel="tokens", ylabel="share of the split's documents")
    right.xaxis.set_minor_formatter(NullFormatter())
    right.legend()
    with atomic_path(out_dir / CARD_PNG, mode) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})


def render_markdown(card: dict) -> str:
    lines = [f"# Data card: {card['name']}", "", f"![stages and document lengths]({CARD_PNG})", "",
             f"Source: `{card['source'].get('description')}` ({card['source'].get('documents')} documents). "
             f"Config hash `{card['config_hash'][:12]}`.", "",
             "## Stages", "",
             "Words are whitespace-separated; tokens (with one end-of-text per document) are the trained "
             "tokenizer's, counted where the text becomes tokens.", "",
             "| stage | documents in | documents out | words in | words out | tokens out |",
             "|---|---:|---:|---:|---:|---:|"]
    for st in card["stages"]:
        lines.append(f"| {st['stage']} | {st['documents_in']} | {st['documents_out']} | "
                     f"{st['words_in']} | {st['words_out']} | {st.get('tokens_out', '')} |")
    for st in card["stages"]:
        lines += _stage_details(st)
    lines += ["", "## Splits", "", "| split | documents | tokens | shards |", "|---|---:|---:|---:|"]
    for name, sp in card["splits"].items():
        lines.append(f"| {name} | {sp['documents']} | {sp['tokens']} | {sp['shards']} |")
    tk = card["tokenizer"]
    lines += ["", "## Tokenizer", "",
              f"Vocabulary {tk['vocab_size']} ({tk['kind']}), end-of-text `{tk['eot_token']}` = id {tk['eot_id']}, "
              f"sha256 `{tk['sha256'][:12]}`, shards as {tk['dtype']}.", ""]
    lines += _privacy(card)
    for section in (card.get("sections") or {}).values():
        lines += [f"## {section['title']}", "", section["markdown"].rstrip(), ""]
    return "\n".join(lines)


def _privacy(card: dict) -> list[str]:
    """Which personal data was replaced and which was not looked for; what was kept; how it is stored."""
    pii, fields = card.get("pii"), card.get("fields")
    if not pii or not fields:
        return []
    lines = ["## Privacy", ""]
    if pii["enabled"]:
        lines += ["Personal data replaced by typed placeholders such as `<EMAIL>`:", "",
                  "| type | what is found |", "|---|---|"]
        lines += [f"| {kind} | {what} |" for kind, what in pii["covered"].items()]
    else:
        lines.append("PII replacement was off (clean.pii.enabled=false): the text is as the source had it.")
    lines += ["", "Not looked for: " + "; ".join(pii["not_covered"]) + ".", "",
              f"Fields kept: {', '.join(fields['kept'])} (id: {fields['id']}); "
              f"dropped: {', '.join(fields['dropped']) or 'none'}.",
              f"Text stages kept under stages/: {card.get('stages_kept', 'none')}."]
    enc = card.get("encryption")
    lines.append(f"Shards encrypted with {enc['cipher']}, key from `{enc['key']}` (key id {enc['key_id']})."
                 if enc else "Shards are not encrypted.")
    return lines + [""]


def _stage_details(st: dict) -> list[str]:
    out = []
    if "normalised" in st:
        out += ["", f"### {st['stage']}: {st['normalised']} documents changed by normalisation"]
    if st.get("removed"):
        out += ["", f"### {st['stage']}: removed", "", "| reason | documents |", "|---|---:|"]
        out += [f"| {reason} | {n} |" for reason, n in st["removed"].items()]
        for reason, examples in (st.get("examples") or {}).items():
            for ex in examples:
                out.append(f"- {reason}: `{_one_line(ex)}`")
    if st.get("replaced"):
        out += ["", f"### {st['stage']}: replaced", "", "| type | replacements |", "|---|---:|"]
        out += [f"| {kind} | {n} |" for kind, n in st["replaced"].items()]
    return out


def _one_line(text: str, width: int = 100) -> str:
    flat = " ".join(text.split()).replace("`", "'")
    return flat if len(flat) <= width else flat[: width - 3] + "..."
