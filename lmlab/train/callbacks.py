"""Callbacks that write the run record: train rows with throughput, validations, checkpoints."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import lightning as L
import torch

from lmlab.io import append_jsonl, atomic_path, read_jsonl, write_jsonl
from lmlab.runs.record import RunRecord
from lmlab.runspec import RunSpec
from lmlab.train.module import NonFiniteLoss

log = logging.getLogger("lmlab.train")


def save_checkpoint(trainer: L.Trainer, record: RunRecord) -> None:
    """Write last.ckpt atomically (a kill or a full disk mid-write never leaves a bad one, nor a
    temporary file), keeping the checkpoint before it as previous.ckpt in case last is damaged later."""
    path = record.checkpoint
    if trainer.is_global_zero:
        with atomic_path(path) as tmp:
            trainer.save_checkpoint(tmp, weights_only=False)
            if path.exists():
                os.replace(path, record.previous_checkpoint)
    else:  # collective: the other ranks take part, rank zero alone writes
        trainer.save_checkpoint(path, weights_only=False)
    trainer.strategy.barrier("lmlab_checkpoint")


class OnStep(L.Callback):
    """Calls on_step(trainer, module) once per optimizer step (not per micro-batch)."""

    def __init__(self):
        self.seen_step = -1

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if trainer.global_step != self.seen_step:
            self.seen_step = trainer.global_step
            self.on_step(trainer, module)

    def on_step(self, trainer, module) -> None:
        raise NotImplementedError


class MilestoneCurve(OnStep):
    """Appends rows to `<run dir>/<name>` at the validation milestones, from rank zero. A resumed run
    first drops the rows after its checkpoint, as the metrics file does. Subclasses give rows(module)."""

    def __init__(self, record_dir, name: str, milestones: list[int], tokens_per_step: int):
        super().__init__()
        self.path = Path(record_dir) / name
        self.milestones, self.tokens_per_step = set(milestones), tokens_per_step

    def on_train_start(self, trainer, module) -> None:
        self.seen_step = trainer.global_step
        if trainer.is_global_zero:
            rows = read_jsonl(self.path)
            if any(r["step"] > trainer.global_step for r in rows):
                write_jsonl(self.path, [r for r in rows if r["step"] <= trainer.global_step])

    def on_step(self, trainer, module) -> None:
        if trainer.global_step in self.milestones and trainer.is_global_zero:
            with trainer.precision_plugin.forward_context():
                rows = self.rows(module)
            step = trainer.global_step
            for row in rows:
                append_jsonl(self.path, {"step": step, "tokens": step * self.tokens_per_step, **row})

    def rows(self, module) -> list[dict]:
        raise NotImplementedError


class StepMetrics(OnStep):
    """Appends a train row every `every` steps: loss, lr, grad norm, tokens/s, FLOP/s, MFU, data wait."""

    def __init__(self, record: RunRecord, every: int, spec: RunSpec, peak_flops: float | None, log_lines: bool):
        super().__init__()
        self.record, self.every, self.spec = record, every, spec
        self.tokens_per_step = spec.budget.tokens_per_step
        self.peak_flops, self.log_lines = peak_flops, log_lines
        self.window_start = self.window_step = None
        self.window_fetch = 0.0

    def on_train_start(self, trainer, module) -> None:
        self.window_start, self.window_step = time.perf_counter(), trainer.global_step
        self.window_fetch = trainer.datamodule.fetch_seconds()
        self.seen_step = trainer.global_step

    def on_step(self, trainer, module) -> None:
        step = trainer.global_step
        if step % self.every and step != trainer.max_steps:
            return
        now = time.perf_counter()
        dt = now - self.window_start
        world = trainer.world_size
        tokens_per_s = (step - self.window_step) * self.tokens_per_step / dt
        fetch = trainer.datamodule.fetch_seconds()
        flops_per_s = tokens_per_s * self.spec.flops_per_token_6n
        row = {
            "step": step,
            "tokens": step * self.tokens_per_step,
            **self.spec.flops(step * self.tokens_per_step),
            "train_loss": module.take_step_loss(),
            "lr": trainer.optimizers[0].param_groups[0]["lr"],
            "grad_norm": module.grad_norm,
            "tokens_per_s": tokens_per_s,
            "flops_per_s": flops_per_s,
            "mfu": flops_per_s / (self.peak_flops * world) if self.peak_flops else None,
            "data_wait_frac": (fetch - self.window_fetch) / dt,
            "elapsed_s": module.elapsed(),
        }
        self.window_start, self.window_step, self.window_fetch = now, step, fetch
        module.log("tok/s", tokens_per_s, prog_bar=True, logger=False)
        if trainer.is_global_zero:
            self.record.append_metrics(row)
            if trainer.logger:
                trainer.logger.log_metrics({k: v for k, v in row.items() if v is not None and k != "step"}, step)
            if self.log_lines:
                mfu = f" mfu {row['mfu']:.1%}" if row["mfu"] is not None else ""
                log.info("step %d/%d  tokens %.3gM  loss %.4f  lr %.2e  %.0f tok/s%s",
                         step, trainer.max_steps, row["tokens"] / 1e6, row["train_loss"], row["lr"],
                         tokens_per_s, mfu)


class ValidationMilestones(OnStep):
    """Evaluates the held-out set at log-spaced steps (for curve fits) and at the last step."""

    def __init__(self, record: RunRecord, milestones: list[int], batches_for_rank, spec: RunSpec):
        super().__init__()
        self.record, self.milestones = record, set(milestones)
        self.batches_for_rank = batches_for_rank
        self.tokens_per_step, self.spec = spec.budget.tokens_per_step, spec
        self.last: tuple[int, float] | None = None

    def on_step(self, trainer, module) -> None:
        if trainer.global_step in self.milestones:
            self.validate(trainer, module)

    def validate(self, trainer, module) -> float:
        step = trainer.global_step
        loss = module.evaluate(self.batches_for_rank(trainer.global_rank, trainer.world_size))
        self.last = (step, loss)
        module.log("val_loss", loss, prog_bar=True, logger=False)
        if trainer.is_global_zero:
            tokens = step * self.tokens_per_step
            self.record.append_metrics({
                "step": step, "tokens": tokens, **self.spec.flops(tokens), "val_loss": loss,
                "elapsed_s": module.elapsed(),
            })
            if trainer.logger:
                trainer.logger.log_metrics({"val_loss": loss}, step)
            log.info("step %d  validation loss %.4f", step, loss)
        return loss


class PeriodicCheckpoint(OnStep):
    """Saves checkpoints/last.ckpt every `every` steps and at the last step."""

    def __init__(self, record: RunRecord, every: int, tokens_per_step: int):
        super().__init__()
        self.record, self.every, self.tokens_per_step = record, every, tokens_per_step

    def on_step(self, trainer, module) -> None:
        step = trainer.global_step
        if step % self.every == 0 or step == trainer.max_steps:
            # A step can turn weights to NaN before any loss shows it: never overwrite a good checkpoint then.
            if not all(torch.isfinite(p).all() for p in module.parameters()):
                raise NonFiniteLoss(f"parameters became NaN or infinite by step {step}: the run stops, "
                                    f"the last good checkpoint is kept (try a lower optim.lr)")
            save_checkpoint(trainer, self.record)
            if trainer.is_global_zero:
                self.record.set_status("running", step=step, tokens=step * self.tokens_per_step)
