"""A hyperparameter search as a Hydra sweep: Optuna's ask-and-tell loop around Hydra's launcher.

hydra_plugins/lmlab_sweeper holds the Hydra plugin; it calls `run_search` with itself. Each round
asks Optuna for up to `n_jobs` trials, launches them as one batch through the configured launcher
(basic in this process, submitit locally or on SLURM), and tells Optuna each outcome: the run's final
validation loss, pruned (the run said so in the study), or failed. The study lives in the storage
next to the sweep, so a relaunch with the same hydra.sweep.dir continues it: trial numbers go on,
`n_trials` counts the whole study, and a trial cut off by the previous sweeper's death is run again
(its run directory resumes from its checkpoint).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from lmlab.errors import ConfigError, LmlabError
from lmlab.io import read_json, write_atomic
from lmlab.tune import space as sp
from lmlab.tune.study import JOURNAL, instantiate, storage

log = logging.getLogger("lmlab.tune")

SETTINGS = ("sampler", "pruner", "direction", "study_name", "storage", "n_trials", "n_jobs", "max_failure_rate",
            "params")


class SearchStopped(LmlabError):
    """Too many trials failed: the search stops (what ran is kept in the study)."""


def run_search(sweeper, arguments: list[str]) -> list:
    s = settings(sweeper.settings)
    config = sweeper.config
    space, fixed = split_arguments(s["params"], arguments)
    check_space(space, config, sweeper.hydra_context.config_loader)
    sampler = make_sampler(s["sampler"], space)
    n_trials = s["n_trials"] if not _is_grid(s["sampler"]) else min(s["n_trials"], _grid_size(space))
    check_corners(sweeper, space, fixed)

    import optuna

    sweep_dir = Path(config.hydra.sweep.dir)
    write_atomic(sweep_dir / "multirun.yaml", OmegaConf.to_yaml(config))
    where = s["storage"] or str((sweep_dir / JOURNAL).resolve())
    study = optuna.create_study(storage=storage(where), study_name=s["study_name"], sampler=sampler,
                                direction=s["direction"], load_if_exists=True)
    study.set_user_attr("pruner", s["pruner"])
    requeue_interrupted(study)
    tune = [sp.override("tune.storage", _quote(where)), sp.override("tune.study", _quote(s["study_name"]))]
    returns = []
    try:
        while (remaining := n_trials - len(counted(study))) > 0:
            trials = [study.ask(space) for _ in range(min(s["n_jobs"], remaining))]
            batch = [[*fixed, *(sp.override(k, t.params[k]) for k in space), *tune, f"tune.trial={t.number}"]
                     for t in trials]
            log.info("trials %s: launching", ", ".join(str(t.number) for t in trials))
            results = sweeper.launcher.launch(batch, initial_job_idx=trials[0].number)
            for trial, result in zip(trials, results):
                tell(study, trial, result)
            returns.append(results)
            check_failures(study, s["max_failure_rate"], n_trials)
    finally:  # also when too many trials failed: the report shows what ran
        from lmlab.tune.results import write_report

        summary = write_report(study, sweep_dir / "study")
        log.info("study %s: %s; report in %s", s["study_name"], summary_line(summary), sweep_dir / "study")
    return returns


def settings(raw) -> dict:
    s = OmegaConf.to_container(OmegaConf.create(dict(raw)), resolve=True)
    s["sampler"] = s["sampler"] or {"_target_": "optuna.samplers.TPESampler"}
    for key in ("n_trials", "n_jobs"):
        if isinstance(s[key], bool) or not isinstance(s[key], int) or s[key] < 1:
            raise ConfigError(f"hydra.sweeper.{key}={s[key]!r}: expected a positive integer")
    if not 0 <= s["max_failure_rate"] <= 1:
        raise ConfigError(f"hydra.sweeper.max_failure_rate={s['max_failure_rate']!r}: expected a number in [0, 1]")
    if s["direction"] not in ("minimize", "maximize"):
        raise ConfigError(f"hydra.sweeper.direction={s['direction']!r}: expected minimize or maximize")
    if not isinstance(s["sampler"], dict) or "_target_" not in s["sampler"]:
        raise ConfigError(f"hydra.sweeper.sampler={s['sampler']!r}: expected {{_target_: optuna.samplers.<Name>, ...}}")
    return s


def split_arguments(params: dict | None, arguments: list[str]) -> tuple[dict, list[str]]:
    """The search space (config params, then sweep expressions from the command line) and the fixed
    overrides every trial gets."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    expressions = {k: str(v) for k, v in _flatten(params or {}).items()}
    fixed = []
    for argument in arguments:
        parsed = OverridesParser.create().parse_override(argument)
        if parsed.is_sweep_override():
            expressions[parsed.get_key_element()] = argument.split("=", 1)[1]
        else:
            fixed.append(argument)
    return sp.parse_space(expressions), fixed


