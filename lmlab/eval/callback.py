"""In-loop evaluation: the tasks' fixed samples scored at every validation milestone of a training run.

Rows go to `<run dir>/eval_curve.jsonl`, one per (step, task): step, tokens, task, accuracy,
accuracy_norm, accuracy_pmi, precision, recall, f1, task_loss, task_loss_per_char, n_examples. They are the same
numbers `lmlab.eval` computes for that checkpoint on the same sample (scheme holdout), so a study can
fit loss -> task loss -> accuracy over a ladder's curves. A resumed run drops the rows after its
checkpoint, as the metrics file does.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lmlab.eval.config import task_config
from lmlab.eval.evaluate import build_tasks, evaluate_model
from lmlab.eval.tasks import corpus_eot_id, corpus_tokenizer
from lmlab.train.callbacks import MilestoneCurve

log = logging.getLogger("lmlab.eval")

EVAL_CURVE = "eval_curve.jsonl"
HOLDOUT = {"name": "holdout", "n_boot": 0, "k": 0, "confidence": 0.95, "seed": 0}
ROW_KEYS = ("accuracy", "accuracy_norm", "accuracy_pmi", "precision", "recall", "f1", "task_loss", "task_loss_per_char",
            "n_examples")


def in_loop_task_configs(eval_cfg: dict) -> list[dict]:
    """The configured tasks, each cut to the in-loop sample size."""
    cfgs = [task_config(name) for name in eval_cfg["tasks"]]
    for cfg in cfgs:
        n = cfg["n_examples"]
        cfg["n_examples"] = eval_cfg["n_examples"] if n is None else min(n, eval_cfg["n_examples"])
    return cfgs


class InLoopEval(MilestoneCurve):
    """Scores the tasks of `eval_cfg` (the `eval` section: tasks, n_examples, batch_size) at the given
    steps. Tasks are built from the held-out split of the run's corpus `data_dir`, whose tokenizer the
    model is trained with."""

    def __init__(self, record_dir: str | Path, data_dir: str | Path, eval_cfg: dict, milestones: list[int],
                 tokens_per_step: int):
        super().__init__(record_dir, EVAL_CURVE, milestones, tokens_per_step)
        self.data_dir, self.cfg = Path(data_dir), eval_cfg
        self.tasks = build_tasks(in_loop_task_configs(eval_cfg), self.data_dir)  # bad task configs fail before training
        self.tok = corpus_tokenizer(self.data_dir)
        self.eot_id = corpus_eot_id(self.data_dir, self.tok)

    def rows(self, module) -> list[dict]:
        results = evaluate_model(module.model, self.tok, self.tasks, HOLDOUT, self.cfg["batch_size"], self.eot_id)
        return [{"task": name, **{k: r[k] for k in ROW_KEYS}} for name, r in results.items()]
