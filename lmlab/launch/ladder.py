"""Ladders: the runs of a scaling study, planned before anything is submitted.

A ladder (conf/ladder/<name>.yaml) is either
  grid:    sizes x Chinchilla multiples x seeds (D = multiple * 20 * N, N = total parameters), or
  isoflop: for each FLOP budget C, `per_budget` registry sizes spanning the expected optimum
           N_opt = sqrt(C / 120) (Chinchilla: C = 6ND and D = 20N) by a factor `span` either way,
           each trained on D = C / FLOPs-per-token (lmlab's unit of compute, as training's budget.flops).
Batch size and learning rate are power laws in N (total parameters), with defaults from the
literature (Porian et al. 2024: B* = 160 sequences of 2048 tokens x (N/108M)^(2/3),
lr* = 0.0047 x (N/108M)^(-1/3)) that a ladder may override under `rules:`.

With `branches: [0.25, 0.5, 0.75]` (fractions of each run's budget), each run is a branched launch
(lmlab.train.branches, schedule=wsd): one constant-lr trunk and a short cooldown branch per budget, so
a size gets four budgets for little more than one run's compute. The plan lists every budget (each its
own run id), the trunk that serves them, and the compute saved against independent runs.

`lmlab ladder plan <ladder>` prints each run (name, N, D, C, steps, batch, lr, estimated time from a
measured throughput), the total compute, and the `lmlab-train -m` commands that launch it: one
sweep per size, since batch and learning rate follow the size.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmlab import CONF_DIR
from lmlab.errors import ConfigError
from lmlab.runspec import COMPUTE, TRUNKS
from lmlab.budget import CHINCHILLA_TOKENS_PER_PARAM

REPO_CONF = CONF_DIR / "ladder"

DEFAULT_RULES = {
    # Attributed to Porian et al. 2024 (tuned AdamW runs); the coefficients are unverified against the paper, and a
    # scan at 390k found the best lr about 8x lower than this rule gives: override them under `rules:`.
    # Batch in tokens = seqs * ref_seq_len.
    "batch": {"coef_sequences": 160.0, "ref_seq_len": 2048, "ref_n": 108e6, "exponent": 2 / 3,
              "min_sequences": 8, "max_sequences": 4096},
    "lr": {"coef": 0.0047, "ref_n": 108e6, "exponent": -1 / 3},
}
LADDER_KEYS = {"kind", "group", "sizes", "seeds", "vocab_size", "seq_len", "micro_batch_size",
               "chinchilla_multiples", "flops", "per_budget", "span", "rules", "overrides",
               "throughput_flops_per_s", "description", "branches"}
REQUIRED = {"grid": ("kind", "group", "sizes", "seeds", "vocab_size", "seq_len", "chinchilla_multiples"),
            "isoflop": ("kind", "group", "sizes", "seeds", "vocab_size", "seq_len", "flops")}


@dataclass(frozen=True)
class PlannedRun:
    name: str  # the run id training will give it (the run spec's), so plan and runs match exactly
    size: str
    seed: int
    n_params: int
    n_params_nonembedding: int
    tokens: int  # D actually trained: steps * batch * seq_len
    compute: float  # C in lmlab's unit (lmlab.runspec.COMPUTE)
    flops_exact: float
    flops_6n: float
    steps: int
    batch: int  # sequences per optimizer step
    lr: float
    budget_override: str  # budget.chinchilla_multiple=... or budget.flops=... (a branch's own; its trunk's launches it)
    trained_compute: float  # what training it costs: a branch's cooldown only, the trunk's steps for a trunk
    est_seconds: float | None
    role: str = "run"  # run (independent) | trunk | branch (lmlab.train.branches)
    branch_of: str | None = None  # a branch's trunk

    @property
    def relative_dir(self) -> str:
        """Where the run's directory lies inside its group's folder (a trunk's is out of sight, in .trunks/)."""
        return f"{TRUNKS}/{self.name}" if self.role == "trunk" else self.name


# ---------------------------------------------------------------- loading and checking


def load_ladder(name_or_path: str, overrides: list[str] = ()) -> dict[str, Any]:
    """A ladder by name (conf/ladder/<name>.yaml) or path, with `key=value` overrides (as on a Hydra
    command line: sizes=[25k,55k] seeds=[0,1]), checked key by key."""
    from omegaconf import OmegaConf

    path = Path(name_or_path)
    if not path.suffix:
        path = REPO_CONF / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in REPO_CONF.glob("*.yaml")))
        raise ConfigError(f"ladder {name_or_path!r}: no such file {path} (ladders in conf/ladder: {known})")
    try:
        loaded = OmegaConf.merge(OmegaConf.load(path), OmegaConf.from_dotlist(list(overrides)))
        ladder = OmegaConf.to_container(loaded, resolve=True)
    except Exception as err:  # OmegaConf's parse and merge errors
        raise ConfigError(f"ladder {path}: {str(err).splitlines()[0]}") from None
    if not isinstance(ladder, dict):
        raise ConfigError(f"ladder {path}: expected a mapping of keys, got {type(ladder).__name__}")
    return check_ladder(ladder, str(path))


