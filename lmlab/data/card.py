"""Stage 7: the data card, in JSON (for tools) and markdown (for people)."""

from __future__ import annotations

import json
import os
from pathlib import Path

CARD_JSON = "data_card.json"
CARD_MD = "data_card.md"


def write_card(out_dir: Path, card: dict) -> None:
    for name, text in ((CARD_JSON, json.dumps(card, indent=2, sort_keys=True) + "\n"), (CARD_MD, render_markdown(card))):
        tmp = out_dir / (name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out_dir / name)


def render_markdown(card: dict) -> str:
    lines = [f"# Data card: {card['name']}", "",
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
    return "\n".join(lines)


def _stage_details(st: dict) -> list[str]:
    out = []
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
