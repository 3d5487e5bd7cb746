#!/usr/bin/env bash
# The muP transfer experiment: LR scans at width 32 and at 128 (4x) under the standard parametrisation,
# and at 128 under muP with base width 32 (muP at its base width is the standard model, so the SP scan
# at 32 serves both). Each scan is a grid search through lmlab's own sweeper: 22 runs of 64 steps, CPU.
# Usage (from the repository root): bash experiments/mup-transfer/run.sh
set -euo pipefail
E=experiments/mup-transfer
export LMLAB_RUNS_DIR=${LMLAB_RUNS_DIR:-$E/out/runs}
lrs() { echo "choice($(printf '%s, ' "$@" | sed 's/, $//'))"; }  # powers of 2 (grid step x2)
COMMON=(model.size=14k model.n_layer=2 model.n_head=2 model.seq_len=64 budget.tokens=65536
        trainer.global_batch_size=16 trainer.micro_batch_size=16 trainer.val_milestones=2 trainer.val_tokens=8192
        trainer.threads=1 trainer.progress_bar=false seed=0)
scan() {  # scan GROUP WIDTH MUP_BASE LR...
  local group=$1 width=$2 base=$3; shift 3
  .venv/bin/lmlab-train -m hparams_search=grid hydra.sweeper.params=null "optim.lr=$(lrs "$@")" \
    "${COMMON[@]}" model.d_model=$width model.mup_base_width=$base run.group=$group
}
# The first SP scan at width 32 (2^-11 .. 2^-5) found its best at its top: extended by sp-32-high.
scan sp-32 32 null 0.00048828125 0.0009765625 0.001953125 0.00390625 0.0078125 0.015625 0.03125
scan sp-32-high 32 null 0.0625 0.125 0.25
scan sp-128 128 null 0.001953125 0.00390625 0.0078125 0.015625 0.03125 0.0625
scan mup-128 128 32 0.0078125 0.015625 0.03125 0.0625 0.125 0.25
.venv/bin/python $E/analyze.py "$LMLAB_RUNS_DIR" $E
