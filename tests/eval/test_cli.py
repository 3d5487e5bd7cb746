"""The lmlab-eval console script, as a user types it, from another directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def lmlab_eval(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "lmlab-eval"), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_lmlab_eval_explains_itself_and_refuses_a_directory_that_is_not_a_run(tmp_path):
    shown = lmlab_eval("--help", cwd=tmp_path)
    assert shown.returncode == 0 and "run=<run dir>" in shown.stdout
    refused = lmlab_eval(f"run={tmp_path}", "tasks=[cloze]", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (f"lmlab-eval: error: run dir {tmp_path}: no config.yaml, "
                                      "expected a run directory written by lmlab-train")
    unknown = lmlab_eval(f"run={tmp_path}", "scheme.nme=kfold", cwd=tmp_path)
    assert unknown.returncode == 2 and len(unknown.stderr.strip().splitlines()) == 1
    assert "scheme.nme" in unknown.stderr or "'nme'" in unknown.stderr
