"""Evaluate a run on tasks and record the results: `<run dir>/eval.json`, one entry per task.

Per task: accuracy, length-normalised accuracy, macro precision, recall and F1, micro F1, per-class
metrics, the task loss (nats per token and per character of the right choice) and, under the
chosen scheme, each headline metric's interval (`<metric>_ci`): bootstrap (percentile, resampling
the task's examples), kfold (Student's t across folds, with the folds' spread) or holdout (none).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from lmlab.eval import schemes
from lmlab.eval.metrics import classification_metrics
from lmlab.eval.results import EVAL_FILE, HEADLINE
from lmlab.eval.scoring import Scores, score_task
from lmlab.eval.tasks import Task, build_task, corpus_eot_id, tokenizer_sha256

log = logging.getLogger("lmlab.eval")



def statistics(scores: Scores, n_classes: int, index: np.ndarray) -> dict[str, np.ndarray]:
    """The headline metrics over the examples `index` ([examples] or [resamples, examples])."""
    labels = scores.labels[index]
    m = classification_metrics(labels, scores.pred[index], n_classes)
    pmi = scores.pred_pmi
    return {
        "accuracy": m["accuracy"], "accuracy_norm": (scores.pred_norm[index] == labels).mean(-1),
        "accuracy_pmi": (pmi[index] == labels).mean(-1) if pmi is not None else np.full(labels.shape[:-1], np.nan),
        "precision": m["precision"], "recall": m["recall"], "f1": m["f1"],
        "task_loss": scores.loss_per_token[index].mean(-1), "task_loss_per_char": scores.loss_per_char[index].mean(-1),
    }


def summarise(task: Task, scores: Scores, scheme: dict) -> dict:
    """One task's entry of eval.json."""
    n, k = len(task), len(task.class_names)
    schemes.check_confidence(scheme["confidence"])
    whole = statistics(scores, k, np.arange(n))
    out = {key: float(v) for key, v in whole.items()}
    if scheme["name"] == "bootstrap":
        resampled = statistics(scores, k, schemes.bootstrap_indices(n, scheme["n_boot"], scheme["seed"]))
        out.update({f"{key}_ci": schemes.percentile_interval(v, scheme["confidence"]) for key, v in resampled.items()})
    elif scheme["name"] == "kfold":
        folds = [statistics(scores, k, fold) for fold in schemes.kfold(n, scheme["k"], scheme["seed"])]
        out.update(schemes.fold_summary(folds, HEADLINE, scheme["confidence"]))
    else:
        out.update({f"{key}_ci": None for key in HEADLINE})
    per_class = classification_metrics(scores.labels, scores.pred, k)
    counts = np.bincount(task.labels, minlength=k)
    out.update({
        "type": task.type, "n_examples": n, "class_names": task.class_names, "source": task.source,
        "micro_f1": float(per_class["micro_f1"]),
        "per_class": {name: {"precision": float(per_class["class_precision"][i]),
                             "recall": float(per_class["class_recall"][i]), "f1": float(per_class["class_f1"][i]),
                             "support": int(counts[i])} for i, name in enumerate(task.class_names)},
        "majority_baseline": float(counts.max() / n), "chance": float(np.mean([1 / len(c) for c in task.choices])),
    })
    return out


def evaluate_model(model, tok, tasks: list[Task], scheme: dict, batch_size: int = 64,
                   eot_id: int | None = None) -> dict:
    """Each task's eval.json entry; eot_id (the corpus's end-of-text token) adds accuracy_pmi."""
    results = {}
    for task in tasks:
        if scheme["name"] == "kfold":  # an impossible split fails before the scoring, not after
            schemes.kfold(len(task), scheme["k"], scheme["seed"])
        results[task.name] = summarise(task, score_task(model, tok, task, batch_size, eot_id), scheme)
        r = results[task.name]
        log.info("task %s: accuracy %.3f (majority %.3f), f1 %.3f, task loss %.3f nats/token (%d examples)",
                 task.name, r["accuracy"], r["majority_baseline"], r["f1"], r["task_loss"], r["n_examples"])
    return results


def build_tasks(task_cfgs: list[dict], default_data_dir, tok=None) -> list[Task]:
    """The tasks, checked against the model's tokenizer `tok` when given."""
    sha = tokenizer_sha256(tok) if tok is not None else None
    return [build_task(cfg, default_data_dir, sha) for cfg in task_cfgs]


def evaluate_run(run_dir: str | Path, task_cfgs: list[dict], scheme: dict, batch_size: int = 64,
                 device: str = "cpu", output: str | Path | None = None) -> dict:
    """Score the run's last checkpoint on the tasks and merge the results into its eval.json
    (tasks evaluated before and not now are kept)."""
    from lmlab.io import read_json, write_json
    from lmlab.runs.load import load_model
    from lmlab.runs.record import RunRecord, now_iso

    run_dir = Path(run_dir)
    model, tok, cfg = load_model(run_dir, device)
    tasks = build_tasks(task_cfgs, cfg["data"]["dir"], tok)
    results = evaluate_model(model, tok, tasks, scheme, batch_size, corpus_eot_id(cfg["data"]["dir"], tok))
    path = Path(output) if output else run_dir / EVAL_FILE
    record = read_json(path) if path.exists() else {"tasks": {}}
    reached = RunRecord(run_dir).result() or RunRecord(run_dir).status() or {}  # where the checkpoint is
    for name, entry in results.items():
        entry.update({"scheme": scheme, "evaluated_at": now_iso(), "tokens": reached.get("tokens"),
                      "steps": reached.get("steps", reached.get("step"))})
        record["tasks"][name] = entry
    record["run_dir"] = str(run_dir)
    write_json(path, record)
    return record
