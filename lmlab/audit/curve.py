"""The model bias audit along training: rows of audit_curve.jsonl and the columns a study table joins.

A row is flat: step, tokens, the share of marked templates whose stereotyped variant the model
prefers (with its interval), and per lexicon dimension the preference gap between groups and each
group's preference (nats). Torch-free, so `lmlab runs collect` can read it cheaply.
"""

from __future__ import annotations

from pathlib import Path

from lmlab.io import read_jsonl

AUDIT_CURVE = "audit_curve.jsonl"


def model_row(model_audit: dict) -> dict:
    """One model audit (lmlab.audit.model_bias.summarise) as flat columns."""
    share = model_audit["stereotype_share"]
    row = {"stereotype_share": share["value"], "stereotype_share_lo": share["interval"][0],
           "stereotype_share_hi": share["interval"][1]}
    for dim, v in model_audit["dimensions"].items():
        row[f"gap.{dim}"] = v["gap"]["value"]
        row.update({f"pref.{dim}.{g}": p["value"] for g, p in v["groups"].items()})
    return row


def audit_columns(run_dir: str | Path) -> dict:
    """The last audit of a run's curve as audit.<column> values (none when it has no curve)."""
    rows = read_jsonl(Path(run_dir) / AUDIT_CURVE)
    if not rows:
        return {}
    last = max(rows, key=lambda r: r["step"])
    return {f"audit.{k}": v for k, v in last.items() if k not in ("step", "tokens")}
