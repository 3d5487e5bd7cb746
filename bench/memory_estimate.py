"""lmlab's memory estimate (lmlab.launch.memory) against the measured peak of CPU training steps.

For each model shape, with and without activation checkpointing, prints the estimate, the peak a
fresh process measured (growth of its peak resident set, VmHWM, over VmRSS after a warm-up, glibc told to
mmap allocations above 64 KiB so that freed tensors leave the resident set: see measure_cpu_peak)
and their ratio (target: within 0.8 to 1.2), in fp32 and in bf16-mixed (bf16 autocast on CPU, as
Lightning runs it there). AdamW, two accumulated micro-batches per step.

    .venv/bin/python bench/memory_estimate.py [--micro-batch 8]
"""

from __future__ import annotations

import argparse

from lmlab.launch.memory import estimate_memory, measure_cpu_peak
from lmlab.models.gpt import GPTConfig

SHAPES = {
    "gpt 4x256, V=4096, T=256": GPTConfig(vocab_size=4096, seq_len=256, n_layer=4, d_model=256, n_head=4),
    "gpt 2x128, V=2048, T=128": GPTConfig(vocab_size=2048, seq_len=128, n_layer=2, d_model=128, n_head=4),
    "llama 3x192, V=2048, T=128": GPTConfig(vocab_size=2048, seq_len=128, n_layer=3, d_model=192, n_head=4,
                                            mlp="swiglu", norm="rmsnorm", pos="rope"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--micro-batch", type=int, default=8)
    args = parser.parse_args()
    print(f"{'shape':<28} {'precision':<11} {'ckpt':<5} {'estimate MB':>12} {'measured MB':>12} {'ratio':>6}")
    for name, cfg in SHAPES.items():
        for precision in ("32", "bf16-mixed"):
            for ckpt in (False, True):
                est = estimate_memory(cfg, args.micro_batch, precision, activation_checkpointing=ckpt)["total"]
                measured = measure_cpu_peak(cfg, args.micro_batch, activation_checkpointing=ckpt, precision=precision)
                print(f"{name:<28} {precision:<11} {str(ckpt):<5} {est / 1e6:>12.1f} {measured / 1e6:>12.1f} "
                      f"{measured / est:>6.3f}", flush=True)


if __name__ == "__main__":
    main()
