"""Batches for training: a pure function of (seed, micro-batch index, rank).

Nothing about the loader's position is saved: a resumed run asks for micro-batches from
global_step * accumulation onwards and sees exactly what an uninterrupted run would have seen.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from lmlab.data.shards import open_split, read_manifest
from lmlab.errors import DataError


class ShardWindows:
    """Random access to windows of seq_len + 1 tokens across a split's shards."""

    def __init__(self, shards: list[np.ndarray], seq_len: int, where: str):
        self.shards = [s for s in shards if len(s) > seq_len + 1]
        if not self.shards:
            raise DataError(f"{where}: no shard holds more than seq_len + 1 = {seq_len + 1} tokens")
        self.window = seq_len + 1
        starts = np.array([len(s) - self.window + 1 for s in self.shards], dtype=np.int64)
        self.cum_starts = np.concatenate([[0], np.cumsum(starts)])

    @property
    def n_starts(self) -> int:
        return int(self.cum_starts[-1])

    def gather(self, flat_starts: np.ndarray) -> torch.Tensor:
        shard_idx = np.searchsorted(self.cum_starts, flat_starts, side="right") - 1
        rows = np.empty((len(flat_starts), self.window), dtype=np.int64)
        for row, (s, flat) in enumerate(zip(shard_idx, flat_starts)):
            off = flat - self.cum_starts[s]
            rows[row] = self.shards[s][off: off + self.window]
        return torch.from_numpy(rows)


class RandomWindows(IterableDataset):
    """An endless stream of micro-batches; micro-batch i on rank r is drawn from rng(seed, i, r)."""

    def __init__(self, windows: ShardWindows, micro_batch_size: int, seed: int, rank: int, start: int = 0):
        self.windows, self.micro_batch_size = windows, micro_batch_size
        self.seed, self.rank, self.start = seed, rank, start
        self.fetch_seconds = 0.0  # time spent building batches, for the data-wait share of a step

    def batch(self, index: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, index, self.rank])
        return self.windows.gather(rng.integers(0, self.windows.n_starts, size=self.micro_batch_size))

    def __iter__(self):
        index = self.start
        while True:
            began = time.perf_counter()
            batch = self.batch(index)
            self.fetch_seconds += time.perf_counter() - began
            yield batch
            index += 1


def validation_windows(shards: list[np.ndarray], seq_len: int, max_tokens: int) -> torch.Tensor:
    """The fixed held-out set: consecutive non-overlapping windows from the start of the split."""
    out, budget = [], max(max_tokens, seq_len + 1)
    for shard in shards:
        n = min(len(shard), budget) // (seq_len + 1)
        if n:
            out.append(np.asarray(shard[: n * (seq_len + 1)], dtype=np.int64).reshape(n, seq_len + 1))
            budget -= n * (seq_len + 1)
        if budget < seq_len + 1:
            break
    if not out:
        raise DataError(f"validation split holds fewer than seq_len + 1 = {seq_len + 1} tokens")
    return torch.from_numpy(np.concatenate(out))


MANY_PASSES = 4.0  # up to ~4 passes repeated data is nearly as good as fresh (Muennighoff et al. 2023); past it, it is not


def data_warning(manifest: dict, planned_tokens: int) -> str | None:
    """One line when the prepared data cannot serve a run as asked: the budget needs many passes over the
    train split, or the tokenizer's vocabulary came out smaller than the one asked for (a small corpus
    runs out of merges). None when neither."""
    problems = []
    passes = planned_tokens / manifest["splits"]["train"]["tokens"]
    if passes > MANY_PASSES:
        problems.append(f"the budget of {planned_tokens:,} tokens is {passes:.1f} passes over its "
                        f"{manifest['splits']['train']['tokens']:,} training tokens (repeated data scales differently)")
    asked = ((manifest.get("config") or {}).get("tokenizer") or {}).get("vocab_size")
    if asked and manifest["vocab_size"] < asked:
        problems.append(f"its tokenizer has {manifest['vocab_size']:,} tokens, fewer than the {asked:,} asked for")
    if not problems:
        return None
    return f"data {manifest.get('name', '')!s}: " + "; ".join(problems)


class TokenDataModule(L.LightningDataModule):
    def __init__(self, data_dir: str | Path, seq_len: int, micro_batch_size: int, seed: int,
                 val_tokens: int, accumulation: int, verify_checksums: bool = True):
        super().__init__()
        self.data_dir = Path(data_dir)
        self.seq_len, self.micro_batch_size, self.seed = seq_len, micro_batch_size, seed
        self.val_tokens, self.accumulation = val_tokens, accumulation
        self.manifest = read_manifest(self.data_dir)
        self.verify_checksums = verify_checksums
        self.train_windows: ShardWindows | None = None
        self.val: torch.Tensor | None = None
        self.stream: RandomWindows | None = None
        self.warned = False  # warn_if_short said its line

    @property
    def vocab_size(self) -> int:
        return int(self.manifest["vocab_size"])

    def warn_if_short(self, planned_tokens: int) -> None:
        """The one warning line of data_warning, if any; once per data module (the runs of a branched
        launch share one, and the first is the whole launch's)."""
        line = None if self.warned else data_warning(self.manifest, planned_tokens)
        if line:
            logging.getLogger("lmlab.data").warning("%s", line)
        self.warned = True

    def setup(self, stage: str | None = None) -> None:
        if self.train_windows is None:
            train = open_split(self.data_dir, "train", verify=self.verify_checksums)
            self.train_windows = ShardWindows(train, self.seq_len, f"{self.data_dir} train split")
            val = open_split(self.data_dir, "validation", verify=self.verify_checksums)
            self.val = validation_windows(val, self.seq_len, self.val_tokens)

    def train_dataloader(self) -> DataLoader:
        # Called after a checkpoint is restored, so global_step is where the resumed run stands.
        start = self.trainer.global_step * self.accumulation if self.trainer else 0
        rank = self.trainer.global_rank if self.trainer else 0
        self.stream = RandomWindows(self.train_windows, self.micro_batch_size, self.seed, rank, start)
        # In-process on purpose: a batch costs microseconds, and fetch_seconds stays readable.
        return DataLoader(self.stream, batch_size=None, num_workers=0)

    def fetch_seconds(self) -> float:
        return self.stream.fetch_seconds if self.stream else 0.0

    def val_batches(self, rank: int, world_size: int, batch_size: int) -> list[torch.Tensor]:
        """This rank's share of the held-out windows, in fixed batches."""
        mine = self.val[rank::world_size]
        return list(mine.split(batch_size))
