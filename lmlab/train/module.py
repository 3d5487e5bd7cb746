"""The LightningModule: next-token loss, AdamW on matrices, a step schedule, clipping, evaluation."""

from __future__ import annotations

import time

import lightning as L
import torch

from lmlab.errors import ConfigError, LmlabError
from lmlab.models.gpt import GPT, GPTConfig
from lmlab.train.schedules import lr_lambda
from lmlab.train.strategy import clip_grad_norm


class NonFiniteLoss(LmlabError):
    """The training loss became NaN or infinite; the step is not applied."""


def l1_penalty(model, weight: float):
    """weight * the sum of |w| over the model's matrices (norm weights and biases are left alone)."""
    if weight < 0:
        raise ConfigError(f"optim.l1={weight!r}: expected a coefficient >= 0")
    return weight * sum(p.abs().sum() for p in model.parameters() if p.requires_grad and p.dim() >= 2)


class LanguageModel(L.LightningModule):
    def __init__(self, gpt: GPTConfig, optim: dict, schedule: dict, total_steps: int, compile: bool = False):
        super().__init__()
        self.model = GPT(gpt)
        self.optim, self.schedule, self.total_steps = optim, schedule, total_steps
        self.compile = compile
        self.grad_norm = float("nan")
        self.step_loss_sum, self.step_loss_count = 0.0, 0
        self.elapsed_before = 0.0  # wall seconds of earlier segments of a resumed run
        self.segment_start = time.perf_counter()

    def on_fit_start(self) -> None:
        self.segment_start = time.perf_counter()

    def elapsed(self) -> float:
        """Wall seconds of training so far, across the segments of a resumed run."""
        return self.elapsed_before + time.perf_counter() - self.segment_start

    def configure_model(self) -> None:
        if self.compile and not isinstance(self.model, torch._dynamo.eval_frame.OptimizedModule):
            self.model = torch.compile(self.model)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        _, loss = self.model(batch[:, :-1], batch[:, 1:])
        if not torch.isfinite(loss):
            raise NonFiniteLoss(
                f"train loss is {loss.item()} at step {self.trainer.global_step}: the run stops, "
                f"the last good checkpoint is kept (try a lower optim.lr or a longer warmup)")
        self.step_loss_sum += loss.item()
        self.step_loss_count += 1
        self.log("loss", loss, prog_bar=True, on_step=True, logger=False)  # the data loss, without the penalty
        if self.optim.get("l1"):
            return loss + l1_penalty(self.model, self.optim["l1"])
        return loss

    def take_step_loss(self) -> float:
        """Mean train loss over the micro-batches of the optimizer steps since the last call."""
        mean = self.step_loss_sum / max(1, self.step_loss_count)
        self.step_loss_sum, self.step_loss_count = 0.0, 0
        return mean

    def on_before_optimizer_step(self, optimizer) -> None:
        # Clip here rather than through Trainer(gradient_clip_val) so the pre-clip norm is recorded.
        max_norm = self.optim["grad_clip"] or float("inf")
        self.grad_norm = clip_grad_norm(self, max_norm)  # over all ranks' shards under FSDP

    def configure_optimizers(self):
        o, s = self.optim, self.schedule
        groups = self.model.param_groups(o["weight_decay"], o["lr"])
        optimizer = torch.optim.AdamW(groups, lr=o["lr"], betas=tuple(o["betas"]), eps=o["eps"])
        multiplier = lr_lambda(s["name"], self.total_steps, s["warmup_frac"], o["min_lr_ratio"], s["decay_frac"])
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    @torch.no_grad()
    def evaluate(self, batches: list[torch.Tensor]) -> float:
        """Mean loss per token over every rank's share of the held-out windows."""
        was_training = self.model.training
        self.model.eval()
        total = torch.zeros(2, dtype=torch.float64, device=self.device)
        with self.trainer.precision_plugin.forward_context():
            for batch in batches:
                batch = batch.to(self.device)
                _, loss = self.model(batch[:, :-1], batch[:, 1:])
                total += torch.tensor([loss.item() * len(batch), len(batch)], dtype=torch.float64, device=self.device)
        total = self.trainer.strategy.reduce(total, reduce_op="sum")
        self.model.train(was_training)
        return (total[0] / total[1]).item()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["lmlab"] = {"elapsed_s": self.elapsed()}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.elapsed_before = checkpoint.get("lmlab", {}).get("elapsed_s", 0.0)
