"""Progress of a SLURM sweep (lmlab.launch.progress.SweepProgress): its jobs counted right (an array's
parent folder is not a job), a first line soon after the jobs are submitted, and a done line at the end."""

from __future__ import annotations

import datetime as dt
import re
import subprocess

import pytest

from lmlab.launch.progress import job_states

pytestmark = pytest.mark.slurm

STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")


def stamp(line: str) -> dt.datetime:
    return dt.datetime.strptime(STAMP.match(line).group(1), "%Y-%m-%d %H:%M:%S,%f")


def test_a_pending_array_counts_its_tasks_before_their_folders_exist(tmp_path):
    held = subprocess.run(["sbatch", "--parsable", "--hold", "--array=0-2", "-o", "/dev/null", "--wrap", "sleep 1"],
                          capture_output=True, text=True, check=True).stdout.strip()
    try:
        (tmp_path / ".submitit" / held).mkdir(parents=True)  # submitit's array folder, before any task runs
        assert job_states(tmp_path) == {"PENDING": 3}
        for task in range(3):
            (tmp_path / ".submitit" / f"{held}_{task}").mkdir()
        assert job_states(tmp_path) == {"PENDING": 3}
    finally:
        subprocess.run(["scancel", held], check=False)


def test_a_sweep_says_early_how_many_jobs_it_has_and_ends_with_a_done_line(lab):
    """The default every_s (60 s) is far longer than the jobs: the first line comes from their submission."""
    done = lab.sweep("run.group=progress", "seed=0,1")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in (done.stdout + done.stderr).splitlines() if STAMP.match(line)]
    submitted = next(line for line in lines if "sweep output dir" in line)
    progress = [line for line in lines if re.search(r"sweep \S+: \d+ jobs: ", line)]
    assert progress, "no progress line"
    assert all(": 2 jobs: " in line for line in progress), progress  # never the array's parent as a third
    assert (stamp(progress[0]) - stamp(submitted)).total_seconds() <= 10
    (end,) = [line for line in lines if "done, every job has ended" in line]
    assert lines.index(end) > lines.index(progress[-1])
