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


def test_lmlab_finetune_explains_itself_and_refuses_bad_input_in_one_line(tmp_path):
    def run(*args):
        return subprocess.run([str(BIN / "lmlab-finetune"), *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)

    shown = run("--help")
    assert shown.returncode == 0 and "lmlab-finetune pretrained=<run dir>" in shown.stdout
    assert "mode=head|masked" in shown.stdout
    refused = run(f"pretrained={tmp_path}", "mode=masked")
    assert refused.returncode == 2
    assert refused.stderr.strip() == (f"lmlab-finetune: error: run dir {tmp_path}: no config.yaml, "
                                      "expected a run directory written by lmlab-train")
    mode = run(f"pretrained={tmp_path}", "mode=lm")
    assert mode.returncode == 2 and len(mode.stderr.strip().splitlines()) == 1 and "mode" in mode.stderr
    assert "head" in mode.stderr and "masked" in mode.stderr  # what was expected