def check_ladder(ladder: dict, where: str) -> dict:
    unknown = set(ladder) - LADDER_KEYS
    if unknown:
        raise ConfigError(f"ladder {where}: unknown key(s) {', '.join(sorted(unknown))}; "
                          f"expected some of {', '.join(sorted(LADDER_KEYS))}")
    kind = ladder.get("kind")
    if kind not in REQUIRED:
        raise ConfigError(f"ladder {where}: kind={kind!r}, expected one of {', '.join(REQUIRED)}")
    for key in REQUIRED[kind]:
        if ladder.get(key) is None:
            raise ConfigError(f"ladder {where}: key {key!r} is missing (required for kind={kind})")
    for key in ("sizes", "seeds", "chinchilla_multiples", "flops"):
        value = ladder.get(key)
        if value is not None and (not isinstance(value, list) or not value):
            raise ConfigError(f"ladder {where}: {key}={value!r}, expected a non-empty list")
    branches = ladder.get("branches")
    if branches is not None and (not isinstance(branches, list)
                                 or not all(isinstance(f, (int, float)) and 0 < f < 1 for f in branches)):
        raise ConfigError(f"ladder {where}: branches={branches!r}, expected a list of fractions of each run's budget "
                          f"in (0, 1)")
    for key in ("chinchilla_multiples", "flops"):
        for v in ladder.get(key) or []:
            if not isinstance(v, (int, float)) or not v > 0:
                raise ConfigError(f"ladder {where}: {key} holds {v!r}, expected positive numbers")
    for key in ("vocab_size", "seq_len", "micro_batch_size", "per_budget"):
        v = ladder.get(key)
        if v is not None and (not isinstance(v, int) or v < 1):
            raise ConfigError(f"ladder {where}: {key}={v!r}, expected a positive integer")
    rules = {k: dict(v) for k, v in DEFAULT_RULES.items()}
    for rule, params in (ladder.get("rules") or {}).items():
        if rule not in rules or not set(params) <= set(rules[rule]):
            raise ConfigError(f"ladder {where}: rules.{rule} {sorted(params)}: expected rules.batch keys "
                              f"{sorted(rules['batch'])} or rules.lr keys {sorted(rules['lr'])}")
        rules[rule].update(params)
    return {"span": 4.0, "per_budget": 5, "micro_batch_size": 16, "overrides": [], "throughput_flops_per_s": None,
            **ladder, "rules": rules}


# ---------------------------------------------------------------- rules in N


def batch_sequences(n_params: float, seq_len: int, rule: dict) -> int:
    """Sequences per step: the rule's tokens per step at this N, over seq_len, to a power of two."""
    tokens = rule["coef_sequences"] * rule["ref_seq_len"] * (n_params / rule["ref_n"]) ** rule["exponent"]
    seqs = 2 ** round(math.log2(max(tokens / seq_len, 1)))
    return int(min(max(seqs, rule["min_sequences"]), rule["max_sequences"]))


def learning_rate(n_params: float, rule: dict) -> float:
    return float(f"{rule['coef'] * (n_params / rule['ref_n']) ** rule['exponent']:.3g}")


# ---------------------------------------------------------------- planning


def size_overrides(ladder: dict, size: str, batch: int | None = None, lr: float | None = None) -> list[str]:
    """The training overrides that every run of one size shares (batch and lr once they are known)."""
    out = [f"run.group={ladder['group']}", f"model.size={size}", f"model.seq_len={ladder['seq_len']}",
           *(["schedule=wsd", f"budget.branches=[{','.join(f'{f:g}' for f in ladder['branches'])}]"]
             if ladder.get("branches") else []), *ladder["overrides"]]
    if batch is not None:
        out += [f"trainer.global_batch_size={batch}", f"trainer.micro_batch_size={min(ladder['micro_batch_size'], batch)}",
                f"optim.lr={lr:g}"]
    return out


def size_config(ladder: dict, size: str, batch: int | None = None, lr: float | None = None) -> dict:
    """The training config of one size composed as its launch command composes it (each run then sets
    its own budget and seed)."""
    from lmlab.runspec import plain
    from lmlab.config import compose_train

    return plain(compose_train(size_overrides(ladder, size, batch, lr)))


