"""One training run from a composed config: find or create its run directory, train, record."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_only
import numpy as np
import torch
from omegaconf import DictConfig

from lmlab.audit.callback import BiasAuditCurve
from lmlab.data.datamodule import TokenDataModule
from lmlab.data.shards import shard_key
from lmlab.errors import ConfigError, DataError, LmlabError
from lmlab.eval.callback import InLoopEval
from lmlab.eval.overfit import EarlyStopping, epochs_seen, gap_growing, save_learning_curve
from lmlab.io import atomic_path, read_jsonl
from lmlab.launch.preemption import RequeueOnSignal
from lmlab.runs.load import load_state
from lmlab.runs.record import RunRecord
from lmlab.runspec import RunSpec, accumulation_steps, check_values, plain, resolve_run
from lmlab.train.branches import fractions, member_cfg, member_schedule, members, snapshot_name
from lmlab.train.callbacks import OnStep, PeriodicCheckpoint, StepMetrics, ValidationMilestones, save_checkpoint
from lmlab.train.checkpoint_io import checkpoint_plugins
from lmlab.train.forecast_callback import live_forecast
from lmlab.train.module import LanguageModel
from lmlab.train.strategy import training_strategy
from lmlab.train.throughput import peak_flops
from lmlab.tune.pruning import trial_pruning

log = logging.getLogger("lmlab.train")

# Lightning's hint for interactive SLURM sessions (lmlab launches through submitit and srun itself),
# and a deprecation inside Lightning that users cannot act on.
warnings.filterwarnings("ignore", message=r".*The `srun` command is available on your system")
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


# Lightning's banners (hardware found, tips, "max_steps reached"): lmlab says what matters itself.
_BANNERS = ("Tip:", "GPU available", "TPU available", "HPU available", "IPU available", "`Trainer.fit` stopped",
            "💡", "You are using a CUDA device")


def quiet_lightning() -> None:
    """One copy of each Lightning message, in Hydra's format, without the banners."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(lambda record: not any(b in record.getMessage() for b in _BANNERS))


quiet_lightning()


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
    # Each segment of a resumed run logs into its own folder: Lightning would delete the earlier one's file.
    segment = f"segment-{len(list(save_dir.glob('segment-*')))}"
    if name == "csv":
        return L.pytorch.loggers.CSVLogger(save_dir, name="", version=segment)
    try:
        if name == "tensorboard":
            return L.pytorch.loggers.TensorBoardLogger(save_dir, name="", version=segment)
        return L.pytorch.loggers.WandbLogger(project=cfg["logger"]["project"], save_dir=str(save_dir),
                                             name=run_dir.name, id=run_dir.name, resume="allow")
    except ModuleNotFoundError:
        raise ConfigError(f"logger.name={name} needs the {name} package: pip install -e '.[{name}]'") from None


def show_progress_bar(cfg: dict) -> bool:
    setting = cfg["trainer"]["progress_bar"]
    return sys.stderr.isatty() if setting is None else bool(setting)


def check_accelerator(trainer_cfg: dict) -> None:
    """A GPU config on a machine without one fails here, in one line, not deep inside Lightning."""
    wanted = trainer_cfg["accelerator"]
    if wanted in ("gpu", "cuda") and torch.cuda.device_count() < trainer_cfg["devices"]:
        raise ConfigError(f"trainer.accelerator={wanted} with trainer.devices={trainer_cfg['devices']}, but this machine "
                          f"has {torch.cuda.device_count()} CUDA device(s); use trainer=cpu or run it on a GPU node")


