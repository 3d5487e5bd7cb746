"""Labeled data for fine-tuning: the examples of a task, their splits and folds, and the batches of the
two modes (a class per prompt for the classification head; prompt and answer token ids, the loss
masked to the answer, for supervised sequence training).

Where the examples come from: a corpus task (era) gives training examples from the corpus's train
split, early-stopping examples from its validation split and test examples from the task's own
held-out split; a user's JSONL task is one file, split by seeded fractions (holdout, bootstrap) or
into k folds (kfold). Under kfold every fold is the test set of one fit, the others its training
data (less an early-stopping share for a JSONL task; a corpus task keeps its validation split).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from lmlab.errors import ConfigError, DataError
from lmlab.eval import schemes
from lmlab.eval.augment import augment
from lmlab.eval.tasks import CLASSIFICATION, Task

IGNORE = -100  # targets that do not count in the loss (F.cross_entropy's ignore_index)
PARTS = {"train": "training", "val": "validation", "test": "test"}


@dataclass
class Fit:
    """The data of one fine-tuning fit: train on `train`, stop early on `val`, score on `test`."""
    train: Task
    val: Task
    test: Task
    fold: int | None = None  # 1..k under kfold


def fits(task_cfg: dict, cfg: dict, data_dir, model_tokenizer: str) -> list[Fit]:
    """One fit (holdout, bootstrap) or k (kfold), each with non-empty train, validation and test sets."""
    from lmlab.eval.tasks import build_task, corpus_task, read_jsonl_task, sample

    scheme = cfg["scheme"]
    if task_cfg["kind"] == "jsonl":
        pool = sample(read_jsonl_task(task_cfg), task_cfg["n_examples"], task_cfg["seed"])
        if cfg["mode"] == "head" and pool.type != CLASSIFICATION:
            raise ConfigError(f"task {task_cfg['name']}: a multiple-choice task (no `labels` in its config) cannot "
                              "train a classification head, expected labels: [...] or mode=masked")
        out = [_split_pool(pool, cfg, task_cfg["name"])] if scheme["name"] != "kfold" else _jsonl_folds(pool, cfg)
    elif task_cfg["kind"] == "era" or cfg["mode"] == "masked":
        data_dir = task_cfg.get("data_dir") or data_dir
        train = sample(corpus_task(task_cfg, data_dir, "train", True, model_tokenizer), cfg["n_train"], cfg["seed"])
        val = sample(corpus_task(task_cfg, data_dir, "validation", model_tokenizer=model_tokenizer), cfg["n_val"],
                     cfg["seed"])
        if scheme["name"] == "kfold":
            out = [Fit(train.subset(np.setdiff1d(np.arange(len(train)), fold)), val, train.subset(fold), k + 1)
                   for k, fold in enumerate(schemes.kfold(len(train), scheme["k"], scheme["seed"]))]
        else:
            out = [Fit(train, val, build_task({**task_cfg, "data_dir": data_dir}, data_dir, model_tokenizer))]
    else:
        raise ConfigError(f"task {task_cfg['name']}: kind={task_cfg['kind']} cannot be fine-tuned on with a "
                          "classification head, expected a classification task (kind=era, or jsonl with labels) "
                          "or mode=masked")
    for fit in out:
        for part in PARTS:
            if not len(getattr(fit, part)):
                where = f"fold {fit.fold}" if fit.fold else "the split"
                raise DataError(f"task {task_cfg['name']}: {where} has no {PARTS[part]} examples, expected at "
                                "least one (more examples, or other val_fraction/test_fraction/scheme.k)")
    return out


def _split_pool(pool: Task, cfg: dict, name: str) -> Fit:
    """Seeded train / validation / test shares of one file."""
    for key in ("val_fraction", "test_fraction"):
        if not 0 < cfg[key] < 1:
            raise ConfigError(f"{key}={cfg[key]!r}: expected a share in (0, 1)")
    order = np.random.default_rng(cfg["seed"]).permutation(len(pool))
    n_val, n_test = round(cfg["val_fraction"] * len(pool)), round(cfg["test_fraction"] * len(pool))
    test, val, train = np.split(order, [n_test, n_test + n_val])
    return Fit(pool.subset(np.sort(train)), pool.subset(np.sort(val)), pool.subset(np.sort(test)))


def _jsonl_folds(pool: Task, cfg: dict) -> list[Fit]:
    scheme = cfg["scheme"]
    out = []
    for k, fold in enumerate(schemes.kfold(len(pool), scheme["k"], scheme["seed"])):
        rest = np.random.default_rng([cfg["seed"], k]).permutation(np.setdiff1d(np.arange(len(pool)), fold))
        n_val = round(cfg["val_fraction"] * len(rest))
        out.append(Fit(pool.subset(np.sort(rest[n_val:])), pool.subset(np.sort(rest[:n_val])), pool.subset(fold),
                       k + 1))
    return out


def masked_example(prompt: list[int], answer: list[int], seq_len: int) -> tuple[list[int], list[int]]:
    """(inputs, targets) of a prompt followed by its answer, the prompt cut from the left to fit seq_len:
    targets are the next tokens, IGNORE where the next token is still the prompt's, so that the loss
    counts the answer's tokens only."""
    keep = seq_len + 1 - len(answer)
    if not answer or keep < 2 or not prompt:
        raise DataError(f"{len(prompt)} prompt and {len(answer)} answer tokens: expected a non-empty prompt and an "
                        f"answer of 1 to {seq_len - 1} tokens (model.seq_len={seq_len})")
    prompt = prompt[-keep:]
    return prompt + answer[:-1], [IGNORE] * (len(prompt) - 1) + answer


