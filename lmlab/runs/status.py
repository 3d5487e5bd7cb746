"""`lmlab runs status <dir>`: expected vs completed, running, failed (with the reason) and missing runs.

<dir> is a Hydra sweep directory (it holds multirun.yaml): the expected runs are the sweep's jobs,
each composed again from the recorded overrides to find its run directory. <dir> may also be any
directory of run directories (a run group): then the expected runs are those found.

A run whose status.json still says running or preempted is checked against SLURM (squeue, then
sacct): a job that SLURM cancelled or killed is reported failed with SLURM's state, so a dead job
never shows as running forever.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from lmlab.config import expand_sweep  # noqa: F401  (used by sweeps below and by tests)
from lmlab.errors import ConfigError

STATES = ("completed", "pruned", "stopped_early", "running", "failed", "missing")
FINAL = ("completed", "pruned", "stopped_early")  # ended on purpose: never rerun (pruned by a search, early stopping)
SLURM_ALIVE = {"PENDING", "RUNNING", "REQUEUED", "RESIZING", "SUSPENDED", "COMPLETING", "CONFIGURING",
               "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT", "STOPPED", "PREEMPTED"}


@dataclass
class RunState:
    run_id: str
    state: str  # one of STATES
    reason: str | None = None
    overrides: list[str] = field(default_factory=list)  # the sweep job's overrides (empty for a found run)
    loss: float | None = None  # final validation loss of a completed run
    wall_s: float | None = None


@dataclass
class SweepStatus:
    directory: Path
    runs: list[RunState]
    launcher: list[str] = field(default_factory=list)  # the sweep's hydra.* overrides (launcher settings)

    def count(self, state: str) -> int:
        return sum(r.state == state for r in self.runs)

    def rerun_commands(self) -> list[str]:
        """Commands that rerun what failed or is missing (completed runs are skipped by training)."""
        todo = [r for r in self.runs if r.state in ("failed", "missing")]
        if not todo:
            return []
        if not todo[0].overrides:  # found runs without a sweep: rerun from the overrides their config implies
            return [self._rerun_found(r.run_id) for r in todo]
        merged = _merge_single_varying_key([r.overrides for r in todo])
        return [" ".join(["lmlab-train", "-m", *map(shlex.quote, o + self.launcher)]) for o in merged]

    def _rerun_found(self, run_id: str) -> str:
        try:
            return "lmlab-train " + " ".join(map(shlex.quote, rerun_overrides(self.directory / run_id)))
        except ConfigError as err:  # one tampered run does not hide the others
            return f"# {run_id}: {err}"


def _merge_single_varying_key(jobs: list[list[str]]) -> list[list[str]]:
    """One sweep command if the jobs differ in one override only (seed=1,3), else one per job."""
    if len(jobs) == 1:
        return jobs
    varying = [i for i in range(len(jobs[0])) if len({j[i] for j in jobs}) > 1]
    same_keys = all(len(j) == len(jobs[0]) and [o.split("=")[0] for o in j] == [o.split("=")[0] for o in jobs[0]]
                    for j in jobs)
    if same_keys and len(varying) == 1:
        i = varying[0]
        key = jobs[0][i].split("=", 1)[0]
        values = ",".join(j[i].split("=", 1)[1] for j in jobs)
        return [jobs[0][:i] + [f"{key}={values}"] + jobs[0][i + 1:]]
    return jobs


def _runs_dir_of(sweep_dir: Path, sweep_pattern: str) -> Path | None:
    """runs_dir from the sweep dir when hydra.sweep.dir is `${paths.runs_dir}/a/b/c` (the default)."""
    prefix = "${paths.runs_dir}/"
    if not sweep_pattern.startswith(prefix):
        return None
    depth = len(sweep_pattern[len(prefix):].strip("/").split("/"))
    return sweep_dir.parents[depth - 1]


def expected_run_dir(config_dir: str, config_name: str, overrides: list[str]) -> Path:
    """Compose one job's config as training would; its directory comes from the run spec."""
    from hydra import compose

    from lmlab.runspec import plain, run_location
    from lmlab.config import hydra_context, register

    register()  # the schema the train config composes onto
    with hydra_context(Path(config_dir)):
        cfg = compose(config_name=config_name, overrides=overrides)
    return run_location(plain(cfg))[1]


def rerun_overrides(run_dir: Path) -> list[str]:
    """The overrides that compose lmlab's own config into this run's config: its config.yaml's values
    that differ from the defaults, each one a value of the typed schema (never a file of the run's
    that could name callables). Checked: composing them lands in the same run directory."""
    from lmlab.runs.load import load_config
    from lmlab.runspec import plain, run_location
    from lmlab.config import compose_train

    config = load_config(run_dir)
    defaults = plain(compose_train([]))
    foreign = sorted(set(config) - set(defaults))
    if foreign:
        raise ConfigError(f"{run_dir}/config.yaml holds key(s) {', '.join(foreign)} that lmlab's training config "
                          f"does not have: refusing to rerun from it")
    overrides = [f"{key}={_override_value(key, value)}" for key, value in _leaves(config)
                 if key != "paths.runs_dir" and _lookup(defaults, key) != value]
    # where the run is now, so the command works from any directory
    runs_dir = run_dir.resolve().parents[len(str(config["run"]["group"]).split("/"))]
    overrides.append(f"paths.runs_dir={_override_value('paths.runs_dir', str(runs_dir))}")
    try:
        composed = plain(compose_train(overrides))
    except Exception as err:
        raise ConfigError(f"{run_dir}/config.yaml does not compose into a training config: "
                          f"{str(err).splitlines()[0]}") from None
    if run_location(composed)[0] != run_dir.name:
        raise ConfigError(f"{run_dir}/config.yaml was changed after the run began (its config no longer "
                          f"names this directory)")
    return overrides


