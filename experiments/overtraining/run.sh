#!/bin/bash
# Over-training runs on the bundled corpus (experiments/overtraining/README.md): the quickstart's model, data,
# batch and lr rule (conf/ladder/quickstart.yaml) at M = D / N = 10 to 80 tokens per non-embedding parameter.
# Run from the repository root; runs land in $LMLAB_RUNS_DIR/overtraining (default runs/), then
#   .venv/bin/python experiments/overtraining/analyze.py
set -euo pipefail
common=(-m run.group=overtraining model.seq_len=128 data=sotu_v1024 model.tie_embeddings=false trainer=cpu
        trainer.threads=1 trainer.val_milestones=4 trainer.val_tokens=16384 trainer.global_batch_size=4
        trainer.micro_batch_size=4 budget.chinchilla_multiple=null budget.flops=null seed=0)
# budget.tokens = M x N non-embedding (14k: 13,944; 25k: 24,736; 55k: 55,536), lr from the quickstart's rule
.venv/bin/lmlab-train "${common[@]}" model.size=55k optim.lr=0.00309 budget.tokens=555360,1110720,2221440 &
(.venv/bin/lmlab-train "${common[@]}" model.size=14k optim.lr=0.00524 budget.tokens=278880,557760,1115520
 .venv/bin/lmlab-train "${common[@]}" model.size=25k optim.lr=0.00424 budget.tokens=247360,494720,989440,1978880) &
wait
