"""Progress for long stages: a tqdm bar in a terminal, a log line every few seconds otherwise."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator

log = logging.getLogger("lmlab.data")

LOG_EVERY_S = 10.0


class Progress:
    """Counts units of work (documents, tokens) for one stage; call `update(n)` as they pass."""

    def __init__(self, desc: str, total: int | None = None, unit: str = "doc"):
        self.desc, self.total, self.unit = desc, total, unit
        self.done = 0
        self._bar = None
        self._last_log = time.monotonic()
        if sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=True, leave=False)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif time.monotonic() - self._last_log >= LOG_EVERY_S:
            self._last_log = time.monotonic()
            of = f"/{self.total}" if self.total is not None else ""
            log.info("%s: %d%s %ss", self.desc, self.done, of, self.unit)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def batches_with_progress(batches: Iterator[dict], desc: str, total: int, key: str = "text") -> Iterator[dict]:
    """Yield column batches from a dataset while advancing a bar by the number of rows in each."""
    with Progress(desc, total) as bar:
        for batch in batches:
            yield batch
            bar.update(len(batch[key]))


class LoggedMap:
    """A batched `Dataset.map` function that logs how many documents it has done every few seconds
    when there is no terminal (each worker process its own count); in a terminal, `datasets`' own
    bar shows the progress. Its pickled state, which `datasets` fingerprints, holds no clock."""

    def __init__(self, fn, desc: str):
        self.fn, self.desc = fn, desc
        self.done, self._last_log = 0, time.monotonic()

    def __getstate__(self) -> dict:
        return {"fn": self.fn, "desc": self.desc}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["fn"], state["desc"])

    def __call__(self, batch: dict, **kwargs) -> dict:
        out = self.fn(batch, **kwargs)
        self.done += len(batch["text"])
        if time.monotonic() - self._last_log >= LOG_EVERY_S and not sys.stderr.isatty():
            self._last_log = time.monotonic()
            log.info("%s: %d documents (process %d)", self.desc, self.done, os.getpid())
        return out
