"""Supervised fine-tuning: a classification head on the final hidden state of a pretrained lmlab run.

`python -m lmlab.eval.finetune pretrained=<run dir> task=era` (conf/finetune.yaml; task selects a
config of the group conf/task/) builds the task's
labeled examples from the corpus the run trained on: training examples from its train split,
validation examples (early stopping on their loss, Lightning's EarlyStopping) from its validation
split, and scores the task itself (test split) at the end. The result is an ordinary run record in
${runs_dir}/${group}/<run id>: config.yaml, env.json, status.json, metrics.jsonl (a train and a
validation row per epoch), result.json (with the test metrics and the majority-class baseline),
eval.json, learning_curve.png and checkpoints/last.ckpt. A completed fine-tune is skipped when
relaunched with the same config.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from lmlab.errors import ConfigError, LmlabError
from lmlab.eval.augment import augment, check_augment
from lmlab.train.module import l1_penalty
from lmlab.eval.scoring import Scores
from lmlab.eval.tasks import Task

log = logging.getLogger("lmlab.eval")
OUTPUT_KEYS = ("runs_dir", "group", "threads", "progress_bar")


class Classifier(L.LightningModule):
    """The pretrained GPT with its LM head replaced by a linear map from the last token's final hidden
    state (after the final norm) to the classes."""

    def __init__(self, backbone: nn.Module, n_classes: int, cfg: dict):
        super().__init__()
        backbone.lm_head = nn.Identity()  # the GPT now returns hidden states where it returned logits
        self.backbone, self.cfg = backbone.train(), cfg  # loaded in eval mode; dropout, if any, trains
        self.head = nn.Linear(backbone.cfg.d_model, n_classes)

    def forward(self, idx: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.backbone(idx)
        return self.head(hidden[torch.arange(len(idx), device=idx.device), lengths - 1])

    def training_step(self, batch, batch_idx):
        idx, lengths, labels = batch
        loss = F.cross_entropy(self(idx, lengths), labels)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(labels))
        return loss + l1_penalty(self, self.cfg["l1"]) if self.cfg["l1"] else loss

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
        self.eval()
        out = [F.log_softmax(self(idx.to(self.device), lengths.to(self.device)), -1).double().cpu().numpy()
               for idx, lengths, _ in loader]
        return np.concatenate(out)


class Examples(Dataset):
    """A task's prompts as token ids (the last seq_len tokens), augmented per (epoch, example) if asked."""

    def __init__(self, task: Task, tok, seq_len: int, augment_cfg: dict | None = None, seed: int = 0):
        self.ids = [e.ids[-seq_len:] for e in tok.encode_batch(task.prompts, add_special_tokens=False)]
        self.labels, self.augment_cfg, self.seed = task.labels, augment_cfg, seed

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, key):
        epoch, i = key if isinstance(key, tuple) else (0, key)
        ids = self.ids[i]
        if self.augment_cfg and any(self.augment_cfg[k] for k in ("token_dropout", "span_deletion", "local_swaps")):
            ids = augment(ids, self.seed, epoch * len(self.ids) + i, **self.augment_cfg)
        return ids, int(self.labels[i])


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


def collate(items):
    lengths = torch.tensor([len(ids) for ids, _ in items])
    idx = torch.zeros(len(items), int(lengths.max()), dtype=torch.long)
    for row, (ids, _) in enumerate(items):
        idx[row, :len(ids)] = torch.tensor(ids)
    return idx, lengths, torch.tensor([y for _, y in items])


class EpochRows(L.Callback):
    """A train row and a validation row in metrics.jsonl after every epoch."""

    def __init__(self, record, tokens_per_epoch: int):
        self.record, self.tokens_per_epoch = record, tokens_per_epoch

    def on_train_epoch_end(self, trainer, module) -> None:
        m = trainer.callback_metrics
        epoch = trainer.current_epoch + 1
        base = {"step": trainer.global_step, "epoch": epoch, "tokens": epoch * self.tokens_per_epoch}
        self.record.append_metrics({**base, "train_loss": float(m["train_loss"])})
        if "val_loss" in m:
            self.record.append_metrics({**base, "val_loss": float(m["val_loss"]),
                                        "val_accuracy": float(m["val_accuracy"])})
            log.info("epoch %d: train loss %.4f, validation loss %.4f, accuracy %.3f", epoch, float(m["train_loss"]),
                     float(m["val_loss"]), float(m["val_accuracy"]))


