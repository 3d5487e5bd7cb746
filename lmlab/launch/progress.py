"""Periodic log lines while a SLURM sweep waits on its jobs (submitit's wait is silent).

A Hydra callback: on_multirun_start starts a daemon thread that reads the sweep's job ids from
submitit's folders (<sweep dir>/.submitit/<job id>) and counts their SLURM states with one squeue
call, logging a line when the jobs are submitted, when their states change and every `every_s`
seconds; on_multirun_end stops it and says so in a done line.
"""

from __future__ import annotations

import collections
import logging
import math
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("lmlab.launch")
POLL_S = 5.0  # how often SLURM is asked; a line is logged only on a change or every every_s seconds


def job_states(sweep_dir: Path) -> collections.Counter:
    """SLURM states of the sweep's submitted jobs; jobs SLURM no longer lists count as `finished`."""
    folders = [p.name for p in (sweep_dir / ".submitit").glob("*") if p.is_dir() and p.name[0].isdigit()]
    if not folders:
        return collections.Counter()
    out = subprocess.run(["squeue", "-h", "-r", "-j", ",".join(folders), "-o", "%i %T"], capture_output=True,
                         text=True, timeout=30).stdout
    listed = dict(line.split() for line in out.splitlines() if line.strip())
    ids = set(folders) | set(listed)
    # An array's parent (123) is not a job of its own but its tasks (123_0, 123_1) are, whether they are
    # known from their folders or, before those exist, from squeue.
    jobs = [j for j in ids if not any(other.startswith(f"{j}_") for other in ids)]
    return collections.Counter(listed.get(j, "finished") for j in jobs)


class SweepProgress(Callback):
    def __init__(self, every_s: float = 60.0):
        self.every_s = every_s
        self._stop = threading.Event()

    def __getstate__(self) -> dict:  # submitit pickles the Hydra context, callbacks included
        return {"every_s": self.every_s}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        self._stop.clear()
        threading.Thread(target=self._report, args=(sweep_dir,), daemon=True, name="lmlab-sweep-progress").start()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._stop.set()
        log.info("sweep %s: done, every job has ended", config.hydra.sweep.dir)

    def _report(self, sweep_dir: Path) -> None:
        """A line as soon as the jobs are submitted (SLURM is asked every POLL_S seconds), then whenever
        their states change, and at least every every_s seconds."""
        last, last_at = None, -math.inf
        while not self._stop.wait(min(POLL_S, self.every_s)):
            try:
                states = job_states(sweep_dir)
            except (OSError, subprocess.SubprocessError) as err:
                log.warning("sweep progress: squeue failed: %s", err)
                continue
            if states and (states != last or time.monotonic() - last_at >= self.every_s):
                summary = ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items()))
                log.info("sweep %s: %d jobs: %s", sweep_dir, sum(states.values()), summary)
                last, last_at = states, time.monotonic()


SWEEP_UNFINISHED: list[str] = []  # runs the last sweep's summary found failed or missing (lmlab-train exits 1)


class SweepSummary(Callback):
    """At the end of a sweep, a table of its runs (state, loss, wall time, reason) and where they are."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from lmlab.runs.status import render, sweep_status

        if not str(config.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
            return  # a search: its sweeper reports its trials
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            status = sweep_status(sweep_dir)
        except Exception as err:  # a sweep only its sweeper can expand (a search): nothing to tabulate
            log.debug("no sweep summary for %s: %s", sweep_dir, err)
            return
        log.info("sweep done:\n%s", render(status))
        from lmlab.runs.status import FINAL

        SWEEP_UNFINISHED[:] = [r.run_id for r in status.runs if r.state not in FINAL]
