"""The model bias audit at every validation milestone of a training run (audit.every_val=true).

Rows go to `<run dir>/audit_curve.jsonl` (lmlab.audit.curve.model_row plus step and tokens): how the
model's preferences between groups develop as it learns, the same numbers `lmlab audit bias` gives
for that checkpoint. A resumed run drops the rows after its checkpoint, as the metrics file does.
"""

from __future__ import annotations

from pathlib import Path

from lmlab.audit.curve import AUDIT_CURVE, model_row
from lmlab.audit.lexicon import load_lexicon, load_templates
from lmlab.audit.model_bias import audit_model
from lmlab.errors import ConfigError
from lmlab.eval.tasks import corpus_eot_id, corpus_tokenizer
from lmlab.io import append_jsonl, read_jsonl, write_jsonl
from lmlab.train.callbacks import OnStep


class BiasAuditCurve(OnStep):
    """Audits the model on the templates of `audit_cfg` (the `audit` section) at the given steps, with
    the tokenizer of the run's corpus `data_dir`."""

    def __init__(self, record_dir: str | Path, data_dir: str | Path, audit_cfg: dict, milestones: list[int],
                 tokens_per_step: int, strategy: str):
        super().__init__()
        if strategy == "fsdp":  # the audit scores the whole model on rank zero; FSDP holds it sharded
            raise ConfigError("audit.every_val=true with trainer.strategy=fsdp: not supported; expected "
                              "trainer.strategy=ddp|auto, or `lmlab audit bias` on the finished run")
        if audit_cfg["bootstrap"] < 10:
            raise ConfigError(f"audit.bootstrap={audit_cfg['bootstrap']}: expected at least 10 resamples")
        self.path = Path(record_dir) / AUDIT_CURVE
        self.lexicon = load_lexicon(audit_cfg["lexicon"])  # bad files fail before training
        self.templates = load_templates(audit_cfg["templates"], self.lexicon)
        self.n_boot = audit_cfg["bootstrap"]
        self.tok = corpus_tokenizer(data_dir)
        self.bos = self.tok.id_to_token(corpus_eot_id(data_dir, self.tok))
        self.milestones, self.tokens_per_step = set(milestones), tokens_per_step

    def on_train_start(self, trainer, module) -> None:
        self.seen_step = trainer.global_step
        if trainer.is_global_zero:
            rows = read_jsonl(self.path)
            if any(r["step"] > trainer.global_step for r in rows):
                write_jsonl(self.path, [r for r in rows if r["step"] <= trainer.global_step])

    def on_step(self, trainer, module) -> None:
        if trainer.global_step in self.milestones and trainer.is_global_zero:
            with trainer.precision_plugin.forward_context():
                audit = audit_model(module.model, self.tok, self.bos, self.templates, self.lexicon, self.n_boot)
            step = trainer.global_step
            append_jsonl(self.path, {"step": step, "tokens": step * self.tokens_per_step, **model_row(audit)})
