"""The Hydra plugin `hydra/sweeper=lmlab_optuna`: a thin shell around lmlab.tune.sweep.run_search.

Hydra imports every module under the `hydra_plugins` namespace at start-up, so this one imports
nothing heavy: Optuna is loaded only when a search runs. Hydra does not enter these modules in
sys.modules, where dataclasses look up postponed annotations: hence no `from __future__ import annotations`.
"""


import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper


@dataclass
class LmlabOptunaSweeperConf:
    """hydra.sweeper: the names follow Hydra's Optuna sweeper (n_trials, n_jobs, sampler, params)."""

    _target_: str = "hydra_plugins.lmlab_sweeper.lmlab_optuna_sweeper.LmlabOptunaSweeper"
    _recursive_: bool = False  # sampler and pruner arrive as specs: the trials rebuild the pruner from it
    sampler: Any = None  # {_target_: optuna.samplers.TPESampler, seed: 0, ...}; null: TPE
    pruner: Any = None  # e.g. {_target_: optuna.pruners.MedianPruner, n_startup_trials: 2}
    direction: str = "minimize"
    study_name: str = "lmlab"
    storage: Optional[str] = None  # null: the journal file <hydra.sweep.dir>/optuna.journal
    n_trials: int = 20  # trials in the whole study, across relaunches
    n_jobs: int = 1  # trials in flight at once (one launcher batch)
    max_failure_rate: float = 0.25  # stop once more than this share of n_trials has failed
    params: Optional[Dict[str, Any]] = None  # key: search expression (lmlab.tune.space)


ConfigStore.instance().store(group="hydra/sweeper", name="lmlab_optuna", node=LmlabOptunaSweeperConf,
                             provider="lmlab")


class LmlabOptunaSweeper(Sweeper):
    def __init__(self, **settings: Any):
        self.settings = settings
        self.hydra_context = self.config = self.launcher = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> Any:
        from lmlab.errors import LmlabError
        from lmlab.tune.sweep import run_search

        try:
            return run_search(self, arguments)
        except LmlabError as err:  # bad search settings, or too many failed trials: one line
            print(f"lmlab-train: error: {err}", file=sys.stderr)
            sys.exit(2)
