"""Pruning inside training: a search trial reports its validation losses to its Optuna study, and
stops when the study's pruner (median, successive halving, ...) finds it hopeless.

Losses are reported at the run's validation milestones, numbered 0, 1, 2, ... Milestones sit at the
same log-spaced fractions of the budget whatever the batch size, so the pruner compares trials at
equal shares of their budgets. The trial also carries what the study needs to count the compute that
pruning saved: its planned FLOPs and, once pruned, the FLOPs it used.
"""

from __future__ import annotations

import logging

from lmlab.train.callbacks import OnStep

log = logging.getLogger("lmlab.tune")


class TrialPruning(OnStep):
    """Lightning callback for a run launched as a search trial (the config's `tune` section set).

    Place it after ValidationMilestones, whose latest (step, loss) it reads. After a prune, `reason`
    says why and the trainer stops at the end of the step."""

    def __init__(self, tune_cfg: dict, validation, planned_steps: int, flops_per_step: float, run_dir: str):
        super().__init__()
        self.tune_cfg, self.validation = tune_cfg, validation
        self.planned_steps, self.flops_per_step, self.run_dir = planned_steps, flops_per_step, run_dir
        self.milestones = sorted(validation.milestones)
        self.trial = None
        self.reason: str | None = None

    def on_train_start(self, trainer, module) -> None:
        self.seen_step = trainer.global_step
        if trainer.is_global_zero:
            from lmlab.tune.study import pruner_from, trial_of

            self.trial = trial_of(self.tune_cfg)
            self.trial.study.pruner = pruner_from(self.trial.study.user_attrs.get("pruner"))  # the sweeper's
            self.trial.set_user_attr("run_dir", self.run_dir)
            self.trial.set_user_attr("flops_planned", self.planned_steps * self.flops_per_step)

    def on_step(self, trainer, module) -> None:
        last = self.validation.last
        if last is None or last[0] != trainer.global_step or trainer.global_step == self.planned_steps:
            return  # no validation this step; the last one is the objective, not a pruning point
        prune = False
        milestone = self.milestones.index(last[0])
        if trainer.is_global_zero:
            self.trial.report(last[1], milestone)
            prune = self.trial.should_prune()
        if trainer.strategy.broadcast(prune, src=0):  # every rank stops together
            self.stop(trainer, milestone, last)

    def stop(self, trainer, milestone: int, last: tuple[int, float]) -> None:
        step, loss = last
        self.reason = (f"pruned at validation milestone {milestone} (step {step} of {self.planned_steps}): "
                       f"val loss {loss:.4f} is worse than the pruner lets through")
        if trainer.is_global_zero:
            self.trial.set_user_attr("pruned", {"step": step, "milestone": milestone,
                                                "flops_used": step * self.flops_per_step})
        log.info("trial %d: %s", self.tune_cfg["trial"], self.reason)
        trainer.should_stop = True


def trial_pruning(cfg: dict, validation, planned_steps: int, flops_per_step: float, run_dir) -> TrialPruning | None:
    """The callback for a run that is a search trial, else None."""
    tune = cfg.get("tune") or {}
    if tune.get("trial") is None:
        return None
    return TrialPruning(tune, validation, planned_steps, flops_per_step, str(run_dir))
