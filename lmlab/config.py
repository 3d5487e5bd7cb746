"""Structured configs for `lmlab-train`, registered in Hydra's ConfigStore.

conf/train.yaml puts `train_schema` first in its defaults list, so every group file and every
override is merged into these typed dataclasses: a misspelt key or a value of the wrong type fails
at compose time, naming the key.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig

from lmlab.errors import ConfigError
from lmlab.eval.config import InLoopConfig


class Norm(str, Enum):
    layernorm = "layernorm"
    rmsnorm = "rmsnorm"


class Mlp(str, Enum):
    gelu = "gelu"
    swiglu = "swiglu"


class Positions(str, Enum):
    learned = "learned"
    rope = "rope"


class Schedule(str, Enum):
    cosine = "cosine"
    wsd = "wsd"
    constant = "constant"


class Strategy(str, Enum):
    auto = "auto"  # ddp on more than one device
    ddp = "ddp"
    fsdp = "fsdp"


class Logger(str, Enum):
    csv = "csv"
    tensorboard = "tensorboard"
    wandb = "wandb"
    none = "none"


@dataclass
class PathsConfig:
    data_dir: str = "${oc.env:LMLAB_DATA_DIR,data}"
    runs_dir: str = "${oc.env:LMLAB_RUNS_DIR,runs}"


@dataclass
class RunConfig:
    group: str = "default"  # the study or sweep: runs land in <runs_dir>/<group>/<run_id>
    name: Optional[str] = None  # replaces the size name at the front of the run id
    resume: bool = True  # find a finished run and skip it, an interrupted one and resume it


@dataclass
class ModelConfig:
    size: str = "100k"
    seq_len: int = 128
    n_layer: Optional[int] = None  # null: from the size registry
    d_model: Optional[int] = None
    n_head: Optional[int] = None
    d_ff: Optional[int] = None
    norm: Norm = Norm.layernorm
    mlp: Mlp = Mlp.gelu
    pos: Positions = Positions.learned
    tie_embeddings: bool = True
    dropout: float = 0.0
    bias: Optional[bool] = None  # null: from the registry (gpt2-small has biases)
    mup_base_width: Optional[int] = None  # null: standard parametrisation; a d_model: muP (lmlab.models.mup)


@dataclass
class DataConfig:
    name: str = "sotu"
    dir: str = "${paths.data_dir}/${data.name}"
    prepare: bool = True  # prepare the preset of the same name when the directory is missing
    verify_checksums: bool = True  # sha256 and token ids of every shard, once per file version (cached)


@dataclass
class OptimConfig:
    lr: float = 3e-3
    weight_decay: float = 0.1
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    grad_clip: float = 1.0  # 0 disables clipping
    min_lr_ratio: float = 0.1
    l1: float = 0.0  # an L1 penalty on the matrices (lmlab.train.module.l1_penalty); 0: off


@dataclass
class ScheduleConfig:
    name: Schedule = Schedule.cosine
    warmup_frac: float = 0.05
    decay_frac: float = 0.2  # wsd only: the share of steps spent cooling down


@dataclass
class BudgetConfig:
    tokens: Optional[float] = None  # a count; 5e6 is accepted
    chinchilla_multiple: Optional[float] = None  # D = m * 20 * N (N total parameters)
    flops: Optional[float] = None  # D = C / FLOPs per token in the unit of compute (lmlab.runspec.COMPUTE: 6N + attention)
    # schedule=wsd only: more budgets, as fractions of this one, each a cooldown branch of one constant-lr trunk
    # (lmlab.train.branches); the budget itself is always one of them
    branches: Optional[list[float]] = None
    branch: Optional[float] = None  # set by lmlab in a branch's own config: which fraction of the budget it is


@dataclass
class TrainerConfig:
    global_batch_size: int = 16  # sequences per optimizer step
    micro_batch_size: int = 16  # sequences per device per forward pass
    accelerator: str = "auto"
    devices: int = 1
    nodes: int = 1  # the same name as hydra.launcher.nodes and `lmlab plan|launch render --nodes`
    precision: str = "32"  # 32 | bf16-mixed (checked when the run starts)
    compile: bool = False
    threads: Optional[int] = None  # torch CPU threads; null: torch's default
    val_milestones: int = 8  # log-spaced validations, plus one at the end
    val_tokens: int = 32768  # the fixed held-out set
    ckpt_every_steps: int = 50
    log_every_steps: int = 10
    peak_flops: Optional[float] = None  # FLOP/s of one device for MFU; null: from the table or measured
    progress_bar: Optional[bool] = None  # null: a bar on a terminal, log lines otherwise
    early_stopping_patience: Optional[int] = None  # stop after this many validations without improvement; null: off
    early_stopping_min_delta: float = 0.0  # the improvement in validation loss that counts
    strategy: Strategy = Strategy.auto  # how devices share the model (lmlab.train.strategy); render chooses one
    activation_checkpointing: bool = False  # recompute each block's forward in the backward (less memory)
    gpu: Optional[str] = None  # the GPU model memory plans size for (lmlab.launch.memory), e.g. H100


@dataclass
class TuneConfig:
    """Set by lmlab's Optuna sweeper for a search trial (hydra_plugins/lmlab_sweeper): where the run
    reports its validation losses so that hopeless trials are pruned (lmlab.tune.pruning)."""
    storage: Optional[str] = None
    study: Optional[str] = None
    trial: Optional[int] = None


@dataclass
class LoggerConfig:
    name: Logger = Logger.csv
    project: str = "lmlab"


@dataclass
class PredictionConfig:
    """What `lmlab plan` predicted for this run (lmlab.runs.predictions scores it once the run completes);
    loss null: no prediction. Bookkeeping, not identity: it never changes the run id
    (lmlab.runs.record.NON_IDENTITY_KEYS)."""
    loss: Optional[float] = None  # the predicted final validation loss
    lo: Optional[float] = None  # its interval at `level`
    hi: Optional[float] = None
    level: Optional[float] = None
    law: Optional[str] = None
    fit: Optional[str] = None  # the fit file's path when planned
    fit_sha256: Optional[str] = None  # sha256 of the fit file's bytes
    study: Optional[str] = None  # the study (table) the fit came from


@dataclass
class ForecastConfig:
    """The live forecast of the final validation loss (lmlab.train.forecast_callback). Not identity:
    like a search's pruning, stopping on a forecast does not change what a step trains."""
    show: bool = True  # in the progress bar and log lines, after each validation past `after`
    after: float = 0.25  # the share of the planned steps before a forecast is meaningful
    stop_above: Optional[float] = None  # stop (stopped_early) when the whole forecast interval lies above this loss
    study: bool = True  # also fit the completed runs of the same size in the run's group
    resamples: int = 100  # bootstrap resamples for the interval


