"""lmlab's submitit launchers: Hydra's, except that a job SLURM cancelled or killed does not end the
sweep in a traceback. Its result is NaN (as for a run that failed inside lmlab-train), the sweep goes
on, and lmlab's sweep summary (lmlab.launch.progress.SweepSummary) reports each run's state.

Hydra's launcher collects every job's result with submitit's Job.results(), which raises for a job that
never returned. Only that call is made tolerant, and only while this launcher collects its jobs.

The local launcher (cluster=local_parallel) also shares the machine's cores between its jobs instead of
oversubscribing them, and logs each job as it finishes (TolerantLocalLauncher).
"""


import contextlib
import logging
import math
import os
import threading
from dataclasses import dataclass
from typing import Iterator

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf, SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher

log = logging.getLogger("lmlab.launch")


@contextlib.contextmanager
def tolerant_results() -> Iterator[None]:
    from submitit.core.core import Job
    from submitit.core.utils import FailedJobError, UncompletedJobError

    strict = Job.results

    def results(job):
        try:
            return strict(job)
        except (UncompletedJobError, FailedJobError) as err:
            log.error("job %s ended without a result: %s", job.job_id, str(err).strip().splitlines()[0])
            return [_died()]

    Job.results = results
    try:
        yield
    finally:
        Job.results = strict


def _died():
    from hydra.core.utils import JobReturn, JobStatus

    ret = JobReturn()
    ret.status, ret.return_value = JobStatus.COMPLETED, math.nan  # the sweep goes on; the summary says why
    return ret


class TolerantSlurmLauncher(SlurmLauncher):
    def launch(self, job_overrides, initial_job_idx):
        with tolerant_results():
            return super().launch(job_overrides, initial_job_idx)


class TolerantLocalLauncher(LocalLauncher):
    """submitit's local executor starts every job at once, each with as many threads as the machine has
    cores: six jobs on two cores ran 4x slower than one after the other. Here at most
    cores // cpus_per_task jobs run at a time (a new one starts as soon as one ends), each limited to
    cpus_per_task threads (OMP_NUM_THREADS, which torch follows), and each finished job is a log line."""

    def launch(self, job_overrides, initial_job_idx):
        from concurrent.futures import ThreadPoolExecutor

        threads = int(self.params.get("cpus_per_task") or 1)
        parallel = max(1, min(len(job_overrides), available_cores() // threads))
        log.info("%d job(s), %d at a time, %d thread(s) each", len(job_overrides), parallel, threads)
        progress = JobProgress(len(job_overrides))
        one = super().launch

        def run_one(k):
            (ret,) = one([job_overrides[k]], initial_job_idx + k)
            progress.done(initial_job_idx + k, job_overrides[k], ret)
            return ret

        with tolerant_results(), thread_env(threads), ThreadPoolExecutor(parallel) as pool:
            return list(pool.map(run_one, range(len(job_overrides))))


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextlib.contextmanager
def thread_env(threads: int) -> Iterator[None]:
    """The jobs' thread count, through the environment submitit hands to each job."""
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {n: os.environ.get(n) for n in names}
    os.environ.update({n: str(threads) for n in names})
    try:
        yield
    finally:
        for n, v in saved.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


class JobProgress:
    """One log line per finished job: how many are done, the job, its final validation loss."""

    def __init__(self, total: int):
        self.total, self.finished, self.lock = total, 0, threading.Lock()

    def done(self, idx: int, overrides, ret) -> None:
        value = ret.return_value if ret.status.name == "COMPLETED" else None  # return_value raises for a failure
        loss = f"val loss {value:.4f}" if isinstance(value, float) and math.isfinite(value) else "no result"
        with self.lock:
            self.finished += 1
            log.info("job #%d done (%d/%d): %s: %s", idx, self.finished, self.total, " ".join(overrides), loss)


@dataclass
class LmlabSlurmConf(SlurmQueueConf):
    _target_: str = "hydra_plugins.lmlab_launcher.lmlab_submitit_launcher.TolerantSlurmLauncher"


@dataclass
class LmlabLocalConf(LocalQueueConf):
    _target_: str = "hydra_plugins.lmlab_launcher.lmlab_submitit_launcher.TolerantLocalLauncher"


ConfigStore.instance().store(group="hydra/launcher", name="lmlab_slurm", node=LmlabSlurmConf, provider="lmlab")
ConfigStore.instance().store(group="hydra/launcher", name="lmlab_local", node=LmlabLocalConf, provider="lmlab")
