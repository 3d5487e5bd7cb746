"""Where a search keeps its Optuna study, and how a trial's training process finds its trial there.

The default storage is Optuna's journal file next to the sweep (`<hydra.sweep.dir>/optuna.journal`):
an append-only log that several processes (the sweeper, local or SLURM trials on a shared file
system) write under a file lock, with no database server. An `sqlite:///...` URL (or any URL
Optuna's RDB storage takes) works too.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lmlab.errors import ConfigError

JOURNAL = "optuna.journal"
log = logging.getLogger("lmlab.tune")


def storage(where: str | Path):
    """An Optuna storage: a database URL (has '://') or the path of a journal file."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # lmlab logs what a user needs to read
    where = str(where)
    if "://" in where:
        return optuna.storages.RDBStorage(where)
    path = Path(where)
    path.parent.mkdir(parents=True, exist_ok=True)
    # open(O_EXCL) lock rather than the default symlink lock: it also holds on NFS.
    return optuna.storages.JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))


def load_study(where: str | Path, name: str | None = None):
    """A study of a storage; name None: the only study there."""
    import optuna

    store = storage(where)
    names = [s.study_name for s in optuna.get_all_study_summaries(store, include_best_trial=False)]
    if name is None:
        if len(names) != 1:
            raise ConfigError(f"{where}: holds studies {names or 'none'}; expected exactly one (name it)")
        name = names[0]
    if name not in names:
        raise ConfigError(f"{where}: no study named {name!r}; it holds {names or 'none'}")
    return optuna.load_study(study_name=name, storage=store)


def trial_of(tune_cfg: dict):
    """The Optuna trial a training run belongs to (tune.storage, tune.study, tune.trial)."""
    import optuna

    store = storage(tune_cfg["storage"])
    study = optuna.load_study(study_name=tune_cfg["study"], storage=store)
    study_id = store.get_study_id_from_name(tune_cfg["study"])
    return optuna.trial.Trial(study, store.get_trial_id_from_study_id_trial_number(study_id, tune_cfg["trial"]))


def pruner_from(spec: dict | None):
    """An Optuna pruner from its Hydra spec ({_target_: optuna.pruners.MedianPruner, ...}); None: none."""
    import optuna

    if not spec:
        return optuna.pruners.NopPruner()
    return instantiate("hydra.sweeper.pruner", spec)


def instantiate(where: str, spec: dict):
    """hydra.utils.instantiate with one ConfigError line for a bad _target_ or argument."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate

    try:
        return hydra_instantiate(spec)
    except InstantiationException as err:
        cause = err.__cause__ or err
        message = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        raise ConfigError(f"{where}: cannot build {spec.get('_target_')!r}: {message}") from None