def labeled_sets(task_cfg: dict, data_dir: str | Path, cfg: dict, model_tokenizer: str) -> tuple[Task, Task, Task]:
    """(train, validation, test) examples of a corpus classification task, from the three splits."""
    from lmlab.eval.tasks import build_task, corpus_task, sample

    if task_cfg["kind"] != "era":
        raise ConfigError(f"task {task_cfg['name']}: kind={task_cfg['kind']} cannot be fine-tuned on, expected a "
                          "classification task built from the corpus (kind=era)")
    train = sample(corpus_task(task_cfg, data_dir, "train", True, model_tokenizer), cfg["n_train"], cfg["seed"])
    val = sample(corpus_task(task_cfg, data_dir, "validation", model_tokenizer=model_tokenizer), cfg["n_val"],
                 cfg["seed"])
    return train, val, build_task(task_cfg, data_dir, model_tokenizer)


def finetune(cfg: dict) -> dict:
    """Fine-tune, record, and return result.json's content (a completed run with this config: skipped)."""
    from lmlab.eval.tasks import tokenizer_sha256
    from lmlab.runs.load import load_model
    from lmlab.runs.record import RunRecord, config_hash

    if not cfg["pretrained"]:
        raise ConfigError("pretrained: not set, expected pretrained=<run directory>")
    check_augment(cfg["augment"])
    task_cfg = cfg["task"]
    model, tok, pre_cfg = load_model(cfg["pretrained"])
    if cfg["dropout"] is not None:
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.p = cfg["dropout"]
    pre_id = Path(cfg["pretrained"]).resolve().name
    record_cfg = {"task": task_cfg, "finetune": cfg, "model": pre_cfg["model"], "data": pre_cfg["data"],
                  "seed": cfg["seed"], "run": {"group": cfg["group"], "name": None, "resume": True},
                  "pretrained": {"run_dir": str(Path(cfg["pretrained"]).resolve()), "run_id": pre_id}}
    # Where it goes and how it shows progress are not what is trained.
    identity = {**record_cfg, "finetune": {k: v for k, v in cfg.items() if k not in OUTPUT_KEYS}}
    run_id = f"{task_cfg['name']}-ft-{pre_id}-s{cfg['seed']}-{config_hash(identity)[:8]}"
    rec = RunRecord(Path(cfg["runs_dir"]) / cfg["group"] / run_id)
    done = rec.result()
    if done and done.get("status") == "completed":
        log.info("fine-tune %s already completed: skipped", rec.dir)
        return done
    train, val, test = labeled_sets(task_cfg, pre_cfg["data"]["dir"], cfg, tokenizer_sha256(tok))
    return _train_and_record(cfg, record_cfg, rec, run_id, model, tok, (train, val, test))


