"""Overfitting control: early stopping on validation loss, an L1 penalty, epoch counting, a flag for a
growing validation-train gap, and the learning-curve figure (train and validation loss over tokens)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lmlab.errors import ConfigError
from lmlab.train.callbacks import OnStep

LEARNING_CURVE = "learning_curve.png"


class Patience:
    """Counts validations without an improvement of at least min_delta over the best loss so far."""

    def __init__(self, patience: int, min_delta: float = 0.0):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ConfigError(f"early_stopping.patience={patience!r}: expected a positive number of validations")
        if not min_delta >= 0:
            raise ConfigError(f"early_stopping.min_delta={min_delta!r}: expected a loss difference >= 0")
        self.patience, self.min_delta = patience, min_delta
        self.best, self.bad = math.inf, 0

    def update(self, loss: float) -> bool:
        """Record one validation loss; True when training should stop."""
        if loss < self.best - self.min_delta:
            self.best, self.bad = loss, 0
        else:
            self.bad += 1
        return self.bad >= self.patience


class EarlyStopping(OnStep):
    """Stops a Lightning run when `latest()` (the last (step, val_loss), e.g. ValidationMilestones.last)
    has not improved by min_delta for `patience` validations. `reason` says why it stopped, or None."""

    def __init__(self, latest: Callable[[], tuple[int, float] | None], patience: int, min_delta: float = 0.0):
        super().__init__()
        self.latest, self.patience = latest, Patience(patience, min_delta)
        self.checked_step: int | None = None
        self.reason: str | None = None

    def on_step(self, trainer, module) -> None:
        last = self.latest()
        if last is None or last[0] == self.checked_step:
            return
        self.checked_step = last[0]
        if self.patience.update(last[1]):
            p = self.patience
            self.reason = (f"early stopping at step {last[0]}: validation loss {last[1]:.4f} has not improved on "
                           f"{p.best:.4f} by {p.min_delta} for {p.patience} validations")
            trainer.should_stop = True


def epochs_seen(tokens: float, data_dir: str | Path) -> float:
    """Passes over the corpus's train split that `tokens` training tokens amount to (> 1: data repeats)."""
    from lmlab.data.shards import read_manifest

    return tokens / read_manifest(data_dir)["splits"]["train"]["tokens"]


def loss_pairs(rows: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tokens, train loss, val loss) at each validation; the train loss is the mean of the train rows
    logged since the previous validation (or the last one before it)."""
    tokens, train, val, pending, last = [], [], [], [], None
    for row in rows:
        if "train_loss" in row:
            pending.append(row["train_loss"])
            last = row["train_loss"]
        elif "val_loss" in row and last is not None:
            tokens.append(row["tokens"])
            train.append(np.mean(pending) if pending else last)
            val.append(row["val_loss"])
            pending = []
    return np.array(tokens), np.array(train), np.array(val)


def gap_growing(rows: list[dict], window: int = 3) -> bool:
    """True when the validation-train gap grew at each of the last `window` validations and is positive:
    the run is overfitting (the sign to stop, add data or regularise)."""
    _, train, val = loss_pairs(rows)
    gap = val - train
    if len(gap) < window + 1:
        return False
    recent = gap[-(window + 1):]
    return bool(np.all(np.diff(recent) > 0) and recent[-1] > 0)


def learning_curve_figure(rows: list[dict], title: str = ""):
    """Train and validation loss over tokens (log x), one pair of lines per fold of a k-fold fine-tune;
    the gap flag in the title."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    folds = sorted({r.get("fold") for r in rows}, key=lambda f: f or 0)
    for fold in folds:
        mine = [r for r in rows if r.get("fold") == fold]
        train = [r for r in mine if "train_loss" in r]
        val = [r for r in mine if "val_loss" in r]
        tag = f" (fold {fold})" if fold else ""
        line, = ax.plot([r["tokens"] for r in train], [r["train_loss"] for r in train], label=f"train{tag}", lw=1,
                        alpha=0.8)
        ax.plot([r["tokens"] for r in val], [r["val_loss"] for r in val], "o--" if fold else "o-", ms=3,
                label=f"validation{tag}", color=line.get_color() if fold else None)
    ax.set_xscale("log")
    ax.set_xlabel("tokens")
    ax.set_ylabel("loss (nats/token)")
    growing = any(gap_growing([r for r in rows if r.get("fold") == fold]) for fold in folds)
    flag = " - validation-train gap growing" if growing else ""
    ax.set_title(f"{title}{flag}", fontsize=9)
    ax.legend()
    return fig


def save_learning_curve(run_dir: str | Path) -> Path:
    """<run dir>/learning_curve.png from its metrics.jsonl."""
    from lmlab.io import atomic_path, read_jsonl

    run_dir = Path(run_dir)
    fig = learning_curve_figure(read_jsonl(run_dir / "metrics.jsonl"), run_dir.name)
    with atomic_path(run_dir / LEARNING_CURVE) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return run_dir / LEARNING_CURVE
