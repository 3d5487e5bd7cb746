"""`lmlab-train` / `python -m lmlab.train`: the Hydra app for one run (or a sweep with -m)."""

from __future__ import annotations

import logging
import math
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from lmlab.train.config import CONF_DIR  # importing it registers the schema in Hydra's ConfigStore
from lmlab.errors import LmlabError

log = logging.getLogger("lmlab.train")


# An absolute path: a relative one resolves against the package when run as the `lmlab-train` script.
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def app(cfg: DictConfig) -> float:
    """Returns the final validation loss, so hyper-parameter sweepers can minimise it."""
    from lmlab.train.run import train

    try:
        result = train(cfg)
    except LmlabError as err:
        result = {"status": "failed", "reason": str(err)}
    if result["status"] == "completed":
        return result["final_val_loss"]
    if result["status"] == "preempted":
        log.warning("stopped by %s after step %d; relaunch to resume", result["reason"], result["steps"])
        return math.nan
    print(f"lmlab-train: error: {result['reason']}", file=sys.stderr)
    if HydraConfig.get().mode == RunMode.RUN:
        sys.exit(1)
    return math.nan  # in a sweep, one failed run does not stop the others; `lmlab runs status` shows it


def main() -> None:
    app()


if __name__ == "__main__":
    main()
