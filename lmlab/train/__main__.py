"""`lmlab-train` / `python -m lmlab.train`: the Hydra app for one run (or a sweep with -m)."""

from __future__ import annotations

import logging
import math
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from lmlab.config import CONF_DIR, check_command_line, compose_train  # importing it registers the schema
from lmlab.errors import LmlabError
from lmlab.launch.progress import SWEEP_UNFINISHED
from lmlab.runs.status import FINAL

log = logging.getLogger("lmlab.train")


# An absolute path: a relative one resolves against the package when run as the `lmlab-train` script.
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def app(cfg: DictConfig) -> float:
    """Returns the final validation loss, so hyper-parameter sweepers can minimise it."""
    from lmlab.train.run import Run

    single = HydraConfig.get().mode == RunMode.RUN
    try:
        run = Run(cfg)
        result = run.execute()
    except LmlabError as err:  # bad input, or the run directory in use: nothing was trained
        print(f"lmlab-train: error: {err}", file=sys.stderr)
        if single:
            sys.exit(2)
        return math.nan
    if result["status"] in FINAL:  # completed, or ended on purpose (pruned by a search, early stopping)
        why = f" ({result['reason']})" if result["reason"] else ""
        print(f"lmlab-train: {run.record.dir}: {result['status']}{why}, validation loss {result['final_val_loss']:.4f}, "
              f"train loss {result['final_train_loss'] or math.nan:.4f}, {result['tokens']:,} tokens, "
              f"{result['wall_s']:.0f} s", file=sys.stderr)
        return result["final_val_loss"]
    if result["status"] == "preempted":
        log.warning("stopped by %s after step %d; relaunch to resume", result["reason"], result["steps"])
        return math.nan
    print(f"lmlab-train: error: {run.record.dir}: {result['reason']}", file=sys.stderr)
    if single:
        sys.exit(1)
    return math.nan  # in a sweep, one failed run does not stop the others; `lmlab runs status` shows it


def main() -> None:
    check_command_line(sys.argv[1:], compose_train, "lmlab-train")
    app()
    if SWEEP_UNFINISHED:  # the sweep's summary table says which runs and why; the shell sees it too
        sys.exit(1)


if __name__ == "__main__":
    main()
