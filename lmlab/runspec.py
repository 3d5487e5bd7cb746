"""The run spec: every fact that defines a run, resolved once from its config, without torch.

`resolve_run(cfg, vocab_size)` checks the config's values and returns the model's shape, its
parameter counts, its FLOPs per token, the budget plan (tokens, steps), the run id and the run
directory. Training, `lmlab runs status`, ladders, `lmlab plan` and studies all call it; nothing
else works these facts out.

The one unit of compute is COMPUTE, the run-record field `flops_6n`: C = D x (6N + 12 L d T),
with N every weight multiplied per token (the LM head included) and the attention term of PaLM's
appendix B. Budgets in FLOPs, ladders, collected tables, fits (`fit.json` records it under
`compute`) and plans all count C this way; Chinchilla's exact count (appendix F) is recorded
beside it as `flops_exact`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from lmlab.errors import ConfigError, DataError
from lmlab.models.config import GPTConfig
from lmlab.models.family import count_params, flops_per_token_6n, flops_per_token_exact, resolve_config
from lmlab.budget import BudgetPlan, budget_tag, plan_budget
from lmlab.train.branches import Member, branched, check_branches, member_of

COMPUTE = "flops_6n"  # the run-record field that holds C, the one unit of compute
PRECISIONS = ("32", "bf16-mixed")
TRUNKS = ".trunks"  # the folder of a group that holds the trunks of branched launches
_NAME_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=+,-]*")


def compute_per_token(gpt: GPTConfig) -> int:
    """Training FLOPs per token in the unit of COMPUTE."""
    return flops_per_token_6n(gpt)


@dataclass(frozen=True)
class RunSpec:
    cfg: dict  # the resolved config, plain values
    gpt: GPTConfig
    n_params: int  # every parameter, a tied matrix once (Chinchilla's N)
    n_params_nonembedding: int  # Kaplan et al.'s N
    flops_per_token_6n: int
    flops_per_token_exact: int
    budget: BudgetPlan
    accumulation: int  # micro-batches per optimizer step on each device
    run_id: str
    run_dir: Path
    member: Member | None = None  # the trunk or a branch of a branched launch (lmlab.train.branches); None: an ordinary run

    @property
    def flops_per_token(self) -> int:
        """Training FLOPs per token in the unit of COMPUTE."""
        return compute_per_token(self.gpt)

    @property
    def compute(self) -> float:
        """The planned training compute, in the unit of COMPUTE."""
        return self.budget.tokens * compute_per_token(self.gpt)

    def flops(self, tokens: int) -> dict[str, int]:
        """Both FLOP counts of `tokens` trained tokens, keyed as in the run record."""
        return {"flops_6n": tokens * self.flops_per_token_6n, "flops_exact": tokens * self.flops_per_token_exact}

    def plan_record(self) -> dict[str, Any]:
        """plan.json: what the run will be, written at its start (so an unfinished run has its N)."""
        return {
            "run_id": self.run_id, "n_params": self.n_params, "n_params_nonembedding": self.n_params_nonembedding,
            "vocab_size": self.gpt.vocab_size, "flops_per_token_6n": self.flops_per_token_6n,
            "flops_per_token_exact": self.flops_per_token_exact, "planned_steps": self.budget.steps,
            "planned_tokens": self.budget.tokens, "tokens_per_step": self.budget.tokens_per_step,
            "compute": COMPUTE, "planned_compute": self.compute,
        }


def plain(cfg: Any) -> dict:
    """A config as plain Python values (a DictConfig resolved, enums as strings)."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    return cfg


def resolve_run(cfg: Any, vocab_size: int | None = None) -> RunSpec:
    """The run spec of a composed training config. vocab_size: the data's (None: read it from the
    prepared data directory's manifest)."""
    c = plain(cfg)
    check_values(c)
    vocab = vocab_size if vocab_size is not None else data_vocab_size(c)
    gpt = resolve_config(c["model"], vocab_size=vocab)
    counts = count_params(gpt)
    tokens_per_step = c["trainer"]["global_batch_size"] * c["model"]["seq_len"]
    full = plan_budget(c["budget"], counts["n_params"], compute_per_token(gpt), tokens_per_step)
    member = member_of(c, full.steps)
    budget = full if member is None else BudgetPlan(tokens=member.steps * tokens_per_step, steps=member.steps,
                                                    tokens_per_step=tokens_per_step, tag=full.tag)
    run_id, run_dir = run_location(c)
    return RunSpec(cfg=c, gpt=gpt, n_params=counts["n_params"], n_params_nonembedding=counts["n_params_nonembedding"],
                   flops_per_token_6n=flops_per_token_6n(gpt), flops_per_token_exact=flops_per_token_exact(gpt),
                   budget=budget, accumulation=accumulation_steps(c["trainer"]), run_id=run_id, run_dir=run_dir,
                   member=member)


