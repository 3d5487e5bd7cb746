#!/usr/bin/env bash
# Cloze and era on three pretraining budgets of one tiny model: 5, 500 and 1000 steps of 16 x 64 tokens.
# Outputs go to experiments/cloze-task-loss/out/ (git-ignored). About 30 CPU-minutes on a busy 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=experiments/cloze-task-loss/out
COMMON=(model.size=100k model.seq_len=64 trainer.global_batch_size=16 trainer.micro_batch_size=16
        trainer.threads=1 trainer.progress_bar=false logger=none paths.runs_dir=$OUT/runs run.group=cloze)
for steps in 5 500 1000; do
  .venv/bin/lmlab-train "${COMMON[@]}" budget.tokens=$((steps * 16 * 64))
done
for run in $OUT/runs/cloze/*/; do
  .venv/bin/lmlab-eval run=$run 'tasks=[cloze,era]'
done
.venv/bin/python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
for run in sorted(Path(sys.argv[1], "runs", "cloze").iterdir(), key=lambda p: json.loads((p / "result.json").read_text())["steps"]):
    result, tasks = json.loads((run / "result.json").read_text()), json.loads((run / "eval.json").read_text())["tasks"]
    c, e = tasks["cloze"], tasks["era"]
    print(f"steps {result['steps']:5d}  val loss {result['final_val_loss']:.3f}  cloze: acc {c['accuracy']:.3f} "
          f"acc_norm {c['accuracy_norm']:.3f} acc_pmi {c['accuracy_pmi']:.3f} [{c['accuracy_pmi_ci'][0]:.3f}, "
          f"{c['accuracy_pmi_ci'][1]:.3f}] task loss {c['task_loss']:.3f}  era: acc {e['accuracy']:.3f} "
          f"(majority {e['majority_baseline']:.3f})")
PY