def _leaves(node: dict, prefix: str = ""):
    for key, value in node.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _lookup(node: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return object()  # differs from every value
        node = node[part]
    return node


def _override_value(key: str, value) -> str:
    """A Hydra override value for a plain config value; interpolations are refused (they could read
    the environment)."""
    import json

    if isinstance(value, str):
        if "${" in value or "'" in value or "\\" in value:
            raise ConfigError(f"config value {key}={value!r}: holds characters a rerun command cannot carry")
        # a plain path or name stays bare (so the command reads as typed); anything else is quoted for Hydra
        bare = re.fullmatch(r"[A-Za-z_/.][A-Za-z0-9_./:+-]*", value) and value.lower() not in ("true", "false", "null")
        return value if bare else f"'{value}'"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def load_sweep(sweep_dir: Path) -> tuple[list[list[str]], list[Path], list[str]]:
    """(job overrides, run directories, hydra.* overrides but the mode) of a Hydra sweep directory."""
    from omegaconf import OmegaConf

    meta = OmegaConf.load(sweep_dir / "multirun.yaml")
    hydra_cfg = meta.hydra
    task = list(hydra_cfg.overrides.task)
    main = [s.path for s in hydra_cfg.runtime.config_sources if s.provider == "main"]
    if not main:
        raise ConfigError(f"{sweep_dir}/multirun.yaml: no main config source recorded")
    config_dir = main[0].removeprefix("file://")
    runs_dir = _runs_dir_of(sweep_dir, OmegaConf.to_container(hydra_cfg.sweep, resolve=False)["dir"])
    pin = [f"paths.runs_dir={runs_dir}"] if runs_dir else []
    jobs = expand_sweep(task)
    dirs = [expected_run_dir(config_dir, hydra_cfg.job.config_name, job + pin) for job in jobs]
    launcher = [o for o in hydra_cfg.overrides.hydra if not o.startswith("hydra.mode=")]
    return jobs, dirs, launcher


def slurm_state(job_id: str) -> str | None:
    """SLURM's state of a job (squeue while it is known there, else sacct); None if SLURM is not here."""
    for cmd in (["squeue", "-h", "-j", job_id, "-o", "%T"], ["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State"]):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
        except (FileNotFoundError, subprocess.TimeoutExpired):
            return None
        lines = [line.strip() for line in out.splitlines() if line.strip()]
        if lines:
            return lines[-1]  # e.g. "RUNNING", "CANCELLED by 0"
    return None


def _at_step(status: dict) -> str:
    return f" at step {status['step']}" if status.get("step") is not None else ""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_state(run_dir: Path, overrides: list[str]) -> RunState:
    from lmlab.io import read_json
    from lmlab.runs.record import RunRecord

    rec = RunRecord(run_dir)
    name = run_dir.name
    result = rec.result()
    if result is not None:
        state = result["status"] if result["status"] in FINAL else "failed"
        return RunState(name, state, result.get("reason"), overrides, result.get("final_val_loss"), result.get("wall_s"))
    status = rec.status()
    if status is None:
        return RunState(name, "missing", None, overrides)
    if status["status"] in (*FINAL, "failed"):
        return RunState(name, status["status"], status.get("reason"), overrides)
    job = status.get("slurm_job_id")
    if job:
        state = slurm_state(str(job))
        if state is not None and state.split()[0] not in SLURM_ALIVE:
            return RunState(name, "failed", f"SLURM job {job} {state}{_at_step(status)}", overrides)
        return RunState(name, "running", f"SLURM job {job} {state or 'unknown'}, {status['status']}{_at_step(status)}",
                        overrides)
    env_path = run_dir / "env.json"
    env = read_json(env_path) if env_path.exists() else {}
    if env.get("host") == status.get("host") == os.uname().nodename and env.get("pid") and not _pid_alive(env["pid"]):
        return RunState(name, "failed", f"process {env['pid']} is gone ({status['status']}{_at_step(status)}): "
                                        "relaunch to resume", overrides)
    return RunState(name, "running", f"{status['status']}{_at_step(status)}", overrides)


def sweep_status(directory: Path) -> SweepStatus:
    from lmlab.runs.record import find_runs

    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"runs status: {directory} is not a directory")
    if (directory / "multirun.yaml").exists():
        jobs, dirs, launcher = load_sweep(directory)
        return SweepStatus(directory, [run_state(d, job) for d, job in zip(dirs, jobs)], launcher)
    found = find_runs(directory)
    if not found:
        raise ConfigError(f"runs status: {directory} holds neither multirun.yaml (a sweep) nor run directories")
    return SweepStatus(directory, [run_state(d, []) for d in found])


def render(status: SweepStatus) -> str:
    width = max(len(r.run_id) for r in status.runs)

    def cell(value, fmt, unit=""):
        return format(value, fmt) + unit if value is not None else "-"

    lines = [f"{'run':<{width}}  {'state':<9}  {'val loss':>8}  {'wall':>7}  reason"]
    lines += [f"{r.run_id:<{width}}  {r.state:<9}  {cell(r.loss, '8.4f'):>8}  {cell(r.wall_s, '.0f', 's'):>7}  "
              f"{r.reason or ''}".rstrip() for r in status.runs]
    counts = ", ".join(f"{status.count(s)} {s}" for s in STATES)
    lines += ["", f"{status.directory}: {len(status.runs)} expected: {counts}"]
    commands = status.rerun_commands()
    if commands:
        lines += ["rerun what failed or is missing (completed runs are skipped):", *(f"  {c}" for c in commands)]
    return "\n".join(lines)
