"""The installed console scripts work from any directory, as a user types them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("script,key", [("lmlab-train", "model"), ("lmlab-prepare", "source")])
def test_hydra_scripts_find_their_configs_from_anywhere(tmp_path, script, key):
    proc = subprocess.run([str(BIN / script), "--cfg", "job"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert key in yaml.safe_load(proc.stdout)


def test_lmlab_lists_its_commands(tmp_path):
    proc = subprocess.run([str(BIN / "lmlab"), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for command in ("sizes", "scrub", "fit", "plan", "predict", "runs", "ladder", "launch"):
        assert f"    {command} " in proc.stdout
