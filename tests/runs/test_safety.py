"""A run directory is a contract: locked while training, nothing in it can execute code, a damaged
checkpoint is set aside, and any failure (a full disk included) leaves a status saying what happened."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest
import yaml

from lmlab.cli import main
from lmlab.runs.status import rerun_overrides
from tests.conftest import run_cli
from tests.train.conftest import FAST

pytestmark = pytest.mark.slow


class Payload:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def train(overrides, **kwargs):
    return run_cli(["-m", "lmlab.train", *overrides], timeout=300, **kwargs)


@pytest.fixture
def base(data_root, tmp_path):
    return [f"paths.data_dir={data_root}", f"paths.runs_dir={tmp_path / 'runs'}", *FAST, "budget.tokens=20480"]


def the_run(tmp_path):
    [run_dir] = (tmp_path / "runs" / "default").iterdir()
    return run_dir


def test_a_malicious_or_garbage_checkpoint_never_runs_and_is_set_aside(base, tmp_path):
    done = train(base)
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = the_run(tmp_path)
    reference = json.loads((run_dir / "result.json").read_text())["final_val_loss"]
    # An attacker (or a bad disk) replaces both checkpoints and the run is made to look interrupted.
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    with open(run_dir / "checkpoints" / "last.ckpt", "wb") as f:
        pickle.dump({"state_dict": Payload(marker), "global_step": 1}, f)
    (run_dir / "checkpoints" / "previous.ckpt").write_bytes(b"\x00garbage")
    (run_dir / "result.json").unlink()

    again = train(base)
    assert again.returncode == 0, again.stderr[-2000:]
    assert not marker.exists(), "loading the checkpoint executed code"
    aside = sorted(p.name for p in (run_dir / "checkpoints").glob("*.corrupt-*"))
    assert [a.split(".corrupt-")[0] for a in aside] == ["last.ckpt", "previous.ckpt"]
    # with no sound checkpoint left the run started afresh, and ends exactly where the first one did
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "completed" and result["final_val_loss"] == reference
    assert "set aside" in again.stdout + again.stderr


def test_a_rerun_command_never_takes_callables_from_the_run_directory(base, tmp_path, capsys):
    killed = subprocess.Popen([sys.executable, "-m", "lmlab.train", *base, "budget.tokens=2e6"], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "runs").glob("default/*/status.json")):
        assert time.monotonic() < deadline and killed.poll() is None
        time.sleep(0.2)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    run_dir = the_run(tmp_path)
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    planted = {**config, "hydra": {"callbacks": {"x": {"_target_": "os.system", "command": f"touch {marker}"}}}}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(planted))
    assert main(["runs", "status", str(tmp_path / "runs" / "default")]) == 1
    out = capsys.readouterr()
    assert "hydra" in (out.out + out.err) and "refusing to rerun" in out.out + out.err
    assert "--config-dir" not in out.out
    # the clean config gives a command that composes from lmlab's own config and lands in the same run
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    overrides = rerun_overrides(run_dir)
    assert all(not o.startswith(("hydra", "+", "~")) for o in overrides)
    shown = train([*overrides, "--cfg", "job"])  # the command composes (tests/launch/test_status.py runs one to the end)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert yaml.safe_load(shown.stdout)["budget"]["tokens"] == 2e6 and not marker.exists()


def test_a_second_launch_of_a_running_run_refuses_naming_the_holder(base, tmp_path):
    first = subprocess.Popen([sys.executable, "-m", "lmlab.train", *base, "budget.tokens=2e6"], cwd=tmp_path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "runs").glob("default/*/metrics.jsonl")):
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.2)
        second = train([*base, "budget.tokens=2e6"])
        assert second.returncode == 2
        [line] = second.stderr.strip().splitlines()
        assert f"is in use by pid {first.pid}" in line
        rows = (the_run(tmp_path) / "metrics.jsonl").read_text().splitlines()
        assert len({json.loads(r)["step"] for r in rows if "train_loss" in r}) == sum("train_loss" in r for r in rows)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounting a small tmpfs needs root")
def test_a_full_disk_leaves_a_failed_status_and_no_temporary_files(base, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        proc = train([*base, f"paths.runs_dir={disk}", "trainer.ckpt_every_steps=1"])
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert "No space left on device" in proc.stderr.strip().splitlines()[-1]
        [run_dir] = (disk / "default").iterdir()
        status = json.loads((run_dir / "status.json").read_text())
        assert status["status"] == "failed" and "No space left on device" in status["reason"]
        assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]
    finally:
        subprocess.run(["umount", str(disk)], check=False)
