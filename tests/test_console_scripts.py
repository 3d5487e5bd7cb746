"""The installed console scripts work from any directory, as a user types them."""

from __future__ import annotations

import os
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


@pytest.mark.slow
def test_a_non_editable_install_runs_from_another_directory(tmp_path):
    """pip install . (not -e): the configs and templates ship inside the package, so the commands work
    from any directory without the checkout."""
    repo = Path(__file__).resolve().parents[1]
    target = tmp_path / "site"
    built = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                            "--target", str(target), str(repo)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}

    def run(*args):
        proc = subprocess.run([sys.executable, *args], cwd=work, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout

    assert run("-c", "import lmlab; print(lmlab.__file__)").strip() == str(target / "lmlab" / "__init__.py")
    assert yaml.safe_load(run("-m", "lmlab.train", "--cfg", "job", "model.size=14k"))["model"]["size"] == "14k"
    assert "lmlab-train -m run.group=quickstart" in run("-m", "lmlab.cli", "ladder", "plan", "cpu_grid")
    assert "srun" in run("-m", "lmlab.cli", "launch", "render", "--nodes", "2", "model.size=14k")