def size_n_params(ladder: dict, size: str) -> int:
    """N (total) of a size at the ladder's vocabulary and context, from the run spec."""
    from lmlab.runspec import resolve_run

    cfg = size_config(ladder, size)
    cfg["budget"] = {"tokens": None, "chinchilla_multiple": 1.0, "flops": None}  # any budget of whole steps
    return resolve_run(cfg, ladder["vocab_size"]).n_params


def _planned(ladder: dict, base: dict, seed: int, budget_key: str, value: float,
             flops_per_s: float | None) -> list[PlannedRun]:
    """One run: the size's composed config with its budget and seed, resolved by the run spec; a branched
    launch: its trunk, then a run per budget."""
    from lmlab.runspec import resolve_run
    from lmlab.train.branches import fractions, member_cfg

    # float(): the schema types every budget key as a float, and the run id hashes the typed value
    cfg = {**base, "seed": seed, "budget": {**base["budget"], "tokens": None, "chinchilla_multiple": None, "flops": None,
                                            budget_key: float(value)}}
    spec, override = resolve_run(cfg, ladder["vocab_size"]), f"budget.{budget_key}={value:g}"
    if spec.member is None:
        return [_planned_run(spec, override, flops_per_s)]
    return [_planned_run(spec, override, flops_per_s),  # the trunk: the launch's budget, which its command sets
            *(_planned_run(resolve_run(member_cfg(cfg, f), ladder["vocab_size"]), f"budget.{budget_key}={value * f:g}",
                           flops_per_s, spec.run_id) for f in fractions(cfg["budget"]))]


def _planned_run(spec, budget_override: str, flops_per_s: float | None, trunk: str | None = None) -> PlannedRun:
    m, tokens = spec.member, spec.budget.tokens
    trained = tokens if m is None else (m.steps - m.start_step) * spec.budget.tokens_per_step
    trained_compute = trained * spec.flops_per_token
    flops = spec.flops(tokens)
    return PlannedRun(
        name=spec.run_id, size=spec.cfg["model"]["size"], seed=spec.cfg["seed"], n_params=spec.n_params,
        n_params_nonembedding=spec.n_params_nonembedding, tokens=tokens, compute=spec.compute,
        flops_exact=flops["flops_exact"], flops_6n=flops["flops_6n"], steps=spec.budget.steps,
        batch=spec.cfg["trainer"]["global_batch_size"], lr=spec.cfg["optim"]["lr"], budget_override=budget_override,
        trained_compute=trained_compute, est_seconds=trained_compute / flops_per_s if flops_per_s else None,
        role="run" if m is None else "trunk" if m.fraction is None else "branch", branch_of=trunk)


def isoflop_sizes(ladder: dict, flops: float, n_of: dict[str, int]) -> list[str]:
    """`per_budget` of the ladder's sizes spanning N_opt(C) by `span` either way, log-evenly."""
    n_opt = math.sqrt(flops / (6 * CHINCHILLA_TOKENS_PER_PARAM))
    lo, hi = n_opt / ladder["span"], n_opt * ladder["span"]
    inside = sorted((n, s) for s, n in n_of.items() if lo <= n <= hi)
    if len(inside) < 3:
        raise ConfigError(f"ladder isoflop budget C={flops:.3g}: {len(inside)} of the sizes lie within N_opt={n_opt:,.0f}"
                          f" x/÷ {ladder['span']:g}; an IsoFLOP parabola needs at least 3 (add sizes or widen span)")
    want = ladder["per_budget"]
    if len(inside) <= want:
        return [s for _, s in inside]
    targets = [math.log(inside[0][0]) + i * (math.log(inside[-1][0]) - math.log(inside[0][0])) / (want - 1)
               for i in range(want)]
    chosen: list[str] = []
    for t in targets:
        rest = [(abs(math.log(n) - t), s) for n, s in inside if s not in chosen]
        chosen.append(min(rest)[1])
    return sorted(chosen, key=n_of.get)


def plan(ladder: dict, flops_per_s: float | None = None) -> list[PlannedRun]:
    """Every run of the ladder, each resolved by the run spec from the config its launch command composes."""
    flops_per_s = flops_per_s or ladder["throughput_flops_per_s"]
    n_of = {size: size_n_params(ladder, size) for size in ladder["sizes"]}
    bases = {size: size_config(ladder, size, batch_sequences(n, ladder["seq_len"], ladder["rules"]["batch"]),
                               learning_rate(n, ladder["rules"]["lr"])) for size, n in n_of.items()}
    runs = []
    for seed in ladder["seeds"]:
        if ladder["kind"] == "grid":
            for size in ladder["sizes"]:
                runs += [r for m in ladder["chinchilla_multiples"]
                         for r in _planned(ladder, bases[size], seed, "chinchilla_multiple", m, flops_per_s)]
        else:
            for c in ladder["flops"]:
                runs += [r for size in isoflop_sizes(ladder, c, n_of)
                         for r in _planned(ladder, bases[size], seed, "flops", c, flops_per_s)]
    return runs


