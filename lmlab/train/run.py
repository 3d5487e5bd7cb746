"""One training run from a composed config: find or create its run directory, train, record."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from lmlab.data.datamodule import TokenDataModule
from lmlab.errors import ConfigError, DataError, LmlabError
from lmlab.launch.preemption import RequeueOnSignal
from lmlab.models.family import count_params, resolve_config, flops_per_token_6n, flops_per_token_exact
from lmlab.runs.record import RunRecord, read_jsonl, run_id
from lmlab.train.budget import BudgetPlan, plan_budget
from lmlab.train.callbacks import PeriodicCheckpoint, StepMetrics, ValidationMilestones, save_checkpoint
from lmlab.train.module import LanguageModel
from lmlab.train.throughput import peak_flops

log = logging.getLogger("lmlab.train")

# Lightning's hint for interactive SLURM sessions (lmlab launches through submitit and srun itself),
# and a deprecation inside Lightning that users cannot act on.
warnings.filterwarnings("ignore", message=r".*The `srun` command is available on your system")
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


def quiet_lightning() -> None:
    """One copy of each Lightning message, in Hydra's format, without the advertisement."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(lambda record: "Tip:" not in record.getMessage())


quiet_lightning()


def plain(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)


PRECISIONS = ("32", "bf16-mixed")


def accumulation_steps(trainer_cfg: dict) -> int:
    per_pass = trainer_cfg["micro_batch_size"] * trainer_cfg["devices"] * trainer_cfg["num_nodes"]
    if per_pass <= 0 or trainer_cfg["global_batch_size"] % per_pass:
        raise ConfigError(
            f"trainer.global_batch_size={trainer_cfg['global_batch_size']} must be a positive multiple of "
            f"micro_batch_size x devices x num_nodes = {per_pass}")
    return trainer_cfg["global_batch_size"] // per_pass


def data_dir(cfg: dict) -> Path:
    """The prepared data directory, preparing the preset of the same name on first use if allowed."""
    path = Path(cfg["data"]["dir"])
    if (path / "manifest.json").exists():
        return path
    name = cfg["data"]["name"]
    if not cfg["data"]["prepare"] or path.name != name:
        raise DataError(f"data.dir={path}: no prepared data (no manifest.json); run `lmlab-prepare preset={name}` "
                        f"or `lmlab-prepare source=... source.name={name}`")
    from lmlab.data.prepare import prepare_preset

    return prepare_preset(name, path.parent)


