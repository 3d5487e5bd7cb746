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
import json
import os
import platform
import socket
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

CONFIG = "config.yaml"
ENV = "env.json"
STATUS = "status.json"
METRICS = "metrics.jsonl"
RESULT = "result.json"
PLAN = "plan.json"
CHECKPOINT = Path("checkpoints") / "last.ckpt"

# Keys that change where output goes or how it is shown, not what is trained.
NON_IDENTITY_KEYS = (
    "paths",
    "logger",
    "run.name",
    "data.dir",
    "data.prepare",
    "data.verify_checksums",
    "trainer.log_every_steps",
    "trainer.ckpt_every_steps",
    "trainer.peak_flops",
    "trainer.progress_bar",
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


_UMASK = os.umask(0)
os.umask(_UMASK)


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over the target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; records are meant to be shared
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> Any:
    with open(path) as f:
        return json.load(f)


def append_jsonl(path: Path, row: dict) -> None:
    """Append one line; a single write() of a whole line keeps a crash from leaving half a row."""
    with open(path, "a") as f:
        f.write(json.dumps(row, default=float) + "\n")


def read_jsonl(path: Path) -> list[dict]:
    """Read rows, dropping a last line cut short by a crash."""
    rows = []
    if not Path(path).exists():
        return rows
    with open(path) as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return rows


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


def run_id(cfg: dict, budget_tag: str) -> str:
    name = cfg.get("run", {}).get("name") or cfg["model"]["size"]
    return f"{name}-{budget_tag}-s{cfg['seed']}-{config_hash(cfg)[:8]}"


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
        "slurm": slurm or None,
        "started_at": now_iso(),
        **_git_state(),
    }


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
        write_json_atomic(self.dir / ENV, environment())

    def set_status(self, status: str, reason: str | None = None, **progress: Any) -> None:
        slurm_job = os.environ.get("SLURM_JOB_ID")
        write_json_atomic(self.dir / STATUS, {
            "status": status, "reason": reason, "updated_at": now_iso(),
            "host": socket.gethostname(), "slurm_job_id": slurm_job, **progress,
        })

    def status(self) -> dict | None:
        path = self.dir / STATUS
        return read_json(path) if path.exists() else None

    def write_plan(self, plan: dict) -> None:
        write_json_atomic(self.dir / PLAN, plan)

    def plan(self) -> dict | None:
        path = self.dir / PLAN
        return read_json(path) if path.exists() else None

    def result(self) -> dict | None:
        path = self.dir / RESULT
        return read_json(path) if path.exists() else None

    def write_result(self, result: dict) -> None:
        write_json_atomic(self.dir / RESULT, result)

    def append_metrics(self, row: dict) -> None:
        append_jsonl(self.metrics_path, row)

    def truncate_metrics(self, after_step: int) -> None:
        """On resume, drop rows logged after the checkpoint so the curve has no duplicated steps."""
        rows = [r for r in read_jsonl(self.metrics_path) if r.get("step", 0) <= after_step]
        write_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in rows))


def load_run(run_dir: Path) -> dict:
    """Everything a collector needs from one run directory."""
    rec = RunRecord(run_dir)
    with open(rec.dir / CONFIG) as f:
        config = yaml.safe_load(f)
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
    return sorted(p.parent for p in Path(root).rglob(CONFIG) if ".hydra" not in p.parts)
