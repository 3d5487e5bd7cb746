"""Ladders: the runs of a scaling study, planned before anything is submitted.

A ladder (conf/ladder/<name>.yaml) is either
  grid:    sizes x Chinchilla multiples x seeds (D = multiple * 20 * N, N = total parameters), or
  isoflop: for each FLOP budget C, `per_budget` registry sizes spanning the expected optimum
           N_opt = sqrt(C / 120) (Chinchilla: C = 6ND and D = 20N) by a factor `span` either way,
           each trained on D = C / FLOPs-per-token (the exact count, as training's budget.flops).
Batch size and learning rate are power laws in N (total parameters), with defaults from the
literature (Porian et al. 2024: B* = 160 sequences of 2048 tokens x (N/108M)^(2/3),
lr* = 0.0047 x (N/108M)^(-1/3)) that a ladder may override under `rules:`.

`lmlab ladder plan <ladder>` prints each run (name, N, D, C, steps, batch, lr, estimated time from a
measured throughput), the total compute, and the `lmlab-train -m` commands that launch it: one
sweep per size, since batch and learning rate follow the size.
"""

from __future__ import annotations

import argparse
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmlab.errors import ConfigError

REPO_CONF = Path(__file__).resolve().parents[2] / "conf" / "ladder"
CHINCHILLA_TOKENS_PER_PARAM = 20

DEFAULT_RULES = {
    # Porian et al. 2024, fitted on tuned AdamW runs; batch in tokens = seqs * ref_seq_len.
    "batch": {"coef_sequences": 160.0, "ref_seq_len": 2048, "ref_n": 108e6, "exponent": 2 / 3,
              "min_sequences": 8, "max_sequences": 4096},
    "lr": {"coef": 0.0047, "ref_n": 108e6, "exponent": -1 / 3},
}
LADDER_KEYS = {"kind", "group", "sizes", "seeds", "vocab_size", "seq_len", "micro_batch_size",
               "chinchilla_multiples", "flops", "per_budget", "span", "rules", "overrides",
               "throughput_flops_per_s", "description"}
REQUIRED = {"grid": ("kind", "group", "sizes", "seeds", "vocab_size", "seq_len", "chinchilla_multiples"),
            "isoflop": ("kind", "group", "sizes", "seeds", "vocab_size", "seq_len", "flops")}


@dataclass(frozen=True)
class PlannedRun:
    name: str
    size: str
    seed: int
    n_params: int
    n_params_nonembedding: int
    tokens: int  # D actually trained: steps * batch * seq_len
    flops_exact: float
    flops_6n: float
    steps: int
    batch: int  # sequences per optimizer step
    lr: float
    budget_override: str  # budget.chinchilla_multiple=... or budget.flops=...
    est_seconds: float | None


# ---------------------------------------------------------------- loading and checking


def load_ladder(name_or_path: str) -> dict[str, Any]:
    """A ladder by name (conf/ladder/<name>.yaml) or path, checked key by key."""
    from omegaconf import OmegaConf

    path = Path(name_or_path)
    if not path.suffix:
        path = REPO_CONF / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in REPO_CONF.glob("*.yaml")))
        raise ConfigError(f"ladder {name_or_path!r}: no such file {path} (ladders in conf/ladder: {known})")
    ladder = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
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


def _model(size: str, vocab_size: int, seq_len: int):
    from lmlab.models.family import count_params, flops_per_token_6n, flops_per_token_exact, get_size

    cfg = get_size(size).config(vocab_size, seq_len=seq_len)
    return count_params(cfg), flops_per_token_6n(cfg), flops_per_token_exact(cfg)


def _planned(ladder: dict, size: str, seed: int, tokens_wanted: float, budget_override: str, tag: str,
             flops_per_s: float | None) -> PlannedRun:
    counts, fpt_6n, fpt_exact = _model(size, ladder["vocab_size"], ladder["seq_len"])
    n = counts["n_params"]
    batch = batch_sequences(n, ladder["seq_len"], ladder["rules"]["batch"])
    steps = math.floor(tokens_wanted / (batch * ladder["seq_len"]))
    if steps < 1:
        raise ConfigError(f"ladder run {size} {budget_override}: {tokens_wanted:,.0f} tokens is less than one step "
                          f"of {batch} x {ladder['seq_len']} tokens")
    tokens = steps * batch * ladder["seq_len"]
    flops = tokens * fpt_exact
    return PlannedRun(
        name=f"{size}-{tag}-s{seed}", size=size, seed=seed, n_params=n,
        n_params_nonembedding=counts["n_params_nonembedding"], tokens=tokens, flops_exact=flops,
        flops_6n=tokens * fpt_6n, steps=steps, batch=batch, lr=learning_rate(n, ladder["rules"]["lr"]),
        budget_override=budget_override, est_seconds=flops / flops_per_s if flops_per_s else None)


