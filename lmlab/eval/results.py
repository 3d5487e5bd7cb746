"""eval.json, the record of a run's task results, and its columns in the study table (torch-free, so
`lmlab runs collect` can read it cheaply)."""

from __future__ import annotations

from pathlib import Path

EVAL_FILE = "eval.json"
HEADLINE = ("accuracy", "accuracy_norm", "accuracy_pmi", "precision", "recall", "f1", "task_loss", "task_loss_per_char")


def eval_columns(run_dir: str | Path) -> dict:
    """The run's eval.json as study-table columns, `eval.<task>.<metric>` (+ `_lo`/`_hi` for intervals);
    {} when the run has not been evaluated. `lmlab runs collect` adds these to the run's row."""
    from lmlab.io import read_json

    path = Path(run_dir) / EVAL_FILE
    if not path.is_file():
        return {}
    columns = {}
    for name, entry in (read_json(path).get("tasks") or {}).items():
        for key in HEADLINE:
            columns[f"eval.{name}.{key}"] = entry.get(key)
            ci = entry.get(f"{key}_ci")
            columns[f"eval.{name}.{key}_lo"], columns[f"eval.{name}.{key}_hi"] = ci if ci else (None, None)
        columns[f"eval.{name}.n_examples"] = entry.get("n_examples")
    return columns
