"""lmlab's training loop vs a plain PyTorch loop: same model, data, optimizer, in one process.

Prints tokens/s of both and their ratio (target >= 0.95), lmlab's MFU against the matmul peak
measured in this run (target >= 0.75), and the time from `lmlab-train` start to the first
optimizer step. Defaults: d_model 256, 4 layers (size 3.1m), context 256, batch 16, fp32, 2 threads.

    .venv/bin/python bench/train_overhead.py [--steps 40] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]

from lmlab.data.datamodule import RandomWindows, ShardWindows
from lmlab.data.prepare import prepare_preset
from lmlab.data.shards import open_split
from lmlab.models.family import flops_per_token_6n, resolve_config
from lmlab.models.gpt import GPT
from lmlab.io import read_jsonl
from lmlab.config import compose_train
from lmlab.train.run import Run
from lmlab.train.schedules import lr_lambda
from lmlab.train.throughput import measure_cpu_matmul_flops

SIZE, SEQ, BATCH, THREADS = "3.1m", 256, 16, 2


def plain_loop(data_dir: Path, steps: int, warmup: int) -> float:
    """The baseline: the same GPT, AdamW groups, schedule, clipping and batches, no framework."""
    torch.manual_seed(0)
    cfg = resolve_config({"size": SIZE, "seq_len": SEQ}, vocab_size=json.loads((data_dir / "manifest.json").read_text())["vocab_size"])
    model = GPT(cfg)
    opt = torch.optim.AdamW(model.param_groups(0.1), lr=3e-3, betas=(0.9, 0.95), eps=1e-8)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda("cosine", steps + warmup, 0.05, 0.1, 0.2))
    stream = RandomWindows(ShardWindows(open_split(data_dir, "train"), SEQ, "train"), BATCH, seed=0, rank=0)
    batches = iter(stream)
    for step in range(steps + warmup):
        if step == warmup:
            start = time.perf_counter()
        batch = next(batches)
        _, loss = model(batch[:, :-1], batch[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
    return steps * BATCH * SEQ / (time.perf_counter() - start)


def lmlab_loop(data_root: Path, runs_dir: Path, steps: int, warmup: int, tag: int) -> tuple[float, float, float]:
    """tokens/s, FLOP/s and the largest data-wait share of lmlab's own loop, from the train rows
    after the warm-up window."""
    cfg = compose_train([f"paths.data_dir={data_root}", f"paths.runs_dir={runs_dir}", f"model.size={SIZE}",
                   f"model.seq_len={SEQ}", f"trainer.global_batch_size={BATCH}", f"trainer.micro_batch_size={BATCH}",
                   f"trainer.threads={THREADS}", f"trainer.log_every_steps={warmup}", "trainer.val_milestones=1",
                   "trainer.val_tokens=4096", f"trainer.ckpt_every_steps={10 * (steps + warmup)}",
                   "trainer.progress_bar=false", "logger=none", f"budget.tokens={(steps + warmup) * BATCH * SEQ}",
                   f"seed={tag}"])
    run = Run(cfg)
    run.execute()
    rows = [r for r in read_jsonl(run.record.metrics_path) if "train_loss" in r and r["step"] > warmup]
    seconds = sum((r["step"] - p["step"]) * BATCH * SEQ / r["tokens_per_s"] for p, r in zip(
        [{"step": warmup}] + rows[:-1], rows))
    tokens = (rows[-1]["step"] - warmup) * BATCH * SEQ
    return tokens / seconds, rows[-1]["flops_per_s"], max(r["data_wait_frac"] for r in rows)


def time_to_first_step(data_root: Path, runs_dir: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "lmlab.train", f"paths.data_dir={data_root}",
                             f"paths.runs_dir={runs_dir}", "trainer.log_every_steps=1", "budget.tokens=40960",
                             "trainer.progress_bar=false"], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    while not any("train_loss" in r for p in runs_dir.glob("*/*/metrics.jsonl") for r in read_jsonl(p)):
        time.sleep(0.05)
        if proc.poll() is not None and proc.returncode != 0:
            raise SystemExit("lmlab-train failed while timing the first step")
    elapsed = time.perf_counter() - started
    proc.wait()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="timed optimizer steps per loop")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="alternate the two loops this many times")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    work = Path(tempfile.mkdtemp(prefix="lmlab-bench-"))
    data_root = work / "data"
    prepare_preset("sotu", data_root)

    plain, lm, flops, data_wait = [], [], [], []
    for r in range(args.rounds):  # alternate, so drifting machine load hits both loops alike
        plain.append(plain_loop(data_root / "sotu", args.steps, args.warmup))
        tok_s, flop_s, wait = lmlab_loop(data_root, work / "runs", args.steps, args.warmup, tag=r)
        lm.append(tok_s)
        flops.append(flop_s)
        data_wait.append(wait)
    peak = measure_cpu_matmul_flops(size=1024, seconds=2.0)
    ttfs = time_to_first_step(data_root, work / "ttfs")
    cfg = resolve_config({"size": SIZE, "seq_len": SEQ}, vocab_size=4096)
    print(f"model {SIZE} (d_model {cfg.d_model}, {cfg.n_layer} layers), context {SEQ}, batch {BATCH}, fp32, "
          f"{THREADS} threads, {args.steps} timed steps x {args.rounds} rounds")
    print(f"plain PyTorch loop   {max(plain):10.0f} tokens/s (best of {args.rounds})")
    print(f"lmlab loop           {max(lm):10.0f} tokens/s (best of {args.rounds})")
    print(f"ratio lmlab/plain    {max(lm) / max(plain):10.3f}   (target >= 0.95)")
    print(f"matmul peak          {peak / 1e9:10.1f} GFLOP/s (fp32 1024x1024, measured now)")
    print(f"lmlab MFU            {max(flops) / peak:10.3f}   (6N+attention FLOPs {flops_per_token_6n(cfg):,}/token; target >= 0.75)")
    print(f"data loading         {max(data_wait):10.2%}   of step time at most (target < 2%)")
    print(f"start to first step  {ttfs:10.1f} s   (lmlab-train subprocess, corpus already prepared)")


if __name__ == "__main__":
    main()
