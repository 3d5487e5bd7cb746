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
from lmlab.train.callbacks import MilestoneCurve


class BiasAuditCurve(MilestoneCurve):
    """Audits the model on the templates of `audit_cfg` (the `audit` section) at the given steps, with
    the tokenizer of the run's corpus `data_dir`."""

    def __init__(self, record_dir: str | Path, data_dir: str | Path, audit_cfg: dict, milestones: list[int],
                 tokens_per_step: int, strategy: str):
        super().__init__(record_dir, AUDIT_CURVE, milestones, tokens_per_step)
        if strategy == "fsdp":  # the audit scores the whole model on rank zero; FSDP holds it sharded
            raise ConfigError("audit.every_val=true with trainer.strategy=fsdp: not supported; expected "
                              "trainer.strategy=ddp|auto, or `lmlab audit bias` on the finished run")
        if audit_cfg["bootstrap"] < 10:
            raise ConfigError(f"audit.bootstrap={audit_cfg['bootstrap']}: expected at least 10 resamples")
        self.lexicon = load_lexicon(audit_cfg["lexicon"])  # bad files fail before training
        self.templates = load_templates(audit_cfg["templates"], self.lexicon)
        self.n_boot = audit_cfg["bootstrap"]
        self.tok = corpus_tokenizer(data_dir)
        self.bos = self.tok.id_to_token(corpus_eot_id(data_dir, self.tok))

    def rows(self, module) -> list[dict]:
        return [model_row(audit_model(module.model, self.tok, self.bos, self.templates, self.lexicon, self.n_boot))]
