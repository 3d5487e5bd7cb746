#!/bin/bash
# The quickstart's learning-rate check: at each scanned size's short budget (0.05x Chinchilla on total N),
# the quickstart's batch (16 x 128 tokens) and lr x {1/3, 3} around the ladder's rule (x 1 is the quickstart study's own run at that budget)
# lr = 0.03 (N/116k)^-1.2. Run from the repository root; runs land in runs/lrscan, then:
#   .venv/bin/lmlab runs collect runs/lrscan -o experiments/quickstart/lr_scan.csv
common="-m run.group=lrscan model.seq_len=128 data=sotu trainer=cpu trainer.global_batch_size=16 trainer.micro_batch_size=16
trainer.threads=1 trainer.val_milestones=4 trainer.val_tokens=16384 budget.tokens=null budget.flops=null
budget.chinchilla_multiple=0.05 seed=0"
.venv/bin/lmlab-train $common model.size=14k optim.lr=0.01,0.09 &
.venv/bin/lmlab-train $common model.size=55k optim.lr=0.004,0.036 &
.venv/bin/lmlab-train $common model.size=220k optim.lr=0.0013,0.012 &
wait
