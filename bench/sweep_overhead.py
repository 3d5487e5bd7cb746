"""Per-job overhead of a sweep of small jobs on the local SLURM cluster, against the same runs in one process.

Overhead of a job: from the moment it could start (the sweep was launched, or the job before it
finished) to its first optimizer step, i.e. interpreter start, imports, SLURM scheduling, srun,
submitit, Hydra composition, data and model set-up. Both sweeps run one job at a time
(array_parallelism=1 on SLURM), so the two numbers measure the same thing. The bench watches the
run directories for the first train row of metrics.jsonl and for result.json.

    .venv/bin/python bench/sweep_overhead.py [--jobs 4]   (needs `make slurm-up`)

With --local-parallel it measures instead the whole wall time of a sweep of small runs under
cluster=local_parallel (jobs share the cores: cores // cpus_per_task at a time, one thread each) against
the same sweep run one job after the other in one process with every core (cluster=local), and prints the
ratio parallel / sequential (at most 1: sharing the cores is no slower than taking turns).

    .venv/bin/python bench/sweep_overhead.py --local-parallel [--jobs 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = ["debug=fast", "trainer.threads=1", "trainer.log_every_steps=1", "budget.tokens=4096"]
SLURM = ["cluster=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1",
         "hydra.launcher.timeout_min=10", "hydra.launcher.array_parallelism=1"]


def cluster_up() -> bool:
    try:
        out = subprocess.run(["sinfo", "-h", "-n", "localhost", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return out.stdout.strip().rstrip("*~#") in ("idle", "mixed", "allocated")


def first_train_row(run_dir: Path) -> bool:
    path = run_dir / "metrics.jsonl"
    return path.exists() and any("train_loss" in json.loads(line) for line in path.read_text().splitlines() if line)


def watch_sweep(overrides: list[str], runs_dir: Path, env: dict, jobs: int, label: str) -> list[float]:
    """Launch one sweep; return each job's overhead in seconds, in the order the jobs ran."""
    group = runs_dir / "bench"
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "lmlab.train", "-m", *TINY, "run.group=bench",
                             f"seed={','.join(map(str, range(jobs)))}", *overrides], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first_step: dict[Path, float] = {}
    finished: dict[Path, float] = {}
    last_report = t0
    while proc.poll() is None or len(finished) < jobs:
        now = time.monotonic()
        for run in group.glob("*") if group.exists() else []:
            if run not in first_step and first_train_row(run):
                first_step[run] = now
            if run not in finished and (run / "result.json").exists():
                finished[run] = now
        if proc.poll() is not None and len(finished) < jobs:
            raise SystemExit(f"{label}: the sweep ended with {len(finished)} of {jobs} runs: {proc.stderr.read()[-2000:]}")
        if now - last_report > 15:
            print(f"  {label}: {len(finished)}/{jobs} runs done after {now - t0:.0f}s", flush=True)
            last_report = now
        time.sleep(0.02)
    order = sorted(first_step, key=first_step.get)
    could_start = [t0] + [finished[r] for r in order[:-1]]
    return [first_step[r] - s for r, s in zip(order, could_start)]


SMALL = ["debug=fast", "trainer.log_every_steps=10", "budget.tokens=32768"]  # ~64 steps: compute, not only start-up


def sweep_wall(overrides: list[str], env: dict, jobs: int) -> float:
    """Seconds from launching a sweep of `jobs` small runs to its end."""
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "lmlab.train", "-m", *SMALL, "run.group=bench",
                           f"seed={','.join(map(str, range(jobs)))}", *overrides], cwd=REPO, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"sweep {' '.join(overrides)} failed: {done.stderr[-2000:]}")
    return time.monotonic() - t0


def local_parallel(jobs: int) -> int:
    from lmlab.data.prepare import prepare_preset

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        prepare_preset("sotu", data)  # outside the timings
        env = {**os.environ, "LMLAB_DATA_DIR": str(data), "PYTHONUNBUFFERED": "1"}
        cores = len(os.sched_getaffinity(0))
        print(f"sweep_overhead --local-parallel: {jobs} small runs ({' '.join(SMALL)}) on {cores} cores")
        walls = {}
        for label, cluster in (("sequential (cluster=local)", "local"), ("parallel (cluster=local_parallel)", "local_parallel")):
            walls[cluster] = sweep_wall([f"cluster={cluster}"], {**env, "LMLAB_RUNS_DIR": str(Path(tmp) / cluster)}, jobs)
            print(f"  {label:36s} {walls[cluster]:7.1f}s", flush=True)
    print(f"ratio parallel / sequential wall time: {walls['local_parallel'] / walls['local']:.2f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--local-parallel", action="store_true",
                        help="time cluster=local_parallel against the same sweep run sequentially")
    args = parser.parse_args()
    if args.local_parallel:
        return local_parallel(args.jobs)
    if not cluster_up():
        print("sweep_overhead: skipped: the local SLURM cluster is not running (make slurm-up)")
        return 0
    from lmlab.data.prepare import prepare_preset

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        prepare_preset("sotu", data)  # outside the timings
        env = {**os.environ, "LMLAB_DATA_DIR": str(data), "PYTHONUNBUFFERED": "1"}
        print(f"sweep_overhead: {args.jobs} tiny runs ({' '.join(TINY)}), one job at a time")
        local = watch_sweep([], Path(tmp) / "local", {**env, "LMLAB_RUNS_DIR": str(Path(tmp) / "local")},
                            args.jobs, "one process")
        slurm = watch_sweep(SLURM, Path(tmp) / "slurm", {**env, "LMLAB_RUNS_DIR": str(Path(tmp) / "slurm")},
                            args.jobs, "SLURM")
    for label, xs in (("one process (Hydra basic launcher)", local), ("SLURM (submitit, local cluster)", slurm)):
        print(f"{label:36s} per-job overhead: mean {statistics.mean(xs):6.2f}s  median {statistics.median(xs):6.2f}s"
              f"  first job {xs[0]:6.2f}s  later jobs {statistics.mean(xs[1:] or xs):6.2f}s")
    later = statistics.mean(slurm[1:] or slurm) / statistics.mean(local[1:] or local)
    print(f"ratio SLURM / one process: mean {statistics.mean(slurm) / statistics.mean(local):.2f}x, "
          f"later jobs {later:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