def run_location(cfg: Mapping) -> tuple[str, Path]:
    """(run id, run directory) of a config: <runs_dir>/<run.group>/<name>-<budget>-s<seed>-<hash>; the trunk of
    a branched launch is trunk-<name>-... in <run.group>/.trunks/ (out of sight of collect and status)."""
    from lmlab.runs.record import config_hash

    name = cfg["run"].get("name") or cfg["model"]["size"]
    run_id = f"{name}-{budget_tag(cfg['budget'])}-s{cfg['seed']}-{config_hash(hashed_view(cfg))[:8]}"
    group_dir = contained(Path(cfg["paths"]["runs_dir"]), cfg["run"]["group"], "run.group")
    if branched(cfg["budget"]) and cfg["budget"].get("branch") is None:
        return f"trunk-{run_id}", group_dir / TRUNKS / f"trunk-{run_id}"
    return run_id, group_dir / run_id


def hashed_view(cfg: Mapping) -> dict:
    """The config as its run id hashes it: the branch keys only when set, so that ordinary runs keep the ids
    they had before branches existed."""
    budget = {k: v for k, v in cfg["budget"].items() if k not in ("branches", "branch") or v}  # [] is no branches
    return {**cfg, "budget": budget}


def contained(root: Path, name: str, key: str) -> Path:
    """root/name, refusing a name that is absolute, climbs with '..', or holds odd characters."""
    parts = str(name).split("/")
    if not name or any(not _NAME_PART.fullmatch(p) for p in parts):
        raise ConfigError(f"{key}={name!r}: expected a relative name inside {root} (parts of letters, digits and "
                          f". _ = + , - separated by '/', none starting with '.'), so nothing is written outside it")
    return root.joinpath(*parts)


def data_vocab_size(cfg: Mapping) -> int:
    from lmlab.data.shards import read_manifest

    data_dir = Path(cfg["data"]["dir"])
    if not (data_dir / "manifest.json").is_file():
        raise DataError(f"data.dir={data_dir}: no prepared data (no manifest.json), so the vocabulary is unknown; "
                        f"run `lmlab-prepare` first or give the vocabulary size")
    return int(read_manifest(data_dir)["vocab_size"])


def accumulation_steps(trainer_cfg: Mapping) -> int:
    per_pass = trainer_cfg["micro_batch_size"] * trainer_cfg["devices"] * trainer_cfg["nodes"]
    if trainer_cfg["global_batch_size"] % per_pass:
        raise ConfigError(
            f"trainer.global_batch_size={trainer_cfg['global_batch_size']} must be a multiple of "
            f"micro_batch_size x devices x nodes = {per_pass}")
    return trainer_cfg["global_batch_size"] // per_pass


# (key, test, what is expected): each checked before anything is built or written.
_CHECKS = (
    ("seed", lambda v: v >= 0, "a non-negative integer"),
    ("model.seq_len", lambda v: v >= 1, "a positive integer"),
    ("trainer.global_batch_size", lambda v: v >= 1, "a positive integer"),
    ("trainer.micro_batch_size", lambda v: v >= 1, "a positive integer"),
    ("trainer.devices", lambda v: v >= 1, "a positive integer"),
    ("trainer.nodes", lambda v: v >= 1, "a positive integer"),
    ("trainer.ckpt_every_steps", lambda v: v >= 1, "a positive integer (steps between checkpoints)"),
    ("trainer.log_every_steps", lambda v: v >= 1, "a positive integer"),
    ("trainer.val_milestones", lambda v: v >= 1, "a positive integer"),
    ("trainer.val_tokens", lambda v: v >= 1, "a positive integer"),
    ("trainer.threads", lambda v: v is None or v >= 1, "null or a positive integer"),
    ("trainer.precision", lambda v: v in PRECISIONS, f"one of {', '.join(PRECISIONS)}"),
    ("optim.lr", lambda v: v > 0, "a positive number"),
    ("optim.weight_decay", lambda v: v >= 0, "a non-negative number"),
    ("optim.betas", lambda v: len(v) == 2 and all(0 <= b < 1 for b in v), "two numbers in [0, 1)"),
    ("optim.eps", lambda v: v > 0, "a positive number"),
    ("optim.grad_clip", lambda v: v >= 0, "a non-negative number (0 disables clipping)"),
    ("optim.min_lr_ratio", lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    ("optim.l1", lambda v: v >= 0, "a non-negative number (0: no L1 penalty)"),
    ("trainer.early_stopping_patience", lambda v: v is None or v >= 1, "null or a positive number of validations"),
    ("trainer.early_stopping_min_delta", lambda v: v >= 0, "a non-negative loss difference"),
    ("schedule.warmup_frac", lambda v: 0 <= v < 1, "a fraction in [0, 1)"),
    ("schedule.decay_frac", lambda v: 0 <= v <= 1, "a fraction in [0, 1]"),
)


def check_values(cfg: Mapping) -> None:
    """One ConfigError line for the first value out of range, naming the key and what was expected."""
    for key, ok, expected in _CHECKS:
        node: Any = cfg
        for part in key.split("."):
            node = node[part]
        if not ok(node):
            raise ConfigError(f"{key}={node!r}: expected {expected}")
    if cfg["run"].get("name") is not None and "/" in str(cfg["run"]["name"]):
        raise ConfigError(f"run.name={cfg['run']['name']!r}: expected a name without '/'")
    contained(Path(cfg["paths"]["runs_dir"]), cfg["run"]["group"], "run.group")
    if cfg["run"].get("name") is not None:
        contained(Path("."), cfg["run"]["name"], "run.name")
    contained(Path(cfg["paths"]["data_dir"]), cfg["data"]["name"], "data.name")
    check_branches(cfg)
