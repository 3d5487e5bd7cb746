"""Launch a ladder's runs and report each one as it ends.

Each size is one `lmlab-train -m` sweep (the commands `lmlab ladder plan` prints), limited to the
runs not completed yet, so a relaunched study starts nothing for a finished size; training itself
resumes an interrupted run from its checkpoint. `jobs` sweeps run at a time (on a cluster, every
size at once: the scheduler queues them). While they run, the
run directories are polled: one line per run that ends (size, budget, loss, wall time) with the
study's ETA, from the compute still to train at the pace reached so far.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lmlab.launch.ladder import PlannedRun, launch_commands
from lmlab.runs.record import RunRecord
from lmlab.runs.status import FINAL

ENDED = (*FINAL, "failed")
POLL_S = 1.0


@dataclass
class RunState:
    run: PlannedRun
    state: str            # completed | pruned | stopped_early | failed | running | preempted | missing
    stamp: str | None     # status.json's updated_at: tells a new ending from an old one
    loss: float | None = None
    wall_s: float | None = None
    reason: str | None = None
    tokens: int = 0       # trained so far, as of its last checkpoint (a running run's)


def run_state(run: PlannedRun, run_dir: Path) -> RunState:
    record = RunRecord(run_dir)
    status = record.status() if run_dir.is_dir() else None
    if status is None:
        return RunState(run, "missing", None)
    result = record.result() or {}
    return RunState(run, status["status"], status.get("updated_at"), result.get("final_val_loss"),
                    result.get("wall_s"), status.get("reason"), status.get("tokens") or 0)


def budget_label(run: PlannedRun) -> str:
    """budget.chinchilla_multiple=0.5 -> '0.5x Chinchilla'; budget.flops=3e+12 -> 'C=3e+12'."""
    key, value = run.budget_override.split("=")
    return f"{value}x Chinchilla" if key.endswith("chinchilla_multiple") else f"{key.split('.')[-1]}={value}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


class Progress:
    """Counts ended runs and prints one line each, with the ETA of the runs still to end."""

    def __init__(self, todo: list[PlannedRun], n_total: int, n_done_before: int, out=sys.stdout):
        self.todo_compute = sum(r.compute for r in todo)
        self.done_compute = 0.0
        self.n_total, self.n_ended = n_total, n_done_before
        self.show_seed = len({r.seed for r in todo}) > 1
        self.start = time.monotonic()
        self.out = out

    def ended(self, s: RunState, in_flight: float) -> None:
        """in_flight: the compute the running runs have trained so far (they share the machine with the ended ones)."""
        self.n_ended += 1
        self.done_compute += s.run.compute
        done = self.done_compute + in_flight
        elapsed = time.monotonic() - self.start
        left = self.todo_compute - done
        eta = elapsed * left / done if done and left > 0 else 0.0 if left <= 0 else None
        what = f"loss {s.loss:.4f}" if s.loss is not None else f"{s.state}: {s.reason or 'no reason recorded'}"
        seed = f" seed {s.run.seed}" if self.show_seed else ""
        print(f"[{self.n_ended}/{self.n_total}] {s.run.size} {budget_label(s.run)}{seed}: {what}, "
              f"{duration(s.wall_s)} | study ETA {duration(eta)}", file=self.out, flush=True)


def launch(ladder: dict, runs: list[PlannedRun], run_dirs: dict[str, Path], launcher: list[str], log_dir: Path,
           jobs: int, out=sys.stdout, trunks: list[PlannedRun] = ()) -> list[RunState]:
    """Train the runs not completed yet, `jobs` size sweeps at a time; the state of every run at the end.
    A branched ladder's trunks are launched with their size (that launch trains the branches) but not tracked."""
    before = {r.name: run_state(r, run_dirs[r.name]) for r in runs}
    todo = [r for r in runs if before[r.name].state not in FINAL]
    done = len(runs) - len(todo)
    if done:
        print(f"{done} of {len(runs)} runs already completed: not retrained", file=out, flush=True)
    if todo:
        print(f"training {len(todo)} run(s); sweep logs in {log_dir}", file=out, flush=True)
        progress = Progress(todo, len(runs), done, out)
        watch = _Watcher(todo, run_dirs, before, progress.ended)
        # the largest sweeps first, so that the last to end are short ones
        waiting = sorted(dict.fromkeys(r.size for r in todo), key=lambda size: -sum(r.compute for r in todo if r.size == size))
        running: list[subprocess.Popen] = []
        while waiting or running:
            while waiting and len(running) < jobs:
                size = waiting.pop(0)
                launched = [r for r in (*runs, *trunks) if r.size == size]
                running.append(_start(ladder, launched, launcher, log_dir / f"{size}.log"))
            time.sleep(POLL_S)
            watch.poll()
            running = [p for p in running if p.poll() is None]
        watch.poll()
        watch.finish()
    return [run_state(r, run_dirs[r.name]) for r in runs]


def _start(ladder: dict, runs: list[PlannedRun], launcher: list[str], log_path: Path) -> subprocess.Popen:
    """One size's sweep, as `lmlab ladder plan` prints it (training skips its completed runs), run by this
    Python, its output to a log file."""
    (command,) = launch_commands(ladder, runs)  # one size: one sweep
    args = shlex.split(command)[1:]  # drop the console script's name: run it with this interpreter
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:  # the subprocess's own log, not a record: appended across relaunches
        # each sweep its own folder: sweeps started in the same second would share Hydra's default one
        sweep_dir = f"hydra.sweep.dir={log_path.parent / 'sweeps' / runs[0].size}"
        return subprocess.Popen([sys.executable, "-m", "lmlab.train", *args, *launcher, sweep_dir], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


class _Watcher:
    """Calls on_end once for each run whose status turns final or failed after launch."""

    def __init__(self, runs, run_dirs, before, on_end: Callable[[RunState, float], None]):
        self.pending = {r.name: r for r in runs}
        self.run_dirs, self.before, self.on_end = run_dirs, before, on_end

    def poll(self) -> None:
        states = {name: run_state(run, self.run_dirs[name]) for name, run in self.pending.items()}
        ended = [s for name, s in states.items() if s.state in ENDED
                 and (s.state, s.stamp) != (self.before[name].state, self.before[name].stamp)]
        for s in ended:
            del self.pending[s.run.name]
        in_flight = sum(s.run.compute * min(s.tokens / s.run.tokens, 1.0) for s in states.values()
                        if s.state == "running")
        for s in ended:
            self.on_end(s, in_flight)

    def finish(self) -> None:
        """Runs whose sweep ended without them ending (a killed job): reported as they are."""
        for name, run in list(self.pending.items()):
            s = run_state(run, self.run_dirs[name])
            s.reason = s.reason or f"its sweep ended while the run was {s.state}"
            del self.pending[name]
            self.on_end(s, 0.0)