@dataclass
class AuditConfig:
    """The model bias audit at validation milestones (lmlab.audit.callback): audit_curve.jsonl."""
    every_val: bool = False
    lexicon: list[str] = field(default_factory=list)  # YAML files; empty: conf/audit/lexicon.yaml
    templates: list[str] = field(default_factory=list)  # JSONL files; empty: conf/audit/templates.jsonl
    bootstrap: int = 200  # resamples for the intervals


@dataclass
class TrainConfig:
    seed: int = 0
    paths: PathsConfig = field(default_factory=PathsConfig)
    run: RunConfig = field(default_factory=RunConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    eval: InLoopConfig = field(default_factory=InLoopConfig)  # tasks at validation milestones (none: off)
    audit: AuditConfig = field(default_factory=AuditConfig)  # bias audits at validation milestones (off)
    prediction: PredictionConfig = field(default_factory=PredictionConfig)  # set by `lmlab plan`'s experiment config
    forecast: ForecastConfig = field(default_factory=ForecastConfig)  # live forecast, optional stop (non-identity)


from lmlab import CONF_DIR  # noqa: E402  (re-exported for lmlab-train and notebooks)


def compose_train(overrides: list[str] = (), config_dirs: list[str] = ()) -> DictConfig:
    """conf/train.yaml with overrides, as `lmlab-train` would compose it (for notebooks and tests).
    config_dirs: extra config directories searched after lmlab's own (lmlab-train --config-dir).
    A config that does not compose is one ConfigError line."""
    from hydra import compose

    search = [f"hydra.searchpath=[{','.join('file://' + str(Path(d).resolve()) for d in config_dirs)}]"] if config_dirs else []
    try:
        with hydra_context(CONF_DIR):
            return compose(config_name="train", overrides=[*overrides, *search])
    except Exception as err:  # Hydra's and OmegaConf's many kinds: one line that names the key
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException

        if isinstance(err, (HydraException, OmegaConfBaseException)):
            raise ConfigError(composition_error_line(err)) from None
        raise


@contextlib.contextmanager
def hydra_context(config_dir: Path):
    """Hydra initialised on config_dir, unless this process is inside a Hydra app already (a sweep's end
    callback, a sweeper), whose own initialisation then serves."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        yield
    else:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            yield


def composition_error_line(err: BaseException) -> str:
    """Hydra's multi-line composition error as one line: what failed, why, and the choices if any."""
    first = str(err).strip().splitlines()[0].rstrip(".")
    cause = err.__cause__
    why = str(cause).strip().splitlines()[0] if cause is not None and str(cause).strip() else ""
    lines = str(err).splitlines()
    if "Available options" in str(err):
        start = next(i for i, line in enumerate(lines) if "Available options" in line) + 1
        options = [line.strip() for line in lines[start:] if line.startswith("\t") and "=" not in line]
        why = f"expected one of {', '.join(options)}"
    return f"{first}: {why}" if why else first


def expand_sweep(task_overrides: list[str]) -> list[list[str]]:
    """The job override lists of a Hydra basic sweep, in Hydra's order (cartesian product)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(task_overrides)
    choices = []
    for o in parsed:
        key = o.get_key_element()
        values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_element_as_str()]
        choices.append([f"{key}={v}" for v in values])
    return [list(combo) for combo in itertools.product(*choices)]


def check_command_line(argv: list[str], compose_fn, prog: str) -> None:
    """Compose every job of a Hydra command line before Hydra does, so that a misspelt key or a wrong
    type is one line naming it (`prog: error: ...`, exit 2); HYDRA_FULL_ERROR=1 leaves it to Hydra's
    own message. compose_fn(overrides, config_dirs) composes one job. Sweeps that only a sweeper can
    expand (search spaces) are left to it."""
    import os
    import sys

    from hydra._internal.utils import get_args_parser

    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        return
    args, _ = get_args_parser().parse_known_args(argv)
    if args.help or args.hydra_help or args.info or args.shell_completion or args.config_name or args.config_path:
        return
    try:
        jobs = expand_sweep(args.overrides) if args.multirun else [args.overrides]
    except Exception:
        return
    for job in jobs[:MAX_CHECKED_JOBS]:
        try:
            compose_fn(job, [args.config_dir] if args.config_dir else [])
        except ConfigError as err:
            print(f"{prog}: error: {err}", file=sys.stderr)
            sys.exit(2)


MAX_CHECKED_JOBS = 64  # a larger sweep has its first jobs checked; the rest fail one by one, in one line each


def register() -> None:
    ConfigStore.instance().store(name="train_schema", node=TrainConfig)


register()
