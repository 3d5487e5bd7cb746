"""Cluster profiles: what each composes into, and a parallel local sweep for real."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import lmlab.config  # noqa: F401
from tests.conftest import CONF, REPO


def launcher(*overrides: str, conf=CONF):
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    return cfg.hydra, cfg


def test_local_runs_in_this_process():
    hydra, _ = launcher("cluster=local")
    assert hydra.launcher._target_.endswith("BasicLauncher")


def test_local_parallel_uses_submitit_processes():
    hydra, _ = launcher("cluster=local_parallel")
    assert hydra.launcher._target_.endswith("lmlab_submitit_launcher.TolerantLocalLauncher")


def test_slurm_starts_one_task_per_device_and_checks_before_submitting():
    hydra, cfg = launcher("cluster=slurm", "trainer.devices=4", "trainer.nodes=2",
                          "hydra.launcher.partition=gpu", "hydra.launcher.account=lab")
    params = OmegaConf.to_container(hydra.launcher, resolve=True)
    assert params["_target_"].endswith("lmlab_submitit_launcher.TolerantSlurmLauncher")
    assert params["tasks_per_node"] == 4 and params["nodes"] == 2
    assert params["partition"] == "gpu" and params["account"] == "lab"
    assert params["max_num_timeout"] > 0  # a time-out requeues the run instead of failing it
    assert {c._target_ for c in hydra.callbacks.values()} == {
        "lmlab.launch.preflight.SlurmPreflight", "lmlab.launch.progress.SweepProgress",
        "lmlab.launch.progress.SweepSummary"}


def test_slurm_gpu_asks_for_one_gpu_per_device():
    hydra, cfg = launcher("cluster=slurm_gpu", "trainer.devices=8")
    params = OmegaConf.to_container(hydra.launcher, resolve=True)
    assert params["gpus_per_node"] == params["tasks_per_node"] == 8
    assert cfg.trainer.accelerator == "gpu"


def test_site_settings_in_conf_local_override_the_profile_and_the_command_line_wins(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf, ignore=shutil.ignore_patterns("local"))
    (conf / "local" / "cluster").mkdir(parents=True)
    (conf / "local" / "cluster" / "slurm.yaml").write_text(
        "hydra:\n  launcher:\n    partition: gpu\n    setup: [source /opt/venv/bin/activate]\n")
    hydra, _ = launcher("cluster=slurm", conf=conf)
    assert hydra.launcher.partition == "gpu" and list(hydra.launcher.setup) == ["source /opt/venv/bin/activate"]
    hydra, _ = launcher("cluster=slurm", "hydra.launcher.partition=debug", conf=conf)
    assert hydra.launcher.partition == "debug"
    hydra, _ = launcher("cluster=slurm_gpu", conf=conf)
    assert hydra.launcher.partition == "gpu"
    hydra, _ = launcher("cluster=slurm")  # without the site file: the cluster's default partition
    assert hydra.launcher.partition is None


def when(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso)


@pytest.mark.slow
def test_a_local_parallel_sweep_runs_its_jobs_at_the_same_time(tmp_path, data_root):
    env = {**os.environ, "LMLAB_RUNS_DIR": str(tmp_path), "LMLAB_DATA_DIR": str(data_root)}
    done = subprocess.run([sys.executable, "-m", "lmlab.train", "-m", "cluster=local_parallel", "debug=fast",
                           "trainer.threads=1", "run.group=par", "seed=0,1"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = sorted((tmp_path / "par").iterdir())
    assert len(runs) == 2
    env_a, env_b = (json.loads((r / "env.json").read_text()) for r in runs)
    end_a, end_b = (json.loads((r / "status.json").read_text())["updated_at"] for r in runs)
    assert all(json.loads((r / "result.json").read_text())["status"] == "completed" for r in runs)
    assert env_a["pid"] != env_b["pid"]
    assert when(env_a["started_at"]) < when(end_b) and when(env_b["started_at"]) < when(end_a)  # overlapping


@pytest.mark.slow
def test_local_parallel_gives_each_job_its_share_of_the_cores_and_logs_each_one_done(tmp_path, data_root):
    """cpus_per_task = every core: the jobs take turns (none oversubscribes the machine), each with that
    many torch threads, and each is a log line when it ends."""
    cores = len(os.sched_getaffinity(0))
    env = {**os.environ, "LMLAB_RUNS_DIR": str(tmp_path), "LMLAB_DATA_DIR": str(data_root)}
    done = subprocess.run([sys.executable, "-m", "lmlab.train", "-m", "cluster=local_parallel", "debug=fast",
                           f"hydra.launcher.cpus_per_task={cores}", "run.group=share", "seed=0,1"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = sorted((tmp_path / "share").iterdir())
    envs = [json.loads((r / "env.json").read_text()) for r in runs]
    assert [e["torch_threads"] for e in envs] == [cores, cores]
    spans = sorted((when(e["started_at"]), when(json.loads((r / "status.json").read_text())["updated_at"]))
                   for e, r in zip(envs, runs))
    assert spans[1][0] >= spans[0][1], "the second job started before the first ended"
    out = done.stdout + done.stderr
    assert f"2 job(s), 1 at a time, {cores} thread(s) each" in out
    assert out.count(" done (") == 2 and "done (2/2)" in out