def isoflop_sizes(ladder: dict, flops: float) -> list[str]:
    """`per_budget` of the ladder's sizes spanning N_opt(C) by `span` either way, log-evenly."""
    n_opt = math.sqrt(flops / (6 * CHINCHILLA_TOKENS_PER_PARAM))
    lo, hi = n_opt / ladder["span"], n_opt * ladder["span"]
    n_of = {s: _model(s, ladder["vocab_size"], ladder["seq_len"])[0]["n_params"] for s in ladder["sizes"]}
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
    flops_per_s = flops_per_s or ladder["throughput_flops_per_s"]
    runs = []
    for seed in ladder["seeds"]:
        if ladder["kind"] == "grid":
            for size in ladder["sizes"]:
                n = _model(size, ladder["vocab_size"], ladder["seq_len"])[0]["n_params"]
                for m in ladder["chinchilla_multiples"]:
                    runs.append(_planned(ladder, size, seed, m * CHINCHILLA_TOKENS_PER_PARAM * n,
                                         f"budget.chinchilla_multiple={m:g}", f"cx{m:g}", flops_per_s))
        else:
            for c in ladder["flops"]:
                for size in isoflop_sizes(ladder, c):
                    fpt = _model(size, ladder["vocab_size"], ladder["seq_len"])[2]
                    runs.append(_planned(ladder, size, seed, c / fpt, f"budget.flops={c:g}",
                                         f"f{c:.0e}".replace("+", ""), flops_per_s))
    return runs


def launch_commands(ladder: dict, runs: list[PlannedRun]) -> list[str]:
    """One `lmlab-train -m` sweep per size: budgets and seeds vary, batch and lr follow the size."""
    commands = []
    for size in dict.fromkeys(r.size for r in runs):
        mine = [r for r in runs if r.size == size]
        key = mine[0].budget_override.split("=")[0]
        budgets = ",".join(dict.fromkeys(r.budget_override.split("=")[1] for r in mine))
        seeds = ",".join(dict.fromkeys(str(r.seed) for r in mine))
        null_others = [f"budget.{k}=null" for k in ("tokens", "chinchilla_multiple", "flops") if f"budget.{k}" != key]
        micro = min(ladder["micro_batch_size"], mine[0].batch)
        parts = ["lmlab-train", "-m", f"run.group={ladder['group']}", f"model.size={size}",
                 f"model.seq_len={ladder['seq_len']}", f"trainer.global_batch_size={mine[0].batch}",
                 f"trainer.micro_batch_size={micro}", f"optim.lr={mine[0].lr:g}", *null_others,
                 f"{key}={budgets}", f"seed={seeds}", *ladder["overrides"]]
        commands.append(" ".join(parts))
    return commands


def measured_flops_per_s(run_dirs: Path) -> float:
    """Median steady training speed (exact FLOPs per second between the first and last train rows of
    metrics.jsonl) of the runs under a directory: start-up and validation are left out, since they
    weigh on tiny runs far more than on the ladder's."""
    from lmlab.runs.record import find_runs, read_jsonl

    rates = []
    for d in find_runs(run_dirs):
        rows = [r for r in read_jsonl(d / "metrics.jsonl") if "train_loss" in r]
        if len(rows) >= 2 and rows[-1]["elapsed_s"] > rows[0]["elapsed_s"]:
            rates.append((rows[-1]["flops_exact"] - rows[0]["flops_exact"]) / (rows[-1]["elapsed_s"] - rows[0]["elapsed_s"]))
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


def render(ladder: dict, runs: list[PlannedRun], flops_per_s: float | None) -> str:
    header = ("run", "N", "N non-emb", "D tokens", "C FLOPs", "steps", "batch", "lr", "est. time")
    rows = [(r.name, _si(r.n_params), _si(r.n_params_nonembedding), _si(r.tokens), f"{r.flops_exact:.3g}",
             str(r.steps), str(r.batch), f"{r.lr:.3g}", _duration(r.est_seconds)) for r in runs]
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*header), *(fmt.format(*row) for row in rows)]
    total_c = sum(r.flops_exact for r in runs)
    total_t = sum(r.est_seconds for r in runs) if flops_per_s else None
    speed = f"at {flops_per_s:.3g} FLOP/s measured" if flops_per_s else "(no measured throughput: --throughput-from)"
    lines += ["", f"{len(runs)} runs, total compute {total_c:.3g} FLOPs (6ND: {sum(r.flops_6n for r in runs):.3g}), "
                  f"estimated {_duration(total_t)} of one device {speed}",
              "launch (one sweep per size; relaunching skips completed runs):",
              *(f"  {c}" for c in launch_commands(ladder, runs))]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ladder", help="a ladder name in conf/ladder/ or a path to a ladder YAML")
    parser.add_argument("--throughput-from", type=Path, metavar="DIR",
                        help="completed runs whose median FLOP/s estimates each run's time")
    parser.add_argument("--flops-per-s", type=float, help="measured training FLOP/s of one device")


def run(args: argparse.Namespace) -> int:
    ladder = load_ladder(args.ladder)
    speed = args.flops_per_s or (measured_flops_per_s(args.throughput_from) if args.throughput_from else None)
    speed = speed or ladder["throughput_flops_per_s"]
    print(render(ladder, plan(ladder, speed), speed))
    return 0
