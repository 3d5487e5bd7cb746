"""`make demo`: the quickstart study, `lmlab study quickstart` (conf/ladder/quickstart.yaml): five sizes x
two budgets on the bundled corpus (prepared on first use), the largest size held out and predicted,
a larger run planned; then what to try next."""

from __future__ import annotations

import os
import sys

NEXT = """
Next (from the repository root):
  source .venv/bin/activate                       # puts lmlab and lmlab-train on your PATH
  less {study}/report.md                          # the report: runs, law, held-out prediction, plan, figures
  lmlab ladder plan quickstart                    # the ladder's runs and the lmlab-train commands behind them
  lmlab runs status runs/quickstart               # the runs' states and losses
  lmlab fit {study}/study.parquet --law chinchilla --n-col n_params_nonembedding --holdout max:N -o fit.json --plot figs
  lmlab study quickstart sizes=[14k,25k,55k,100k,220k,390k]   # a bigger ladder: completed runs are not retrained
  lmlab study cpu_grid cluster=slurm              # a study on SLURM (make slurm-up starts a local cluster)
  LMLAB_STUDY={study_abs} jupyter lab analysis/study_overview.ipynb   # the study in a notebook
"""


def main(argv: list[str] | None = None) -> int:
    from lmlab.cli import main as lmlab

    jobs = str(min(2, os.cpu_count() or 1))   # two one-thread runs at a time on a 2-core machine
    args = ["study", "quickstart", *(argv if argv is not None else sys.argv[1:]), "--jobs", jobs]
    code = lmlab(args)
    if code in (0, 1):   # 1: some run failed; the study still reported what it could
        study = args[args.index("-o") + 1] if "-o" in args else os.path.join("studies", "quickstart")
        print(NEXT.format(study=study, study_abs=os.path.abspath(study)))
    return code


if __name__ == "__main__":
    sys.exit(main())
