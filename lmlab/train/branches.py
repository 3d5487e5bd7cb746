"""Several budgets from one run: a warmup-stable-decay trunk and a cooldown branch per budget.

`lmlab-train schedule=wsd budget.tokens=T 'budget.branches=[0.25,0.5]'` (Hagele et al. 2024) trains
one trunk at the stable learning rate of T's WSD schedule, keeps its state at the step where each
budget's cooldown begins, and finishes each budget b in {0.25T, 0.5T, T} with a branch: the last
decay_frac of b's steps, decaying linearly as wsd does (lmlab.train.schedules.wsd). Warmup is the
trunk's (warmup_frac of T's steps) for every budget, so a branch is step for step the WSD run of
its budget with that warmup: same seed, same data order (a pure function of seed and step).

Every member is an ordinary run directory with its own run id (lmlab.runspec.run_location):
  trunk   the launch config itself (budget.branches set, budget.branch null), in <group>/.trunks/
          (hidden from collect and status, which see only the budgets); trains up to the last
          branch point and saves a checkpoint at every branch point (checkpoints/step-<k>.ckpt);
  branch  the launch config with budget.branch = f; its budget, its tag in the run id and its
          result's `tokens` are f x the budget; its result says `branch_of` (the trunk's run id),
          `branched_at_step`, the tokens and FLOPs it trained itself (`trained_tokens`,
          `trained_flops_6n`: the cooldown only) and the trunk's (`trunk_tokens`, `trunk_flops_6n`),
          so the real cost of a study is the sum of trained_* plus each distinct trunk's once.
Launching any member's config runs the whole plan in one process (lmlab.train.run.Run): the trunk,
then the branches; completed members are skipped and interrupted ones resume where they stopped.
This module only plans (no torch), so ladders and `lmlab ladder plan` use it too.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from lmlab.errors import ConfigError
from lmlab.train.schedules import decay_steps, warmup_steps


@dataclass(frozen=True)
class Member:
    fraction: float | None  # of the launch budget; None: the trunk
    steps: int  # the step the member ends at
    start_step: int  # where a branch leaves the trunk (0 for the trunk)
    schedule_steps: int  # the length of the WSD schedule its learning rate follows
    warmup_steps: int  # the trunk's, shared by every member
    launch_steps: int  # the steps of the launch's full budget (the last branch's)


def branched(budget: dict) -> bool:
    return bool(budget.get("branches"))


def fractions(budget: dict) -> list[float]:
    """The budgets of a branched launch as fractions of its budget, ascending, 1.0 (the budget) last."""
    return sorted({float(f) for f in budget["branches"]} | {1.0})


def check_branches(cfg: dict) -> None:
    """One ConfigError line for a branched config that cannot be planned."""
    budget = cfg["budget"]
    if budget.get("branch") is not None and not branched(budget):
        raise ConfigError(f"budget.branch={budget['branch']!r}: set by lmlab for a cooldown branch only; "
                          f"expected null without budget.branches")
    if not branched(budget):
        return
    if cfg["schedule"]["name"] != "wsd":
        raise ConfigError(f"budget.branches={budget['branches']}: cooldown branches need schedule=wsd "
                          f"(got schedule={cfg['schedule']['name']})")
    bad = [f for f in budget["branches"] if not isinstance(f, (int, float)) or not 0 < f < 1]
    if bad:
        raise ConfigError(f"budget.branches={budget['branches']}: expected fractions of the budget in (0, 1), "
                          f"got {bad[0]!r}")
    if not 0 < cfg["schedule"]["decay_frac"] < 1:
        raise ConfigError(f"schedule.decay_frac={cfg['schedule']['decay_frac']} with budget.branches: expected a fraction "
                          f"in (0, 1) (a branch is a cooldown, the trunk the stable phase before it)")
    if budget.get("branch") is not None and float(budget["branch"]) not in fractions(budget):
        raise ConfigError(f"budget.branch={budget['branch']!r}: expected one of {fractions(budget)} "
                          f"(budget.branches and 1.0)")


def members(cfg: dict, total_steps: int) -> list[Member]:
    """The trunk, then one branch per budget (ascending); total_steps: the full budget's steps."""
    decay = cfg["schedule"]["decay_frac"]
    warmup = warmup_steps(total_steps, cfg["schedule"]["warmup_frac"])
    out = []
    for f in fractions(cfg["budget"]):
        steps = max(1, round(f * total_steps))
        out.append(Member(f, steps, steps - min(steps, decay_steps(steps, decay)), steps, warmup, total_steps))
    trunk = Member(None, max(m.start_step for m in out), 0, total_steps, warmup, total_steps)
    return [trunk, *out]


def member_of(cfg: dict, total_steps: int) -> Member | None:
    """The member a config is (None: an ordinary run)."""
    if not branched(cfg["budget"]):
        return None
    want = cfg["budget"].get("branch")
    return next(m for m in members(cfg, total_steps) if m.fraction == (None if want is None else float(want)))


def member_schedule(schedule: dict, member: Member) -> dict:
    """The schedule group that makes lmlab.train.schedules.lr_lambda over member.schedule_steps give the
    member's learning rates: WSD with the trunk's warmup (its fraction rescaled to these steps)."""
    return {**schedule, "warmup_frac": member.warmup_steps / member.schedule_steps}


def member_cfg(cfg: dict, fraction: float | None) -> dict:
    """A member's config: the launch config with budget.branch = fraction (None: the trunk)."""
    out = copy.deepcopy(cfg)
    out["budget"]["branch"] = fraction
    return out


def snapshot_name(step: int) -> str:
    """The trunk's checkpoint at a branch point, under its checkpoints/."""
    return f"step-{step}.ckpt"
