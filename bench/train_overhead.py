"""lmlab's training loop vs a plain PyTorch loop: same model, data, optimizer, in one process.

Prints tokens/s of both and their ratio (target >= 0.95), lmlab's MFU against the matmul peak
measured in this run (target >= 0.75), and the time from `lmlab-train` start to the first
optimizer step. Defaults: d_model 256, 4 layers (size 3.1m), context 256, batch 16, fp32, 2 threads.

End to end (`--size`, the quickstart's smallest size by default): the wall time of a complete
`lmlab-train` process (start to result.json: start-up, data checks, validations, checkpoints)
against a plain PyTorch script process doing the same steps and validations, both sized to take
about `--e2e-seconds` (target: lmlab keeps >= 0.8 of the plain script's throughput).

    .venv/bin/python bench/train_overhead.py [--steps 40] [--rounds 2] [--size 14k] [--e2e-seconds 60]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]

from lmlab.data.shards import open_split
from lmlab.models.family import flops_per_token_6n, resolve_config
from lmlab.models.gpt import GPT
from lmlab.train.schedules import lr_lambda

# The plain script's process imports only the lines above (torch, the model, the shards); the
# framework's imports are paid by lmlab's side alone.

SIZE, SEQ, BATCH, THREADS = "3.1m", 256, 16, 2
E2E_SEQ, E2E_BATCH, E2E_VAL_TOKENS = 128, 16, 32768  # lmlab-train's defaults


def plain_step(model, opt, sched, batch: torch.Tensor) -> float:
    """One optimizer step as lmlab's module takes it: loss, backward, clipping, AdamW, schedule."""
    _, loss = model(batch[:, :-1], batch[:, 1:])
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()


def plain_loop(data_dir: Path, steps: int, warmup: int) -> float:
    """The baseline: the same GPT, AdamW groups, schedule, clipping and batches, no framework."""
    from lmlab.data.datamodule import RandomWindows, ShardWindows

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
        plain_step(model, opt, sched, next(batches))
    return steps * BATCH * SEQ / (time.perf_counter() - start)


def lmlab_loop(data_root: Path, runs_dir: Path, steps: int, warmup: int, tag: int) -> tuple[float, float, float]:
    """tokens/s, FLOP/s and the largest data-wait share of lmlab's own loop, from the train rows
    after the warm-up window."""
    from lmlab.config import compose_train
    from lmlab.io import read_jsonl
    from lmlab.train.run import Run

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
    from lmlab.io import read_jsonl

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


def plain_script(data_dir: Path, size: str, steps: int, milestones: list[int], out: Path) -> None:
    """The end-to-end baseline, run as its own process: the same model, optimizer, schedule,
    batches, validations at the same steps over the same windows, and one final checkpoint."""
    torch.set_num_threads(THREADS)
    cfg = resolve_config({"size": size, "seq_len": E2E_SEQ}, vocab_size=json.loads(
        (data_dir / "manifest.json").read_text())["vocab_size"])
    torch.manual_seed(0)
    model = GPT(cfg)
    opt = torch.optim.AdamW(model.param_groups(0.1), lr=3e-3, betas=(0.9, 0.95), eps=1e-8)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda("cosine", steps, 0.05, 0.1, 0.2))
    train = torch.from_numpy(np.concatenate(open_split(data_dir, "train")).astype(np.int64))
    val = torch.from_numpy(np.concatenate(open_split(data_dir, "validation")).astype(np.int64))
    n_val = E2E_VAL_TOKENS // (E2E_SEQ + 1)
    val = val[: n_val * (E2E_SEQ + 1)].view(n_val, E2E_SEQ + 1).split(E2E_BATCH)
    offsets = torch.arange(E2E_SEQ + 1)
    for step in range(1, steps + 1):
        starts = torch.randint(len(train) - E2E_SEQ - 1, (E2E_BATCH,))
        plain_step(model, opt, sched, train[starts[:, None] + offsets])
        if step in milestones:
            with torch.no_grad():
                model.eval()
                sum(model(b[:, :-1], b[:, 1:])[1].item() for b in val)
                model.train()
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, out)


def end_to_end(data_root: Path, work: Path, size: str, seconds: float) -> tuple[int, float, float]:
    """(steps, validations, plain script wall s, lmlab-train wall s) for a run sized to take about `seconds`."""
    from lmlab.train.run import val_milestones

    probe = 20  # time a short plain script to size the run, start-up cost subtracted
    t0 = time.perf_counter()
    run_plain(data_root / "sotu", size, 2, [], work / "probe0.pt")
    t1 = time.perf_counter()
    run_plain(data_root / "sotu", size, probe + 2, [], work / "probe1.pt")
    per_step = max(1e-3, (time.perf_counter() - t1 - (t1 - t0)) / probe)
    steps = max(probe, int((seconds - (t1 - t0)) / per_step))
    milestones = val_milestones(steps, 8)
    started = time.perf_counter()
    run_plain(data_root / "sotu", size, steps, milestones, work / "plain.pt")
    plain = time.perf_counter() - started
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lmlab.train", f"paths.data_dir={data_root}", f"paths.runs_dir={work / 'e2e'}",
                    f"model.size={size}", f"model.seq_len={E2E_SEQ}", f"trainer.global_batch_size={E2E_BATCH}",
                    f"trainer.micro_batch_size={E2E_BATCH}", f"trainer.threads={THREADS}",
                    f"trainer.val_tokens={E2E_VAL_TOKENS}", f"budget.tokens={steps * E2E_BATCH * E2E_SEQ}",
                    "trainer.progress_bar=false"], cwd=work, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return steps, len(milestones), plain, time.perf_counter() - started


def run_plain(data_dir: Path, size: str, steps: int, milestones: list[int], out: Path) -> None:
    subprocess.run([sys.executable, __file__, "--plain-script", str(data_dir), size, str(steps),
                    ",".join(map(str, milestones)), str(out)], check=True)


def main() -> None:
    if sys.argv[1:2] == ["--plain-script"]:
        data_dir, size, steps, milestones, out = sys.argv[2:]
        return plain_script(Path(data_dir), size, int(steps), [int(m) for m in milestones.split(",") if m], Path(out))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="timed optimizer steps per loop")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="alternate the two loops this many times")
    parser.add_argument("--size", default="14k", help="model size of the end-to-end comparison")
    parser.add_argument("--e2e-seconds", type=float, default=60.0, help="about how long each end-to-end run takes")
    parser.add_argument("--e2e-only", action="store_true", help="only the end-to-end comparison")
    args = parser.parse_args()
    from lmlab.data.prepare import prepare_preset

    torch.set_num_threads(THREADS)
    work = Path(tempfile.mkdtemp(prefix="lmlab-bench-"))
    data_root = work / "data"
    prepare_preset("sotu", data_root)

    if not args.e2e_only:
        loop_comparison(data_root, work, args)
    steps, validations, plain_s, lmlab_s = end_to_end(data_root, work, args.size, args.e2e_seconds)
    print(f"end to end, {args.size}, {steps} steps of {E2E_BATCH}x{E2E_SEQ} tokens, {validations} validations of "
          f"{E2E_VAL_TOKENS} tokens:")
    print(f"plain script process {plain_s:10.1f} s")
    print(f"lmlab-train process  {lmlab_s:10.1f} s   (start to result.json)")
    print(f"throughput ratio     {plain_s / lmlab_s:10.3f}   (lmlab/plain; target >= 0.8)")


def loop_comparison(data_root: Path, work: Path, args) -> None:
    from lmlab.train.throughput import measure_cpu_matmul_flops

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