class Run:
    """Everything fixed before training starts: the run spec (plan, size, directory) and the data."""

    def __init__(self, cfg: DictConfig | dict, data: TokenDataModule | None = None):
        """data: a set-up data module to share (the members of a branched launch train on the same data)."""
        c = plain(cfg)
        check_values(c)  # every value checked before the data is touched
        check_accelerator(c["trainer"])
        if c["trainer"]["threads"]:
            torch.set_num_threads(c["trainer"]["threads"])
        self.data_dir = data_dir(c)
        if data is None:
            data = TokenDataModule(self.data_dir, c["model"]["seq_len"], c["trainer"]["micro_batch_size"],
                                   c["seed"], c["trainer"]["val_tokens"], accumulation_steps(c["trainer"]),
                                   c["data"]["verify_checksums"])
            data.setup()  # a missing or corrupt shard fails here, before anything is written
        self.data = data
        self.key = shard_key(self.data.manifest)  # encrypted data: its checkpoints are encrypted too
        self.spec: RunSpec = resolve_run(c, vocab_size=self.data.vocab_size)
        self.cfg, self.plan, self.id = c, self.spec.budget, self.spec.run_id
        self.data.warn_if_short(self.plan.tokens)  # many passes over the data, or a smaller vocabulary
        self.record = RunRecord(self.spec.run_dir)
        self.damaged: list[str] = []  # notes on checkpoints set aside, for the status

    def result(self, status: str, reason: str | None, final_val_loss: float | None,
               final_train_loss: float | None, steps: int, wall_s: float) -> dict:
        c, spec, g = self.cfg, self.spec, self.spec.gpt
        tokens = steps * self.plan.tokens_per_step
        return {
            "status": status, "reason": reason, "run_id": self.id,
            "final_val_loss": final_val_loss, "final_train_loss": final_train_loss,
            "n_params": spec.n_params, "n_params_nonembedding": spec.n_params_nonembedding,
            "tokens": tokens, "steps": steps, "planned_steps": self.plan.steps, **spec.flops(tokens),
            "flops_per_token_6n": spec.flops_per_token_6n, "flops_per_token_exact": spec.flops_per_token_exact,
            "wall_s": wall_s, "model": c["model"]["size"], "n_layer": g.n_layer, "d_model": g.d_model,
            "n_head": g.n_head, "seq_len": g.seq_len, "vocab_size": g.vocab_size,
            "global_batch_size": c["trainer"]["global_batch_size"], "lr": c["optim"]["lr"],
            "seed": c["seed"], "data": c["data"]["name"], **self._branch_fields(steps),
        }

    def trainer(self, callbacks: list[L.Callback], strategy) -> L.Trainer:
        t = self.cfg["trainer"]
        plugins = checkpoint_plugins(self.key)
        if under_slurm():
            from lightning.pytorch.plugins.environments import SLURMEnvironment

            plugins.append(SLURMEnvironment(auto_requeue=False))  # submitit requeues, not Lightning
        return L.Trainer(
            accelerator=t["accelerator"], devices=t["devices"], num_nodes=t["nodes"],
            strategy=strategy, precision=t["precision"],
            max_steps=self.plan.steps, max_epochs=-1, accumulate_grad_batches=self.spec.accumulation,
            limit_val_batches=0, num_sanity_val_steps=0, enable_checkpointing=False,
            use_distributed_sampler=False, logger=make_logger(self.cfg, self.record.dir),
            callbacks=callbacks, enable_progress_bar=show_progress_bar(self.cfg), enable_model_summary=False,
            log_every_n_steps=t["log_every_steps"], default_root_dir=self.record.dir, plugins=plugins,
        )

    def execute(self) -> dict:
        """Skip if completed, resume if interrupted, else train from scratch. Returns result.json's
        content, or for a run stopped by a preemption signal {"status": "preempted", ...}.
        Rank zero holds the run directory's lock throughout, so a second launch refuses at once.
        A member of a branched launch (lmlab.train.branches) runs the whole launch: trunk, then branches."""
        return self._execute_branched() if self.spec.member else self._execute_one()

    def _execute_one(self) -> dict:
        rec, c = self.record, self.cfg
        done = rec.result()
        if c["run"]["resume"] and done and done["status"] == "completed":
            log.info("run %s already completed (final val loss %.4f): skipped", rec.dir, done["final_val_loss"])
            return done
        L.seed_everything(c["seed"], workers=True, verbose=False)
        schedule, schedule_steps = self._schedule()
        module = LanguageModel(self.spec.gpt, c["optim"], schedule, schedule_steps, c["trainer"]["compile"])
        t = c["trainer"]
        metrics = StepMetrics(rec, t["log_every_steps"], self.spec, None, log_lines=not show_progress_bar(c))
        milestones = val_milestones(self.plan.steps, t["val_milestones"])  # in-loop tasks and audits run there too
        val = ValidationMilestones(rec, milestones, self._val_batches, self.spec)
        preemption = self._preemption_callback()
        # A search trial reports its validation losses and may be pruned (after `val`, whose losses it reads).
        self.pruning = trial_pruning(c, val, self.plan.steps, self.plan.tokens_per_step * self.spec.flops_per_token,
                                     rec.dir)
        self.early = (EarlyStopping(lambda: val.last, t["early_stopping_patience"], t["early_stopping_min_delta"])
                      if t["early_stopping_patience"] else None)
        self.forecast = live_forecast(c, self.spec, rec, lambda: val.last)  # shown once meaningful; may stop the run
        in_loop = (InLoopEval(rec.dir, self.data_dir, c["eval"], milestones,
                              self.plan.tokens_per_step) if c["eval"]["tasks"] else None)
        audit = (BiasAuditCurve(rec.dir, self.data_dir, c["audit"], milestones,
                                self.plan.tokens_per_step, t["strategy"]) if c["audit"]["every_val"] else None)
        extra = [cb for cb in (self.pruning, self.early, self.forecast, in_loop, audit, *self._branch_callbacks())
                 if cb is not None]
        trainer = self.trainer([metrics, val, PeriodicCheckpoint(rec, t["ckpt_every_steps"], self.plan.tokens_per_step),
                                preemption, *extra], training_strategy(t, module.model))
        metrics.peak_flops = peak_flops(trainer.strategy.root_device, t["precision"], t["peak_flops"])
        if not trainer.is_global_zero:
            return self._train(trainer, module, val, preemption, self._resume_step(announce=False))
        with rec.lock():
            resume_step = self._start_record()
            try:
                return self._train(trainer, module, val, preemption, resume_step)
            except OSError as err:  # a full disk, a vanished directory: say so in the record, then stop
                self._finish(trainer, "failed", f"{type(err).__name__}: {err}", None, module)
                raise LmlabError(f"run {rec.dir} failed: {err}") from None

    def _train(self, trainer, module, val, preemption, resume_step: int | None) -> dict:
        rec = self.record
        ckpt = str(rec.checkpoint) if resume_step is not None else self._trunk_snapshot()
        try:
            trainer.fit(module, datamodule=self.data, ckpt_path=ckpt, weights_only=True)
        except LmlabError as err:
            return self._finish(trainer, "failed", str(err), None, module)
        except SystemExit as stop:  # Lightning turns Ctrl-C into an exit; a preemption hand-over exits too
            if not preemption.stopped_by and trainer.is_global_zero:
                rec.set_status("interrupted", f"stopped at step {trainer.global_step} (exit {stop.code}); relaunch to resume",
                               step=trainer.global_step, tokens=trainer.global_step * self.plan.tokens_per_step)
            raise
        except OSError:
            raise
        except Exception as err:
            if preemption.stopped_by and trainer.world_size > 1:  # handed over; a peer has left, a collective failed
                log.warning("after the %s hand-over: %s: %s; exiting for the requeue", preemption.stopped_by,
                            type(err).__name__, err)
                raise SystemExit(0) from err   # not a failure: the checkpoint is saved and the job requeued
            self._finish(trainer, "failed", f"{type(err).__name__}: {err}", None, module)
            raise
        if preemption.stopped_by:  # checkpointed and marked preempted; a relaunch resumes it
            return {"status": "preempted", "reason": preemption.stopped_by, "steps": trainer.global_step}
        if self.pruning and self.pruning.reason:
            return self._finish(trainer, "pruned", self.pruning.reason, val.last[1], module)
        if self.early and self.early.reason:  # the validation loss stopped improving: the best use of the data is past
            return self._finish(trainer, "stopped_early", self.early.reason, val.last[1], module)
        if self.forecast and self.forecast.reason:  # the forecast interval lies wholly above forecast.stop_above
            return self._finish(trainer, "stopped_early", self.forecast.reason, val.last[1], module)
        loss = val.last[1] if val.last and val.last[0] == trainer.global_step else val.validate(trainer, module)
        return self._finish(trainer, "completed", None, loss, module)

    def _val_batches(self, rank: int, world_size: int) -> list[torch.Tensor]:
        return self.data.val_batches(rank, world_size, self.cfg["trainer"]["micro_batch_size"])

    def _preemption_callback(self) -> RequeueOnSignal:

        def mark(status: str, reason: str) -> None:
            self.record.set_status(status, reason)

        return RequeueOnSignal(lambda trainer: save_checkpoint(trainer, self.record), mark)

    def _resume_step(self, announce: bool = True) -> int | None:
        """The step to resume from, or None to start afresh. A damaged last.ckpt is set aside
        (renamed, never loaded again) and the previous checkpoint takes its place, if it is sound."""
        rec = self.record
        if not self.cfg["run"]["resume"]:
            return None
        for path in (rec.checkpoint, rec.previous_checkpoint):
            if not path.exists():
                continue
            try:
                step = load_state(path, key=self.key)["global_step"]
            except (DataError, KeyError) as err:
                aside = rec.set_aside(path) if announce else path
                self.damaged.append(f"{path.name} was damaged and set aside as {aside.name} ({err})")
                continue
            if path != rec.checkpoint and announce:
                os.replace(path, rec.checkpoint)
            return step
        return None

    def _start_record(self) -> int | None:
        rec = self.record
        rec.write_config(self.cfg)
        rec.write_env()
        plan = self.spec.plan_record()
        if (self.cfg.get("prediction") or {}).get("loss") is not None:  # `lmlab plan`'s, scored once the run completes
            plan["prediction"] = self.cfg["prediction"]
        rec.write_plan(plan)
        step = self._resume_step()
        note = "; ".join(self.damaged) or None
        if step is not None:
            rec.truncate_metrics(step)
            log.info("resuming %s from step %d", rec.dir, step)
        else:
            rec.metrics_path.unlink(missing_ok=True)
            self._copy_trunk_metrics()
        for note_line in self.damaged:
            log.warning("run %s: %s", rec.dir, note_line)
        rec.set_status("running", note, step=step or 0)
        log.info("run %s: %s, N=%s, %d steps, %s tokens", rec.dir, self.cfg["model"]["size"],
                 f"{self.spec.n_params:,}", self.plan.steps, f"{self.plan.tokens:,}")
        return step

    def _finish(self, trainer: L.Trainer, status: str, reason: str | None, val_loss: float | None,
                module: LanguageModel) -> dict:
        rows = read_jsonl(self.record.metrics_path)
        train_rows = [r for r in rows if "train_loss" in r]
        result = self.result(status, reason, val_loss, train_rows[-1]["train_loss"] if train_rows else None,
                             trainer.global_step, module.elapsed())
        # passes over the training split (> 1: data repeats, which changes scaling) and the overfitting flag
        result.update(epochs=epochs_seen(result["tokens"], self.data_dir), gap_growing=gap_growing(rows))
        result.update(self.forecast.result_fields() if getattr(self, "forecast", None) else {})
        if trainer.is_global_zero:
            if status != "failed":
                save_learning_curve(self.record.dir)
            self.record.write_result(result)
            self.record.set_status(status, reason, step=trainer.global_step, tokens=result["tokens"])
            if status == "failed":
                log.error("run %s failed: %s", self.record.dir, reason)
        return result

    # ------------------------------------------------ branched launches (lmlab.train.branches)

    def _execute_branched(self) -> dict:
        """The trunk, then each branch from the trunk's checkpoint at its branch point, in this process.
        Returns the result of the member this config names (the full budget's for the launch config)."""
        runs = [Run(member_cfg(self.cfg, m.fraction), data=self.data)
                for m in members(self.cfg, self.spec.member.launch_steps)]
        trunk, branches = runs[0], runs[1:]
        for run in branches:
            run._await_trunk(trunk)
        result = trunk._execute_one()
        if result["status"] != "completed":  # failed or preempted: the branches wait for a relaunch
            return result
        wanted = self.spec.member.fraction or 1.0
        for run in branches:
            done = run._execute_one()
            if done["status"] != "completed":
                return done
            if run.spec.member.fraction == wanted:
                result, self.record = done, run.record  # the launch reports (and lmlab-train prints) this budget
        return result

    def _await_trunk(self, trunk: "Run") -> None:
        """A branch not yet begun gets its record now, so status and collect see every budget of the launch."""
        rec = self.record
        fresh = rec.result() is None and (rec.status() or {}).get("status") in (None, "waiting")
        if fresh and rank_zero_only.rank == 0:
            rec.write_config(self.cfg)
            rec.write_env()
            rec.write_plan(self.spec.plan_record())
            rec.set_status("waiting", f"waits for trunk {trunk.id} to reach step {self.spec.member.start_step}", step=0)

    def _schedule(self) -> tuple[dict, int]:
        """(schedule group, steps) the learning rate follows: a member's comes from the launch's WSD schedule."""
        m = self.spec.member
        if m is None:
            return self.cfg["schedule"], self.plan.steps
        return member_schedule(self.cfg["schedule"], m), m.schedule_steps

    def _trunk(self) -> RunSpec:
        return resolve_run(member_cfg(self.cfg, None), self.spec.gpt.vocab_size)

    def _branch_callbacks(self) -> list[L.Callback]:
        m = self.spec.member
        if m is None:
            return []
        if m.fraction is None:
            points = {b.start_step for b in members(self.cfg, m.launch_steps)[1:] if b.start_step > 0}
            return [TrunkSnapshots(self.record.dir / "checkpoints", points)]
        self.branch_start = BranchStart()
        return [self.branch_start]

    def _trunk_snapshot(self) -> str | None:
        """Where a branch that has not begun starts: the trunk's checkpoint at its branch point (None: step 0)."""
        m = self.spec.member
        if m is None or m.fraction is None or m.start_step == 0:
            return None
        path = self._trunk().run_dir / "checkpoints" / snapshot_name(m.start_step)
        if not path.is_file():
            raise DataError(f"trunk checkpoint {path} is missing: branch {self.id} cannot start at step {m.start_step} "
                            f"(relaunch with run.resume=false to retrain the trunk)")
        self.branch_start.from_trunk = True
        return str(path)

    def _copy_trunk_metrics(self) -> None:
        """A branch's curve begins with the trunk's rows up to its branch point (marked from_trunk)."""
        m = self.spec.member
        if m is None or m.fraction is None:
            return
        rows = read_jsonl(self._trunk().run_dir / "metrics.jsonl")
        for row in rows:
            if row.get("step", 0) <= m.start_step:
                self.record.append_metrics({**row, "from_trunk": True})

    def _branch_fields(self, steps: int) -> dict:
        """Honest compute for a member: what it trained itself, and what the trunk it shares cost."""
        m = self.spec.member
        if m is None:
            return {}
        tps = self.plan.tokens_per_step
        if m.fraction is None:
            return {"role": "trunk", "budget_fractions": fractions(self.cfg["budget"])}
        trunk_steps = members(self.cfg, m.launch_steps)[0].steps
        trained = max(0, steps - m.start_step) * tps
        return {"role": "branch", "branch_of": self._trunk().run_id,
                "branch_fraction": m.fraction, "branched_at_step": m.start_step, "trained_tokens": trained,
                **{f"trained_{k}": v for k, v in self.spec.flops(trained).items()},
                "trunk_tokens": trunk_steps * tps,
                **{f"trunk_{k}": v for k, v in self.spec.flops(trunk_steps * tps).items()}}


class TrunkSnapshots(OnStep):
    """Keeps the trunk's state at each branch point: checkpoints/step-<k>.ckpt, written atomically."""

    def __init__(self, folder: Path, steps: set[int]):
        super().__init__()
        self.folder, self.steps = folder, steps

    def on_step(self, trainer, module) -> None:
        step = trainer.global_step
        if step not in self.steps:
            return
        path = self.folder / snapshot_name(step)
        if trainer.is_global_zero:
            with atomic_path(path) as tmp:
                trainer.save_checkpoint(tmp, weights_only=False)
        else:
            trainer.save_checkpoint(path, weights_only=False)
        trainer.strategy.barrier("lmlab_snapshot")


class BranchStart(L.Callback):
    """A branch restored from the trunk: the learning rate of its own schedule at once (the checkpoint holds
    the trunk's), and its wall time counted from zero (the trunk's is the trunk's)."""

    def __init__(self):
        self.from_trunk = False

    def on_train_start(self, trainer, module) -> None:
        scheduler = trainer.lr_scheduler_configs[0].scheduler
        for group, base, multiplier in zip(trainer.optimizers[0].param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
            group["lr"] = base * multiplier(trainer.global_step)
        if self.from_trunk:
            module.elapsed_before = 0.0
