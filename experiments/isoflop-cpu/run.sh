#!/bin/bash
# IsoFLOP study on the bundled corpus (experiments/isoflop-cpu/README.md): train conf/ladder/isoflop_cpu.yaml
# (3 budgets x 3-4 sizes, the quickstart's model, data and rules), then fit Chinchilla's approaches 2 and 3
# (and the variants `lmlab fit --compare` adds) on the same runs. Run from the repository root.
set -euo pipefail
out=${1:-experiments/isoflop-cpu}
.venv/bin/lmlab study isoflop_cpu --jobs 2 -o "$out/study"
.venv/bin/lmlab fit "$out/study/study.parquet" --compare --n-col n_params_nonembedding --bootstrap 200 \
    --plot "$out/figures" --json > "$out/compare.json"
.venv/bin/lmlab fit "$out/study/study.parquet" --method 2 --n-col n_params_nonembedding --bootstrap 200 \
    --plot "$out/figures" --json > "$out/approach2.json"
