"""The run record: one directory per run, every file written atomically.

Layout (the contract every later stage reads):
  config.yaml     the resolved config
  env.json        versions, git commit, host, SLURM ids
  status.json     running | completed | failed | preempted | interrupted, with the reason
  plan.json       what the run will be, written at its start: N, FLOPs per token, planned steps and tokens
  metrics.jsonl   appended rows (train rows carry train_loss, validation rows carry val_loss)
  result.json     written once at the end
  checkpoints/last.ckpt
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import fcntl
import json
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from lmlab.errors import LmlabError
from lmlab.io import append_jsonl, read_json, read_jsonl, write_atomic, write_json, write_jsonl

CONFIG = "config.yaml"
ENV = "env.json"
STATUS = "status.json"
METRICS = "metrics.jsonl"
RESULT = "result.json"
PLAN = "plan.json"
CHECKPOINT = Path("checkpoints") / "last.ckpt"
PREVIOUS_CHECKPOINT = Path("checkpoints") / "previous.ckpt"  # the one before last, kept in case last is damaged
LOCK = ".lock"

# Keys that change where output goes or how it is shown, not what is trained.
NON_IDENTITY_KEYS = (
    "paths",
    "logger",
    "run.name",
    "run.resume",
    "data.dir",
    "data.prepare",
    "data.verify_checksums",
    "trainer.log_every_steps",
    "trainer.ckpt_every_steps",
    "trainer.peak_flops",
    "trainer.progress_bar",
    "trainer.strategy",  # how devices share the work, not what is trained
    "trainer.activation_checkpointing",
    "trainer.gpu",
    "audit",  # bias audits observe training
    "tune",  # a search trial's bookkeeping: the same hyper-parameters are the same run
    "eval",  # in-loop task evaluation observes training, it does not change it
    "prediction",  # what `lmlab plan` predicted for the run: a record about it, not part of it
    "forecast",  # the live forecast observes training; its stop ends a run like a search's pruning
)

SLURM_VARS = {
    "job_id": "SLURM_JOB_ID",
    "array_job_id": "SLURM_ARRAY_JOB_ID",
    "array_task_id": "SLURM_ARRAY_TASK_ID",
    "node_list": "SLURM_JOB_NODELIST",
    "partition": "SLURM_JOB_PARTITION",
    "ntasks": "SLURM_NTASKS",
    "restart_count": "SLURM_RESTART_COUNT",
}


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _drop_key(cfg: dict, dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    node = cfg
    for p in parents:
        node = node.get(p)
        if not isinstance(node, dict):
            return
    node.pop(leaf, None)


def identity(cfg: dict) -> dict:
    """The part of a resolved config that decides what is trained."""
    ident = json.loads(json.dumps(cfg, default=str))
    for key in NON_IDENTITY_KEYS:
        _drop_key(ident, key)
    return ident


def config_hash(cfg: dict) -> str:
    blob = json.dumps(identity(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def environment() -> dict:
    versions = {}
    for pkg in ("lmlab", "torch", "lightning", "hydra-core", "omegaconf", "datasets", "tokenizers", "numpy", "submitit"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    slurm = {k: os.environ[v] for k, v in SLURM_VARS.items() if v in os.environ}
    return {
        "versions": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "torch_threads": _torch_threads(),
        "slurm": slurm or None,
        "started_at": now_iso(),
        **_git_state(),
    }


def _torch_threads() -> int:
    """torch's CPU threads in this process (set by trainer.threads, or OMP_NUM_THREADS from a launcher)."""
    import torch

    return torch.get_num_threads()


def _git_state() -> dict:
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return {"git_commit": None, "git_dirty": None}
    if commit.returncode != 0:
        return {"git_commit": None, "git_dirty": None}
    return {"git_commit": commit.stdout.strip(), "git_dirty": bool(dirty.stdout.strip())}


class RunRecord:
    """Reads and writes the files of one run directory."""

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)

    @property
    def checkpoint(self) -> Path:
        return self.dir / CHECKPOINT

    @property
    def metrics_path(self) -> Path:
        return self.dir / METRICS

    def write_config(self, cfg: dict) -> None:
        write_atomic(self.dir / CONFIG, yaml.safe_dump(cfg, sort_keys=False))

    def write_env(self) -> None:
        write_json(self.dir / ENV, environment())

    def set_status(self, status: str, reason: str | None = None, **progress: Any) -> None:
        slurm_job = os.environ.get("SLURM_JOB_ID")
        write_json(self.dir / STATUS, {
            "status": status, "reason": reason, "updated_at": now_iso(),
            "host": socket.gethostname(), "slurm_job_id": slurm_job, **progress,
        })

    def status(self) -> dict | None:
        path = self.dir / STATUS
        return read_json(path) if path.exists() else None

    def write_plan(self, plan: dict) -> None:
        write_json(self.dir / PLAN, plan)

    def plan(self) -> dict | None:
        path = self.dir / PLAN
        return read_json(path) if path.exists() else None

    def result(self) -> dict | None:
        path = self.dir / RESULT
        return read_json(path) if path.exists() else None

    def write_result(self, result: dict) -> None:
        write_json(self.dir / RESULT, result)

    def append_metrics(self, row: dict) -> None:
        append_jsonl(self.metrics_path, row)

    def truncate_metrics(self, after_step: int) -> None:
        """On resume, drop rows logged after the checkpoint so the curve has no duplicated steps."""
        write_jsonl(self.metrics_path, [r for r in read_jsonl(self.metrics_path) if r.get("step", 0) <= after_step])

    @property
    def previous_checkpoint(self) -> Path:
        return self.dir / PREVIOUS_CHECKPOINT

    def set_aside(self, path: Path) -> Path:
        """Rename a damaged file out of the way (kept for inspection, never loaded again)."""
        aside = path.with_name(f"{path.name}.corrupt-{_dt.datetime.now().strftime('%Y%m%dT%H%M%S')}")
        os.replace(path, aside)
        return aside

    def lock(self) -> "RunLock":
        return RunLock(self.dir / LOCK)


class RunInUse(LmlabError):
    """Another process holds the run directory's lock."""


class RunLock:
    """An exclusive lock on a run directory while a process trains in it (flock: released by the
    kernel when the process dies, so a killed run never leaves a stale lock; local file systems only,
    flock is unreliable on some NFS setups). The lock file names its holder."""

    def __init__(self, path: Path):
        self.path, self._fd = Path(path), None

    def __enter__(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunInUse(f"run dir {self.path.parent} is in use by {holder}: wait for it to finish, "
                           f"or stop it and relaunch to resume") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {now_iso()}".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing releases the flock
            self._fd = None


def load_run(run_dir: Path) -> dict:
    """Everything a collector needs from one run directory."""
    from lmlab.runs.load import load_config

    rec = RunRecord(run_dir)
    config = load_config(rec.dir)
    env_path = rec.dir / ENV
    return {
        "dir": str(rec.dir),
        "config": config,
        "env": read_json(env_path) if env_path.exists() else None,
        "status": rec.status(),
        "plan": rec.plan(),
        "result": rec.result(),
        "metrics_path": str(rec.metrics_path),
    }


def find_runs(root: Path) -> list[Path]:
    """Every run directory (one holding config.yaml) under root, sorted."""
    # hidden folders below root hold Hydra's records and the trunks of branched launches (lmlab.train.branches)
    return sorted(p.parent for p in Path(root).rglob(CONFIG)
                  if not any(part.startswith(".") for part in p.relative_to(root).parts))
