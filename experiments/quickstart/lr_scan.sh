#!/bin/bash
# The quickstart's design scans (experiments/quickstart/README.md, results in lr_batch_scans.csv), on the bundled
# corpus with a 1,024-token BPE: learning rate x batch x tied/untied embeddings at 0.24x and 0.15x Chinchilla
# (total N). Run from the repository root; runs land in runs/scan1..scan5, then
#   .venv/bin/lmlab runs collect runs/scan1 runs/scan2 runs/scan3 runs/scan4 runs/scan5 -o scans.parquet
set -euo pipefail
train() { .venv/bin/lmlab-train -m model.seq_len=128 data=sotu_v1024 trainer=cpu trainer.threads=1 trainer.val_milestones=4 \
  trainer.val_tokens=16384 budget.tokens=null budget.flops=null seed=${SEED:-0} forecast.show=false "$@"; }
b() { echo "trainer.global_batch_size=$1 trainer.micro_batch_size=$1"; }
# tied embeddings (the model's default), 0.24x: the runs sit on the unigram plateau (~6 nats)
train run.group=scan1 budget.chinchilla_multiple=0.24 $(b 16) model.size=14k,25k,55k,100k optim.lr=0.005,0.01,0.02,0.04
train run.group=scan2 budget.chinchilla_multiple=0.24 $(b 4) model.size=14k,25k optim.lr=0.005,0.01,0.02
train run.group=scan2 budget.chinchilla_multiple=0.24 $(b 8) model.size=14k,25k optim.lr=0.005,0.01,0.02
# untied embeddings: 1-1.5 nats lower at the same budget
train run.group=scan3 budget.chinchilla_multiple=0.24 model.tie_embeddings=false $(b 16) model.size=14k,25k optim.lr=0.005,0.01,0.02
train run.group=scan3 budget.chinchilla_multiple=0.24 model.tie_embeddings=false $(b 8) model.size=14k,25k optim.lr=0.005,0.01,0.02
# the lr per size at 0.15x, untied, 8 sequences per step
train run.group=scan4 budget.chinchilla_multiple=0.15 model.tie_embeddings=false $(b 8) model.size=14k,25k,55k,100k optim.lr=0.0025,0.005,0.01
train run.group=scan5 budget.chinchilla_multiple=0.15 model.tie_embeddings=false $(b 8) model.size=55k,100k optim.lr=0.00125,0.0018
train run.group=scan5 budget.chinchilla_multiple=0.15 model.tie_embeddings=false $(b 8) model.size=14k,25k optim.lr=0.0035
SEED=1 train run.group=scan5 budget.chinchilla_multiple=0.15 model.tie_embeddings=false $(b 8) model.size=25k optim.lr=0.005