class Examples(Dataset):
    """A task's examples as token ids; items are (ids, class) for the head, (inputs, targets) when masked.
    Augmentation (per epoch and example, deterministic) touches the prompt only."""

    def __init__(self, task: Task, tok, seq_len: int, masked: bool, augment_cfg: dict | None = None, seed: int = 0):
        self.prompts = [e.ids for e in tok.encode_batch(task.prompts, add_special_tokens=False)]
        answers = [options[y] for options, y in zip(task.choices, task.labels)]
        self.answers = [e.ids for e in tok.encode_batch(answers, add_special_tokens=False)] if masked else None
        self.labels, self.seq_len, self.seed = task.labels, seq_len, seed
        on = augment_cfg and any(augment_cfg[k] for k in ("token_dropout", "span_deletion", "local_swaps"))
        self.augment_cfg = augment_cfg if on else None

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def n_tokens(self) -> int:
        """Tokens one epoch trains on."""
        return sum(len(self.item(i)[0]) for i in range(len(self)))

    def item(self, i: int, epoch: int = 0):
        ids = self.prompts[i]
        if self.augment_cfg:
            ids = augment(ids, self.seed, epoch * len(self.prompts) + i, **self.augment_cfg)
        if self.answers is not None:
            return masked_example(ids, self.answers[i], self.seq_len)
        return ids[-self.seq_len:], int(self.labels[i])

    def __getitem__(self, key):
        epoch, i = key if isinstance(key, tuple) else (0, key)
        return self.item(i, epoch)


class EpochOrder(Sampler):
    """A seeded shuffle per epoch that hands the epoch to the dataset (Lightning calls set_epoch)."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        return iter([(self.epoch, int(i)) for i in np.random.default_rng([self.seed, self.epoch]).permutation(self.n)])

    def __len__(self) -> int:
        return self.n


def collate_classes(items):
    """(ids [B, T] right-padded, lengths [B], classes [B])."""
    lengths = torch.tensor([len(ids) for ids, _ in items])
    idx = torch.zeros(len(items), int(lengths.max()), dtype=torch.long)
    for row, (ids, _) in enumerate(items):
        idx[row, :len(ids)] = torch.tensor(ids)
    return idx, lengths, torch.tensor([y for _, y in items])


def collate_masked(items):
    """(inputs [B, T], targets [B, T]), right-padded; padding is IGNORE in the targets."""
    width = max(len(x) for x, _ in items)
    idx = torch.zeros(len(items), width, dtype=torch.long)
    target = torch.full((len(items), width), IGNORE, dtype=torch.long)
    for row, (x, y) in enumerate(items):
        idx[row, :len(x)], target[row, :len(y)] = torch.tensor(x), torch.tensor(y)
    return idx, target