def _train_and_record(cfg, record_cfg, rec, run_id, model, tok, sets) -> dict:
    from lmlab.eval.evaluate import summarise
    from lmlab.eval.results import EVAL_FILE
    from lmlab.eval.overfit import gap_growing, save_learning_curve
    from lmlab.io import read_jsonl, write_json
    from lmlab.runs.record import now_iso
    from lmlab.train.callbacks import save_checkpoint

    train, val, test = sets
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    L.seed_everything(cfg["seed"], workers=True, verbose=False)
    seq_len = model.cfg.seq_len
    train_data = Examples(train, tok, seq_len, cfg["augment"], cfg["seed"])
    loaders = [DataLoader(train_data, batch_size=cfg["batch_size"], sampler=EpochOrder(len(train), cfg["seed"]),
                          collate_fn=collate)]
    loaders += [DataLoader(Examples(t, tok, seq_len), batch_size=cfg["batch_size"], collate_fn=collate)
                for t in (val, test)]
    module = Classifier(model, len(train.class_names), cfg)
    tokens_per_epoch = sum(len(ids) for ids in train_data.ids)
    stopper = L.pytorch.callbacks.EarlyStopping("val_loss", min_delta=cfg["early_stopping"]["min_delta"],
                                                patience=cfg["early_stopping"]["patience"], mode="min")
    progress = sys.stderr.isatty() if cfg["progress_bar"] is None else cfg["progress_bar"]
    trainer = L.Trainer(accelerator="auto", devices=1, max_epochs=cfg["max_epochs"], logger=False,
                        enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=progress,
                        num_sanity_val_steps=0, callbacks=[stopper, EpochRows(rec, tokens_per_epoch)],
                        default_root_dir=rec.dir)
    rec.write_config(record_cfg)
    rec.write_env()
    rec.metrics_path.unlink(missing_ok=True)
    rec.set_status("running", step=0)
    log.info("fine-tune %s: %d train, %d validation, %d test examples, %d classes", rec.dir, len(train), len(val),
             len(test), len(train.class_names))
    try:
        trainer.fit(module, loaders[0], loaders[1])
    except LmlabError as err:
        rec.set_status("failed", str(err))
        raise
    save_checkpoint(trainer, rec)
    lp = module.log_probs(loaders[2])
    ones = np.ones_like(lp)
    entry = summarise(test, Scores(lp, ones, ones, test.labels), cfg["scheme"])
    entry.update({"scheme": cfg["scheme"], "evaluated_at": now_iso(), "finetuned": True})
    write_json(rec.dir / EVAL_FILE, {"run_dir": str(rec.dir), "tasks": {test.name: entry}})
    rows = read_jsonl(rec.metrics_path)
    epochs = sum("train_loss" in r for r in rows)
    stopped = bool(stopper.stopped_epoch)
    reason = (f"early stopping after epoch {stopper.stopped_epoch + 1}: validation loss stopped improving"
              if stopped else None)
    result = {
        "status": "completed", "reason": reason, "run_id": run_id, "task": test.name,
        "pretrained_run": record_cfg["pretrained"]["run_id"],
        "final_val_loss": next((r["val_loss"] for r in reversed(rows) if "val_loss" in r), None),
        "final_train_loss": next((r["train_loss"] for r in reversed(rows) if "train_loss" in r), None),
        "epochs": epochs, "stopped_early": stopped, "steps": trainer.global_step,
        "tokens": epochs * tokens_per_epoch,
        "gap_growing": gap_growing(rows), "n_params": sum(p.numel() for p in module.parameters()),
        "model": record_cfg["model"]["size"], "n_train": len(train), "n_val": len(val), "n_test": len(test),
        **{key: entry[key] for key in ("accuracy", "accuracy_ci", "precision", "recall", "f1", "f1_ci",
                                       "majority_baseline", "task_loss")},
    }
    rec.write_result(result)
    rec.set_status("completed", reason, step=trainer.global_step)
    save_learning_curve(rec.dir)
    log.info("fine-tune %s: test accuracy %.3f (majority %.3f), macro f1 %.3f", rec.dir, result["accuracy"],
             result["majority_baseline"], result["f1"])
    return result


def compose_finetune(overrides: list[str]) -> dict:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from lmlab.eval.config import CONF_DIR, plain

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="finetune", overrides=overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(f"finetune config: {str(err).splitlines()[0]}") from None
    name = cfg.hydra.runtime.choices["task"]
    del cfg.hydra
    cfg = plain(cfg)
    cfg["task"]["name"] = name
    return cfg


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a in ("-h", "--help") for a in argv):
        print("usage: python -m lmlab.eval.finetune pretrained=<run dir> [task=era] [key=value ...]  "
              "(keys: conf/finetune.yaml)")
        return 0
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    from lmlab.train.run import quiet_lightning

    quiet_lightning()
    try:
        result = finetune(compose_finetune(argv))
    except LmlabError as err:
        print(f"lmlab.eval.finetune: error: {err}", file=sys.stderr)
        return 2
    print(f"{result['task']}: accuracy {result['accuracy']:.3f} (majority {result['majority_baseline']:.3f}), "
          f"macro f1 {result['f1']:.3f}; {result['epochs']} epoch(s)" + (" (stopped early)" if result["stopped_early"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