def val_milestones(total_steps: int, n: int) -> list[int]:
    """n log-spaced steps ending at the last one, so loss curves can be fitted in log D."""
    first = min(total_steps, max(1, total_steps // 100))
    return sorted({int(round(s)) for s in np.geomspace(first, total_steps, max(1, n))} | {total_steps})


def under_slurm() -> bool:
    return "SLURM_JOB_ID" in os.environ and os.environ.get("SLURM_JOB_NAME") not in ("bash", "interactive")


def make_logger(cfg: dict, run_dir: Path):
    name = cfg["logger"]["name"]
    save_dir = run_dir / "logs"
    if name == "none":
        return False
    save_dir.mkdir(parents=True, exist_ok=True)
    if name == "csv":
        return L.pytorch.loggers.CSVLogger(save_dir, name="", version="")
    try:
        if name == "tensorboard":
            return L.pytorch.loggers.TensorBoardLogger(save_dir, name="", version="")
        return L.pytorch.loggers.WandbLogger(project=cfg["logger"]["project"], save_dir=str(save_dir),
                                             name=run_dir.name, id=run_dir.name, resume="allow")
    except ModuleNotFoundError as err:
        raise ConfigError(f"logger.name={name} needs the {name} package: pip install -e '.[{name}]'") from None


def show_progress_bar(cfg: dict) -> bool:
    setting = cfg["trainer"]["progress_bar"]
    return sys.stderr.isatty() if setting is None else bool(setting)


class Run:
    """Everything fixed before training starts: the plan, the model's size, where it all goes."""

    def __init__(self, cfg: DictConfig):
        self.cfg = plain(cfg)
        c = self.cfg
        if c["trainer"]["precision"] not in PRECISIONS:
            raise ConfigError(f"trainer.precision={c['trainer']['precision']!r}: expected one of {', '.join(PRECISIONS)}")
        if c["trainer"]["threads"]:
            torch.set_num_threads(c["trainer"]["threads"])
        self.accumulation = accumulation_steps(c["trainer"])
        self.data_dir = data_dir(c)
        self.data = TokenDataModule(self.data_dir, c["model"]["seq_len"], c["trainer"]["micro_batch_size"],
                                    c["seed"], c["trainer"]["val_tokens"], self.accumulation,
                                    c["data"]["verify_checksums"])
        self.data.setup()  # a missing or corrupt shard fails here, before anything is written
        self.gpt = resolve_config(c["model"], vocab_size=self.data.vocab_size)
        self.counts = count_params(self.gpt)
        self.fpt_6n, self.fpt_exact = flops_per_token_6n(self.gpt), flops_per_token_exact(self.gpt)
        tokens_per_step = c["trainer"]["global_batch_size"] * c["model"]["seq_len"]
        self.plan: BudgetPlan = plan_budget(c["budget"], self.counts["n_params"], self.fpt_exact, tokens_per_step)
        self.id = run_id(c, self.plan.tag)
        self.record = RunRecord(Path(c["paths"]["runs_dir"]) / c["run"]["group"] / self.id)

    def result(self, status: str, reason: str | None, final_val_loss: float | None,
               final_train_loss: float | None, steps: int, wall_s: float) -> dict:
        c, g = self.cfg, self.gpt
        tokens = steps * self.plan.tokens_per_step
        return {
            "status": status, "reason": reason, "run_id": self.id,
            "final_val_loss": final_val_loss, "final_train_loss": final_train_loss,
            **self.counts, "tokens": tokens, "steps": steps, "planned_steps": self.plan.steps,
            "flops_6n": tokens * self.fpt_6n, "flops_exact": tokens * self.fpt_exact,
            "flops_per_token_6n": self.fpt_6n, "flops_per_token_exact": self.fpt_exact,
            "wall_s": wall_s, "model": c["model"]["size"], "n_layer": g.n_layer, "d_model": g.d_model,
            "n_head": g.n_head, "seq_len": g.seq_len, "vocab_size": g.vocab_size,
            "global_batch_size": c["trainer"]["global_batch_size"], "lr": c["optim"]["lr"],
            "seed": c["seed"], "data": c["data"]["name"],
        }

    def trainer(self, callbacks: list[L.Callback]) -> L.Trainer:
        t = self.cfg["trainer"]
        plugins = []
        if under_slurm():
            from lightning.pytorch.plugins.environments import SLURMEnvironment

            plugins.append(SLURMEnvironment(auto_requeue=False))  # submitit requeues, not Lightning
        distributed = t["devices"] * t["num_nodes"] > 1
        return L.Trainer(
            accelerator=t["accelerator"], devices=t["devices"], num_nodes=t["num_nodes"],
            strategy="ddp" if distributed else "auto", precision=t["precision"],
            max_steps=self.plan.steps, max_epochs=-1, accumulate_grad_batches=self.accumulation,
            limit_val_batches=0, num_sanity_val_steps=0, enable_checkpointing=False,
            use_distributed_sampler=False, logger=make_logger(self.cfg, self.record.dir),
            callbacks=callbacks, enable_progress_bar=show_progress_bar(self.cfg), enable_model_summary=False,
            log_every_n_steps=t["log_every_steps"], default_root_dir=self.record.dir, plugins=plugins,
        )

    def execute(self) -> dict:
        """Skip if completed, resume if interrupted, else train from scratch. Returns result.json's
        content, or for a run stopped by a preemption signal {"status": "preempted", ...}."""
        rec, c = self.record, self.cfg
        done = rec.result()
        if c["run"]["resume"] and done and done["status"] == "completed":
            log.info("run %s already completed (final val loss %.4f): skipped", rec.dir, done["final_val_loss"])
            return done
        resume = c["run"]["resume"] and rec.checkpoint.exists()
        L.seed_everything(c["seed"], workers=True, verbose=False)
        module = LanguageModel(self.gpt, c["optim"], c["schedule"], self.plan.steps, c["trainer"]["compile"])
        t = c["trainer"]
        metrics = StepMetrics(rec, t["log_every_steps"], self.plan.tokens_per_step, self.fpt_6n, self.fpt_exact,
                              None, log_lines=not show_progress_bar(c))
        val = ValidationMilestones(rec, val_milestones(self.plan.steps, t["val_milestones"]), self._val_batches,
                                   self.plan.tokens_per_step, self.fpt_6n, self.fpt_exact)
        preemption = self._preemption_callback()
        trainer = self.trainer([metrics, val, PeriodicCheckpoint(rec, t["ckpt_every_steps"], self.plan.tokens_per_step),
                                preemption])
        metrics.peak_flops = peak_flops(trainer.strategy.root_device, t["precision"], t["peak_flops"])
        if trainer.is_global_zero:
            self._start_record(resume)
        try:
            trainer.fit(module, datamodule=self.data, ckpt_path=str(rec.checkpoint) if resume else None)
        except LmlabError as err:
            return self._finish(trainer, "failed", str(err), None, module)
        except SystemExit as stop:  # Lightning turns Ctrl-C into an exit; a preemption hand-over exits too
            if not preemption.stopped_by and trainer.is_global_zero:
                rec.set_status("interrupted", f"stopped at step {trainer.global_step} (exit {stop.code}); relaunch to resume",
                               step=trainer.global_step, tokens=trainer.global_step * self.plan.tokens_per_step)
            raise
        except Exception as err:
            self._finish(trainer, "failed", f"{type(err).__name__}: {err}", None, module)
            raise
        if preemption.stopped_by:  # checkpointed and marked preempted; a relaunch resumes it
            return {"status": "preempted", "reason": preemption.stopped_by, "steps": trainer.global_step}
        loss = val.last[1] if val.last and val.last[0] == trainer.global_step else val.validate(trainer, module)
        return self._finish(trainer, "completed", None, loss, module)

    def _val_batches(self, rank: int, world_size: int) -> list[torch.Tensor]:
        return self.data.val_batches(rank, world_size, self.cfg["trainer"]["micro_batch_size"])

    def _preemption_callback(self) -> RequeueOnSignal:

        def mark(status: str, reason: str) -> None:
            self.record.set_status(status, reason)

        return RequeueOnSignal(lambda trainer: save_checkpoint(trainer, self.record.checkpoint), mark)

    def _start_record(self, resume: bool) -> None:
        rec = self.record
        rec.write_config(self.cfg)
        rec.write_env()
        rec.write_plan({
            "run_id": self.id, **self.counts, "vocab_size": self.gpt.vocab_size,
            "flops_per_token_6n": self.fpt_6n, "flops_per_token_exact": self.fpt_exact,
            "planned_steps": self.plan.steps, "planned_tokens": self.plan.tokens,
            "tokens_per_step": self.plan.tokens_per_step,
        })
        step = 0
        if resume:
            step = torch.load(rec.checkpoint, map_location="cpu", weights_only=False)["global_step"]
            rec.truncate_metrics(step)
            log.info("resuming %s from step %d", rec.dir, step)
        else:
            rec.metrics_path.unlink(missing_ok=True)
        rec.set_status("running", step=step)
        log.info("run %s: %s, N=%s, %d steps, %s tokens", rec.dir, self.cfg["model"]["size"],
                 f"{self.counts['n_params']:,}", self.plan.steps, f"{self.plan.tokens:,}")

    def _finish(self, trainer: L.Trainer, status: str, reason: str | None, val_loss: float | None,
                module: LanguageModel) -> dict:
        rows = [r for r in read_jsonl(self.record.metrics_path) if "train_loss" in r]
        result = self.result(status, reason, val_loss, rows[-1]["train_loss"] if rows else None,
                             trainer.global_step, module.elapsed())
        if trainer.is_global_zero:
            self.record.write_result(result)
            self.record.set_status(status, reason, step=trainer.global_step, tokens=result["tokens"])
            if status == "failed":
                log.error("run %s failed: %s", self.record.dir, reason)
        return result


def train(cfg: DictConfig) -> dict:
    return Run(cfg).execute()
