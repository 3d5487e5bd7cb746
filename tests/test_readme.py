"""Every command in README.md works as written.

`lmlab` commands run as written, in a scratch directory laid out as the README assumes (a run group
runs/my-study of real runs; a study table to fit). lmlab-train and lmlab-prepare lines are their fast
variant: every job they would launch is composed and resolved by the run spec, as lmlab-train does
before training. A line the test does not run must be listed in NOT_RUN with the test that covers it,
so the README cannot drift from what is checked.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lmlab.config import compose_train, expand_sweep
from lmlab.io import write_table
from lmlab.runspec import resolve_run
from tests.conftest import REPO

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent

# (start of the line, why it is not run here, where it is covered)
NOT_RUN = {
    "make demo": "the demo itself: CI runs `make test`, tests/test_pipeline.py covers the same stages",
    "make test": "this suite",
    "lmlab study": "trains a ladder: tests/study/test_study.py runs studies end to end (local, SLURM, relaunch)",
    "make slurm-up": ".ci/run starts the cluster before the suite",
    "lmlab tune report": "needs a finished search: tests/tune runs one and reports it",
    "lmlab mup coord-check": "trains several widths: tests/tune checks it on numbers",
}


def readme_commands() -> list[str]:
    """The command lines of README.md's bash blocks, without trailing comments."""
    text = (REPO / "README.md").read_text()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def compose_jobs(args: list[str], script: str) -> int:
    """Compose (and for training, resolve) every job of an lmlab-train/lmlab-prepare command line."""
    from lmlab.data.prepare import compose_prepare_config

    dirs, overrides, it = [], [], iter(args)
    for a in it:
        if a in ("--config-dir", "-cd"):
            dirs.append(next(it))
        elif a != "-m":
            overrides.append(a)
    # a search space is the sweeper's to expand: its base config must compose
    overrides = [o for o in overrides if not re.search(r"\b(interval|choice|range|tag)\(", o)]
    jobs = expand_sweep(overrides)
    for job in jobs:
        if script == "lmlab-prepare":
            compose_prepare_config(job)
        else:
            resolve_run(compose_train(job, dirs), vocab_size=4096)
    return len(jobs)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory, data_root):
    """A directory laid out as the README assumes: runs/my-study holds real completed runs."""
    from lmlab.train.run import Run

    root = tmp_path_factory.mktemp("readme")
    for seed in (0, 1):
        Run(compose_train([f"paths.runs_dir={root / 'runs'}", f"paths.data_dir={data_root}", "run.group=my-study",
                           "model.size=14k", "model.seq_len=32", "budget.tokens=2048", "trainer.global_batch_size=8",
                           "trainer.micro_batch_size=8", "trainer.val_tokens=1024", "trainer.threads=1",
                           "trainer.progress_bar=false", f"seed={seed}"])).execute()
    return root


def chinchilla_study(path: Path) -> None:
    """The published Chinchilla points as a study table with lmlab's columns (a ladder worth fitting)."""
    from lmlab.analysis.reference import chinchilla_path

    df = pd.read_csv(chinchilla_path())
    n, c = df["Model Size"].astype(float), df["Training FLOP"].astype(float)
    write_table(pd.DataFrame({"run_id": [f"r{i}" for i in range(len(df))], "status": "completed", "n_params": n,
                              "tokens": c / (6 * n), "flops_6n": c, "final_val_loss": df["loss"],
                              "vocab_size": 32000, "data": "massivetext"}), path)


def run_line(line: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def test_every_readme_command_works_as_written(scratch, data_root):
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "LMLAB_DATA_DIR": str(data_root)}
    env.pop("LMLAB_RUNS_DIR", None)  # the README's paths are relative: runs/ under the working directory
    lines = readme_commands()
    assert len(lines) > 20
    skipped = {line for line in lines if any(line.startswith(p) for p in NOT_RUN)}
    assert {p for p in NOT_RUN if any(line.startswith(p) for line in lines)} == set(NOT_RUN), \
        "NOT_RUN lists a command the README no longer has"
    # the lmlab commands, in the order their inputs appear (a plan before the render that launches it)
    ordered = sorted((line for line in lines if line not in skipped and " lmlab " in f" {line} "),
                     key=lambda line: ("launch render" in line, "predict" in line))
    for line in ordered:
        if line.startswith("lmlab fit"):
            chinchilla_study(scratch / "study.parquet")  # a ladder big enough to fit, in place of the two runs
        proc = run_line(line, scratch, env)
        assert proc.returncode == 0, f"{line}\n{proc.stdout[-1000:]}\n{proc.stderr[-2000:]}"
        assert "Traceback" not in proc.stderr, line
    composed = []
    for line in lines:
        script = shlex.split(line)[0]
        if script in ("lmlab-train", "lmlab-prepare"):
            args = shlex.split(line)[1:]
            if "--cfg" in args:
                proc = run_line(line, scratch, env)
                assert proc.returncode == 0, f"{line}\n{proc.stderr[-2000:]}"
            else:
                composed.append((line, compose_jobs(args, script)))
    assert all(n >= 1 for _, n in composed)

    assert (scratch / "fit.json").is_file() and (scratch / "big.sbatch").is_file()
