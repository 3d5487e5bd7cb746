"""Typed configs of the evaluation package: a task (conf/task/<name>.yaml), a validation scheme,
`python -m lmlab.eval` (conf/eval.yaml), in-loop evaluation (the `eval` section of lmlab-train)
and fine-tuning (conf/finetune.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Optional

from lmlab import CONF_DIR
from lmlab.errors import ConfigError

TASK_DIR = CONF_DIR / "task"


class TaskKind(str, Enum):
    cloze = "cloze"  # the right next sentence among sentences of other documents
    era = "era"  # the period a paragraph's speech comes from (document ids start with the year)
    jsonl = "jsonl"  # a user's file: one {"prompt", "choices", "label"} object per line


class SchemeName(str, Enum):
    bootstrap = "bootstrap"  # the whole set; intervals from resampling its examples
    kfold = "kfold"  # k disjoint folds; mean, spread and a t interval across folds
    holdout = "holdout"  # the whole set once; no interval


@dataclass
class TaskConfig:
    kind: TaskKind = TaskKind.jsonl
    split: str = "test"  # cloze / era: a held-out split of the corpus (never train)
    data_dir: Optional[str] = None  # cloze / era: a prepared corpus; null: the evaluated run's own
    n_examples: Optional[int] = 400  # a fixed sample (seeded); null: every example
    seed: int = 0
    n_choices: int = 4  # cloze: the right sentence and n_choices - 1 distractors
    context_sentences: int = 2  # cloze: sentences before the one to find
    min_words: int = 6  # cloze: sentence length / era: paragraph length, in words
    max_tokens: int = 40  # cloze: the longest choice, in the corpus's tokens
    boundaries: list[int] = field(default_factory=lambda: [1861, 1933, 1981])  # era: first years of eras
    max_per_document: Optional[int] = 40  # era: so that one long speech does not make the label set
    prompt_suffix: str = "\nThis passage is from the years"  # era: what the label answers
    path: Optional[str] = None  # jsonl: the file (a relative path is read from the task file's folder)
    labels: Optional[list[str]] = None  # jsonl: a fixed label set makes it a classification task


class FinetuneMode(str, Enum):
    head = "head"  # a classification head on the last token's final hidden state
    masked = "masked"  # the language model on prompt + answer, the loss on the answer's tokens only


@dataclass
class SchemeConfig:
    name: SchemeName = SchemeName.bootstrap
    n_boot: int = 1000
    k: int = 5
    confidence: float = 0.95
    seed: int = 0


@dataclass
class EvalConfig:
    """`python -m lmlab.eval run=<run dir> 'tasks=[cloze,era]'`."""
    run: Optional[str] = None
    tasks: list[str] = field(default_factory=lambda: ["cloze", "era"])
    scheme: SchemeConfig = field(default_factory=SchemeConfig)
    batch_size: int = 64  # sequences per forward pass
    device: str = "cpu"
    output: Optional[str] = None  # null: <run>/eval.json


@dataclass
class InLoopConfig:
    """The `eval` section of lmlab-train: tasks at every validation milestone (off by default)."""
    tasks: list[str] = field(default_factory=list)
    n_examples: int = 100  # a fixed sample per task keeps it cheap
    batch_size: int = 64


@dataclass
class EarlyStoppingConfig:
    patience: int = 2  # validations without improvement before stopping
    min_delta: float = 0.0  # the least decrease of the validation loss that counts as one


@dataclass
class AugmentConfig:
    token_dropout: float = 0.0
    span_deletion: float = 0.0
    max_span: int = 3
    local_swaps: float = 0.0


@dataclass
class FinetuneConfig:
    """`lmlab-finetune pretrained=<run dir> task=era`: fine-tune a pretrained run on a task's labeled
    examples (lmlab.eval.labeled says which), stopped early on validation loss, scored on held-out ones."""
    pretrained: Optional[str] = None  # a run directory: its config, tokenizer and last checkpoint
    mode: FinetuneMode = FinetuneMode.head
    task: TaskConfig = field(default_factory=TaskConfig)  # the group conf/task/ (task=era)
    task_file: Optional[str] = None  # a user's task .yaml (e.g. kind: jsonl, path, labels): replaces `task`
    val_fraction: float = 0.1  # a JSONL task: the share of its examples that early stopping watches
    test_fraction: float = 0.2  # a JSONL task: the share scored at the end (holdout, bootstrap)
    seed: int = 0
    n_train: Optional[int] = 2000  # a corpus task: examples drawn from the train split (null: all); kfold's folds
    n_val: Optional[int] = 200  # a corpus task: from the validation split, for early stopping
    max_epochs: int = 4
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    l1: float = 0.0  # L1 penalty on the matrices
    dropout: Optional[float] = None  # null: the pretrained model's
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # bootstrap / holdout: one fit, test metrics with a bootstrap interval of the test set / none;
    # kfold: k fits, each scored on its fold of the labeled examples, with the folds' mean, spread and t interval.
    scheme: SchemeConfig = field(default_factory=SchemeConfig)
    runs_dir: str = "${oc.env:LMLAB_RUNS_DIR,runs}"
    group: str = "finetune"
    threads: Optional[int] = None
    progress_bar: Optional[bool] = None


def plain(cfg: Any) -> dict:
    from omegaconf import OmegaConf

    return cfg if isinstance(cfg, dict) else OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)


def typed(schema: type, values: Any, where: str) -> dict:
    """values merged into the dataclass schema: an unknown key or a wrong type is one ConfigError line."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return plain(OmegaConf.merge(OmegaConf.structured(schema), values))
    except OmegaConfBaseException as err:
        raise ConfigError(f"{where}: {str(err).splitlines()[0]}") from None


def task_config(name: str) -> dict:
    """conf/task/<name>.yaml, or a .yaml file given by path, checked against TaskConfig."""
    from omegaconf import OmegaConf

    path = Path(name) if name.endswith((".yaml", ".yml")) else TASK_DIR / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in TASK_DIR.glob("*.yaml"))
        raise ConfigError(f"task {name!r}: no {path}, expected one of {', '.join(known)} or a path to a task .yaml")
    try:
        values = OmegaConf.load(path)
    except Exception as err:  # yaml's parser errors
        raise ConfigError(f"task file {path}: not valid YAML ({str(err).splitlines()[0]})") from None
    cfg = typed(TaskConfig, values, f"task file {path}")
    cfg["name"] = path.stem
    if cfg["path"] and not Path(cfg["path"]).is_absolute():
        cfg["path"] = str(path.parent / cfg["path"])
    return cfg


def register() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="eval_schema", node=EvalConfig)
    ConfigStore.instance().store(name="finetune_schema", node=FinetuneConfig)


register()
