"""The two ways to fine-tune a pretrained GPT on labeled data, as Lightning modules: a classification
head on the final hidden state (Classifier), or the language model itself trained on (prompt, answer)
sequences with the loss masked to the answer tokens (AnswerLM); and the per-epoch metrics rows."""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
import lightning as L
from torch import nn
from torch.utils.data import DataLoader

from lmlab.eval.labeled import IGNORE
from lmlab.train.module import l1_penalty

log = logging.getLogger("lmlab.eval")


def answer_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats per token) over the answer tokens; IGNORE targets (prompt, padding) do not count."""
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE)


class _Finetune(L.LightningModule):
    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = cfg

    def training_step(self, batch, batch_idx):
        loss, n = self.loss(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=n)
        return loss + l1_penalty(self, self.cfg["l1"]) if self.cfg["l1"] else loss

    def validation_step(self, batch, batch_idx):
        loss, n = self.loss(batch)
        self.log("val_loss", loss, on_epoch=True, batch_size=n, prog_bar=True)


class Classifier(_Finetune):
    """The pretrained GPT with its LM head replaced by a linear map from the last token's final hidden
    state (after the final norm) to the classes."""

    def __init__(self, backbone: nn.Module, n_classes: int, cfg: dict):
        super().__init__(cfg)
        backbone.lm_head = nn.Identity()  # the GPT now returns hidden states where it returned logits
        self.backbone = backbone.train()  # loaded in eval mode; dropout, if any, trains
        self.head = nn.Linear(backbone.cfg.d_model, n_classes)

    def forward(self, idx: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.backbone(idx)
        return self.head(hidden[torch.arange(len(idx), device=idx.device), lengths - 1])

    def loss(self, batch):
        idx, lengths, labels = batch
        return F.cross_entropy(self(idx, lengths), labels), len(labels)

    def validation_step(self, batch, batch_idx):
        idx, lengths, labels = batch
        logits = self(idx, lengths)
        self.log("val_loss", F.cross_entropy(logits, labels), on_epoch=True, batch_size=len(labels), prog_bar=True)
        self.log("val_accuracy", (logits.argmax(-1) == labels).float().mean(), on_epoch=True, batch_size=len(labels))

    def configure_optimizers(self):
        groups = self.backbone.param_groups(self.cfg["weight_decay"])
        groups[0]["params"].append(self.head.weight)
        groups[1]["params"].append(self.head.bias)
        return torch.optim.AdamW(groups, lr=self.cfg["lr"])

    @torch.no_grad()
    def log_probs(self, loader: DataLoader) -> np.ndarray:
        """[examples, classes] log-probabilities of the classes."""
        self.eval()
        out = [F.log_softmax(self(idx.to(self.device), lengths.to(self.device)), -1).double().cpu().numpy()
               for idx, lengths, _ in loader]
        return np.concatenate(out)


class AnswerLM(_Finetune):
    """The pretrained GPT, LM head and all, trained on prompt + answer with the loss on the answer only.
    Saved as `model.*` weights, so the fine-tuned run loads (lmlab.runs.load) and scores like any run."""

    def __init__(self, model: nn.Module, cfg: dict):
        super().__init__(cfg)
        self.model = model.train()

    def loss(self, batch):
        idx, targets = batch
        logits, _ = self.model(idx)
        return answer_loss(logits, targets), len(idx)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.model.param_groups(self.cfg["weight_decay"]), lr=self.cfg["lr"])


class EpochRows(L.Callback):
    """A train row and a validation row in metrics.jsonl after every epoch (with the fold under kfold)."""

    def __init__(self, record, tokens_per_epoch: int, fold: int | None):
        self.record, self.tokens_per_epoch, self.fold = record, tokens_per_epoch, fold
        self.epochs = 0  # completed epochs (Lightning's current_epoch differs after an early stop)

    def on_train_epoch_end(self, trainer, module) -> None:
        m = trainer.callback_metrics
        epoch = self.epochs = trainer.current_epoch + 1
        base = {"step": trainer.global_step, "epoch": epoch, "tokens": epoch * self.tokens_per_epoch}
        if self.fold is not None:
            base["fold"] = self.fold
        self.record.append_metrics({**base, "train_loss": float(m["train_loss"])})
        if "val_loss" in m:
            extra = {"val_accuracy": float(m["val_accuracy"])} if "val_accuracy" in m else {}
            self.record.append_metrics({**base, "val_loss": float(m["val_loss"]), **extra})
            log.info("%sepoch %d: train loss %.4f, validation loss %.4f", f"fold {self.fold}, " if self.fold else "",
                     epoch, float(m["train_loss"]), float(m["val_loss"]))
