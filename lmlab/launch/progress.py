"""Periodic log lines while a SLURM sweep waits on its jobs (submitit's wait is silent).

A Hydra callback: on_multirun_start starts a daemon thread that, every `every_s` seconds, reads the
sweep's job ids from submitit's folders (<sweep dir>/.submitit/<job id>) and counts their SLURM
states with one squeue call; on_multirun_end stops it.
"""

from __future__ import annotations

import collections
import logging
import subprocess
import threading
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("lmlab.launch")


def job_states(sweep_dir: Path) -> collections.Counter:
    """SLURM states of the sweep's submitted jobs; jobs SLURM no longer lists count as `finished`."""
    names = [p.name for p in (sweep_dir / ".submitit").glob("*") if p.is_dir() and p.name[0].isdigit()]
    # an array's parent folder (123) sits beside its tasks' (123_0, 123_1): it is not a job of its own
    jobs = [n for n in names if not any(other.startswith(f"{n}_") for other in names)]
    if not jobs:
        return collections.Counter()
    out = subprocess.run(["squeue", "-h", "-r", "-j", ",".join(jobs), "-o", "%i %T"], capture_output=True, text=True,
                         timeout=30).stdout
    listed = dict(line.split() for line in out.splitlines() if line.strip())
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
        log.info("sweep %s: every job has ended", config.hydra.sweep.dir)

    def _report(self, sweep_dir: Path) -> None:
        wait = min(5.0, self.every_s)  # the first line early, then every every_s seconds
        while not self._stop.wait(wait):
            wait = self.every_s
            try:
                states = job_states(sweep_dir)
            except (OSError, subprocess.SubprocessError) as err:
                log.warning("sweep progress: squeue failed: %s", err)
                continue
            if states:
                summary = ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items()))
                log.info("sweep %s: %d jobs: %s", sweep_dir, sum(states.values()), summary)


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