def launch_commands(ladder: dict, runs: list[PlannedRun]) -> list[str]:
    """One `lmlab-train -m` sweep per size: budgets and seeds vary, batch and lr follow the size (a branched
    launch's command trains its trunk and every budget of it)."""
    import shlex

    commands = []
    launched = [r for r in runs if r.role != "branch"]
    for size in dict.fromkeys(r.size for r in launched):
        mine = [r for r in launched if r.size == size]
        key = mine[0].budget_override.split("=")[0]
        budgets = ",".join(dict.fromkeys(r.budget_override.split("=")[1] for r in mine))
        seeds = ",".join(dict.fromkeys(str(r.seed) for r in mine))
        null_others = [f"budget.{k}=null" for k in ("tokens", "chinchilla_multiple", "flops") if f"budget.{k}" != key]
        parts = ["lmlab-train", "-m", *size_overrides(ladder, size, mine[0].batch, mine[0].lr), *null_others,
                 f"{key}={budgets}", f"seed={seeds}"]
        commands.append(" ".join(map(shlex.quote, parts)))
    return commands


def measured_flops_per_s(run_dirs: Path) -> float:
    """Median steady training speed (FLOPs per second in lmlab's unit, between the first and last train rows of
    metrics.jsonl) of the runs under a directory: start-up and validation are left out, since they
    weigh on tiny runs far more than on the ladder's."""
    from lmlab.io import read_jsonl
    from lmlab.runs.record import find_runs

    rates = []
    for d in find_runs(run_dirs):
        rows = [r for r in read_jsonl(d / "metrics.jsonl") if "train_loss" in r]
        if len(rows) >= 2 and rows[-1]["elapsed_s"] > rows[0]["elapsed_s"]:
            rates.append((rows[-1][COMPUTE] - rows[0][COMPUTE]) / (rows[-1]["elapsed_s"] - rows[0]["elapsed_s"]))
    if not rates:
        raise ConfigError(f"--throughput-from {run_dirs}: no run with two or more train rows in metrics.jsonl found")
    return statistics.median(rates)


# ---------------------------------------------------------------- output


def _si(x: float) -> str:
    for unit, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def _duration(s: float | None) -> str:
    if s is None:
        return "n/a"
    return f"{s:.0f}s" if s < 120 else f"{s / 60:.1f}m" if s < 7200 else f"{s / 3600:.1f}h"


def compute_totals(runs: list[PlannedRun]) -> dict[str, float]:
    """What the ladder's budgets would cost as independent runs, what it costs as planned, and the ratio."""
    independent = sum(r.compute for r in runs if r.role != "trunk")
    trained = sum(r.trained_compute for r in runs)
    return {"independent_compute": independent, "trained_compute": trained, "trained_over_independent": trained / independent}


def render(ladder: dict, runs: list[PlannedRun], flops_per_s: float | None) -> str:
    header = ("run", "role", "N", "N non-emb", "D tokens", "C FLOPs", "trained C", "steps", "batch", "lr", "est. time")
    rows = [(r.name, r.role, _si(r.n_params), _si(r.n_params_nonembedding), _si(r.tokens), f"{r.compute:.3g}",
             f"{r.trained_compute:.3g}", str(r.steps), str(r.batch), f"{r.lr:.3g}", _duration(r.est_seconds)) for r in runs]
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*header), *(fmt.format(*row) for row in rows)]
    totals = compute_totals(runs)
    total_t = sum(r.est_seconds for r in runs) if flops_per_s else None
    speed = f"at {flops_per_s:.3g} FLOP/s measured" if flops_per_s else "(no measured throughput: --throughput-from)"
    budgets = [r for r in runs if r.role != "trunk"]
    lines += ["", f"{len(budgets)} runs, total compute {totals['trained_compute']:.3g} FLOPs ({COMPUTE}: 6N + attention "
                  f"per token; Chinchilla's exact count of these budgets {sum(r.flops_exact for r in budgets):.3g}), "
                  f"estimated {_duration(total_t)} of one device {speed}"]
    if len(budgets) < len(runs):
        lines += [f"branched: {len(runs) - len(budgets)} trunks serve {len(budgets)} budgets for "
                  f"{totals['trained_compute']:.3g} FLOPs, {totals['trained_over_independent']:.0%} of the "
                  f"{totals['independent_compute']:.3g} that independent runs would cost (saves "
                  f"{totals['independent_compute'] - totals['trained_compute']:.3g})"]
    lines += ["launch (one sweep per size; relaunching skips completed runs):",
              *(f"  {c}" for c in launch_commands(ladder, runs))]
    return "\n".join(lines)