def _flatten(params: dict, prefix: str = "") -> dict:
    """hydra.sweeper.params.optim.lr=... on the command line nests; the config file writes optim.lr: ..."""
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_space(space: dict, config: DictConfig, loader) -> None:
    """Every parameter is a key of the training config, or a config group with those options."""
    groups = config.hydra.runtime.choices
    for key, dist in space.items():
        if key in groups:
            options = loader.get_group_options(key)
            unknown = [c for c in getattr(dist, "choices", [None]) if c not in options]
            if unknown:
                raise ConfigError(f"hydra.sweeper.params.{key}: config group {key} has no option(s) "
                                  f"{', '.join(map(str, unknown))}; expected some of {', '.join(options)}")
        elif key.startswith("hydra.") or OmegaConf.select(config, key, default=_ABSENT) is _ABSENT:
            raise ConfigError(f"hydra.sweeper.params: unknown parameter {key!r}: not a key of the training "
                              "config (see lmlab-train --cfg job)")


_ABSENT = object()


def check_corners(sweeper, space: dict, fixed: list[str]) -> None:
    """Compose the config at both ends of every range: a wrong type or an out-of-range value fails here,
    before any trial is launched, instead of in every trial."""
    batch = [[*fixed, *(sp.override(k, v) for k, v in corner.items())] for corner in sp.corners(space)]
    try:
        sweeper.validate_batch_is_legal(batch)
    except Exception as err:  # Hydra and OmegaConf raise several types; the first line says what
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"hydra.sweeper.params: the search space does not compose at {batch}: {message}") from None


def make_sampler(spec: dict, space: dict):
    spec = dict(spec)
    if _is_grid(spec):
        spec["search_space"] = sp.grid(space)
    return instantiate("hydra.sweeper.sampler", spec)


def _is_grid(spec: dict) -> bool:
    return spec["_target_"].rsplit(".", 1)[-1] == "GridSampler"


def _grid_size(space: dict) -> int:
    return math.prod(len(v) for v in sp.grid(space).values())


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def counted(study) -> list:
    """The finished trials that count towards n_trials (not those cut off by a dead sweeper)."""
    interrupted = set(study.user_attrs.get("interrupted", []))
    return [t for t in study.get_trials(deepcopy=False) if t.state.is_finished() and t.number not in interrupted]


def requeue_interrupted(study) -> None:
    """A trial left running by a sweeper that died: closed as failed (not counted) and asked again with
    the same parameters, so its run resumes."""
    from optuna.trial import TrialState

    cut_off = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if cut_off:
        study.set_user_attr("interrupted", [*study.user_attrs.get("interrupted", []), *(t.number for t in cut_off)])
    for t in cut_off:
        log.warning("trial %d was cut off by the previous sweep: running it again", t.number)
        _tell(study, t.number, state=TrialState.FAIL)
        study.enqueue_trial(t.params)


def tell(study, trial, result) -> None:
    from hydra.core.utils import JobStatus
    from optuna.trial import TrialState

    attrs = next(t.user_attrs for t in study.get_trials(deepcopy=False) if t.number == trial.number)
    if attrs.get("pruned"):
        _tell(study, trial, state=TrialState.PRUNED)
        return
    value, failure = None, None
    if result.status == JobStatus.COMPLETED:
        value = result.return_value
        if not (isinstance(value, (int, float)) and math.isfinite(value)):
            failure = run_failure(attrs.get("run_dir")) or f"the run returned {value!r}"
    else:
        failure = f"{type(result._return_value).__name__}: {result._return_value}".splitlines()[0]
    if failure:
        log.warning("trial %d failed: %s", trial.number, failure)
        trial.set_user_attr("failure", failure)
        _tell(study, trial, state=TrialState.FAIL)
    else:
        _tell(study, trial, float(value))


def _tell(study, trial, *args, **kwargs) -> None:
    """study.tell, where GridSampler's request to stop once its grid is done is no error: Optuna allows
    Study.stop only inside optimize(), and stores the trial's state before (a `finally` in its tell)."""
    try:
        study.tell(trial, *args, **kwargs)
    except RuntimeError as err:
        if "Study.stop" not in str(err):
            raise


def run_failure(run_dir: str | None) -> str | None:
    """The reason a trial's run recorded in its status.json, if it got that far."""
    status = Path(run_dir) / "status.json" if run_dir else None
    if status is None or not status.exists():
        return None
    return read_json(status).get("reason")


def check_failures(study, max_failure_rate: float, n_trials: int) -> None:
    from optuna.trial import TrialState

    failed = [t for t in counted(study) if t.state == TrialState.FAIL]
    if len(failed) > max_failure_rate * n_trials:
        raise SearchStopped(f"{len(failed)} of {len(counted(study))} trials failed, more than "
                            f"hydra.sweeper.max_failure_rate={max_failure_rate} of n_trials={n_trials}; "
                            f"last failure (trial {failed[-1].number}): {failed[-1].user_attrs.get('failure')}")


def summary_line(summary: dict) -> str:
    best = summary["best"]
    text = (f"{summary['complete']} complete, {summary['pruned']} pruned, {summary['failed']} failed; "
            f"pruning saved {summary['flops_saved_frac']:.0%} of the planned compute")
    if best:
        text += f"; best trial {best['number']}: {best['value']:.4f} with {best['params']}"
    return text
