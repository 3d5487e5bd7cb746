"""lmlab's submitit launchers: Hydra's, except that a job SLURM cancelled or killed does not end the
sweep in a traceback. Its result is NaN (as for a run that failed inside lmlab-train), the sweep goes
on, and lmlab's sweep summary (lmlab.launch.progress.SweepSummary) reports each run's state.

Hydra's launcher collects every job's result with submitit's Job.results(), which raises for a job that
never returned. Only that call is made tolerant, and only while this launcher collects its jobs.
"""


import contextlib
import logging
import math
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
    def launch(self, job_overrides, initial_job_idx):
        with tolerant_results():
            return super().launch(job_overrides, initial_job_idx)


@dataclass
class LmlabSlurmConf(SlurmQueueConf):
    _target_: str = "hydra_plugins.lmlab_launcher.lmlab_submitit_launcher.TolerantSlurmLauncher"


@dataclass
class LmlabLocalConf(LocalQueueConf):
    _target_: str = "hydra_plugins.lmlab_launcher.lmlab_submitit_launcher.TolerantLocalLauncher"


ConfigStore.instance().store(group="hydra/launcher", name="lmlab_slurm", node=LmlabSlurmConf, provider="lmlab")
ConfigStore.instance().store(group="hydra/launcher", name="lmlab_local", node=LmlabLocalConf, provider="lmlab")
