"""Memory per GPU for a training run, and the strategy and micro-batch that fit a given GPU.

The estimate adds up, in bytes per device:

- model states: parameters, gradients and AdamW's two moments (exp_avg, exp_avg_sq), all fp32.
  Under Lightning's `bf16-mixed` the fp32 parameters are the master weights; autocast keeps a bf16
  copy of every Linear weight from the forward until its backward (`weight_casts`). FSDP (full
  shard) splits parameters, gradients and optimizer state over the world size and instead holds
  the gathered (bf16 under bf16-mixed) parameters of the root module and of two blocks (the one
  computing and the one prefetched), plus one block's unsharded gradients (`comm_buffers`). DDP
  with more than one device keeps its gradient buckets, a second copy of the gradients.
- activations saved for the backward pass at the planned micro-batch b and sequence length s
  (d_model h, d_ff f, vocabulary V, n_layer L). Korthikanti et al. 2022, "Reducing Activation
  Recomputation in Large Transformer Models", eq. 2, count 34sbh + 5as^2b bytes per layer for
  16-bit activations (17 values per sbh, dropout masks included). lmlab's GPT has no dropout at
  training time and a fused attention (SDPA) that stores no s^2 scores, so per layer it saves, in
  units of sb: the norm inputs 2h (fp32: the residual stream), the QKV input h, Q, K and V 3h, the
  attention output (the projection's input) h, the MLP input h, and 2f (GELU: its input and
  output) or 4f (SwiGLU: gate, up, silu and product); RMSNorm saves its normalised output too (+h
  per norm), rotary positions their rotated q and k (+2h). With f = 4h and fp32 that is 16sbh
  values, Korthikanti's count less the masks (checked tensor by tensor with saved-tensor hooks).
  After the blocks: the final norm input and the head input (2sbh) and the fp32
  log-probabilities of the loss (sbV). The backward briefly holds more (`backward_transient`):
  the loss's backward two more sbV fp32 tensors, or, with activation checkpointing per block
  (Lightning's `activation_checkpointing_policy={Block}`), one block's full set while it is
  recomputed, whichever is larger; checkpointing keeps only each block's input (sbh fp32;
  Korthikanti's 2sbhL at 16 bits).

The sum is the peak of a step in which gradients already exist while activations are alive, as
with gradient accumulation (at accumulation 1 gradients appear as activations are freed, so the
true peak is lower by up to the gradients). Measured against CPU training steps in fp32 and in
bf16-mixed (CPU autocast) by tests/launch/test_memory.py and bench/memory_estimate.py (peak RSS
growth of a fresh process, see `measure_cpu_peak`); not yet on a GPU, whose kernels may save
slightly different tensors.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import replace

from lmlab.errors import ConfigError
from lmlab.models.family import count_params
from lmlab.models.gpt import GPTConfig

PRECISIONS = ("32", "bf16-mixed")
STRATEGIES = ("ddp", "fsdp")
FP32 = 4
ADAMW_STATES = 2

# Memory per device in bytes (vendor data sheets), keyed like lmlab.train.throughput.GPU_PEAK_FLOPS.
GIB = 1024**3
GPU_MEMORY_BYTES = {
    "H200": 141 * 10**9,
    "H100 SXM": 80 * GIB,
    "H100 NVL": 94 * GIB,
    "H100 PCIe": 80 * GIB,
    "H100": 80 * GIB,
    "A100": 80 * GIB,  # the 40 GB model: name it "A100 40GB"
    "A100 40GB": 40 * GIB,
    "A10G": 24 * GIB,
    "L40S": 48 * GIB,
    "L4": 24 * GIB,
    "V100": 32 * GIB,
    "RTX 4090": 24 * GIB,
    "MI300X": 192 * GIB,
    "MI250X": 128 * GIB,
}
# Not available to tensors: the CUDA context and kernels (~1 GiB) and allocator fragmentation (~10%).
RESERVED_BYTES = GIB
USABLE_FRACTION = 0.9


def gpu_memory_bytes(device_name: str) -> int:
    """Memory of a GPU named as in the cluster profile; the longest table key in the name wins."""
    for key in sorted(GPU_MEMORY_BYTES, key=len, reverse=True):
        if key.lower() in device_name.lower():
            return GPU_MEMORY_BYTES[key]
    raise ConfigError(f"GPU {device_name!r} is not in lmlab's memory table; expected one of "
                      f"{', '.join(GPU_MEMORY_BYTES)} (or give its memory in bytes)")


def _check(precision: str, strategy: str, world_size: int, micro_batch: int) -> None:
    if precision not in PRECISIONS:
        raise ConfigError(f"precision={precision!r}: expected one of {', '.join(PRECISIONS)}")
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy={strategy!r}: expected one of {', '.join(STRATEGIES)}")
    for key, value in (("world_size", world_size), ("micro_batch", micro_batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{key}={value!r}: expected a positive integer")


def _param_counts(cfg: GPTConfig) -> dict[str, int]:
    """Total parameters, those of Linear weights (cast by autocast), of one block, of the root."""
    d, f, V = cfg.d_model, cfg.ff_dim, cfg.vocab_size
    n_mlp = 3 if cfg.mlp == "swiglu" else 2
    block_matrices = 4 * d * d + n_mlp * d * f
    total = count_params(cfg)["n_params"]
    one_block = (count_params(replace(cfg, n_layer=2))["n_params"] - count_params(replace(cfg, n_layer=1))["n_params"])
    return {"total": total, "linear": cfg.n_layer * block_matrices + V * d, "block": one_block,
            "root": total - cfg.n_layer * one_block}


def activation_bytes(cfg: GPTConfig, micro_batch: int, precision: str, checkpointing: bool) -> tuple[int, int]:
    """(bytes saved for the backward pass, the most held briefly on top during the backward); see the module doc."""
    sb, h, f, V = micro_batch * cfg.seq_len, cfg.d_model, cfg.ff_dim, cfg.vocab_size
    low = FP32 if precision == "32" else 2  # bytes of a value computed under autocast
    norm_values = 2 if cfg.norm == "rmsnorm" else 1
    compute = 6 * h + (2 * h if cfg.pos == "rope" else 0) + (4 if cfg.mlp == "swiglu" else 2) * f
    per_layer = sb * (low * compute + FP32 * 2 * norm_values * h)
    head = sb * (FP32 * norm_values * h + low * h + FP32 * V)
    backward_transient = sb * V * 2 * FP32  # the loss gradient and the log-softmax gradient, fp32 either way
    if not checkpointing:
        return cfg.n_layer * per_layer + head, backward_transient
    # Block inputs only; the backward first runs the loss's, then recomputes one block at a time
    # (by then the head's values are freed): the larger of the two is the transient.
    return cfg.n_layer * sb * h * FP32 + head, max(backward_transient, per_layer - head)


def estimate_memory(gpt_config: GPTConfig, micro_batch: int, precision: str = "bf16-mixed", world_size: int = 1,
                    strategy: str = "ddp", activation_checkpointing: bool = False) -> dict:
    """Bytes per device for one training step: each component and their `total` (see the module doc)."""
    _check(precision, strategy, world_size, micro_batch)
    n = _param_counts(gpt_config)
    shard = world_size if strategy == "fsdp" else 1
    mixed = precision == "bf16-mixed"
    params, grads, optimizer = (FP32 * n["total"] / shard, FP32 * n["total"] / shard,
                                ADAMW_STATES * FP32 * n["total"] / shard)
    if strategy == "fsdp":
        gathered = (2 if mixed else FP32) * (n["root"] + 2 * n["block"])
        comm, casts = gathered + FP32 * n["block"], 0
    else:
        comm = grads if world_size > 1 else 0
        casts = 2 * n["linear"] if mixed else 0
    activations, backward_transient = activation_bytes(gpt_config, micro_batch, precision, activation_checkpointing)
    parts = {"params": params, "grads": grads, "optimizer": optimizer, "weight_casts": casts, "comm_buffers": comm,
             "activations": activations, "backward_transient": backward_transient}
    parts = {k: int(round(v)) for k, v in parts.items()}
    return {**parts, "total": sum(parts.values()), "micro_batch": micro_batch, "precision": precision,
            "world_size": world_size, "strategy": strategy, "activation_checkpointing": activation_checkpointing,
            "n_params": n["total"]}


def choose_strategy(gpt_config: GPTConfig, global_batch: int, gpu_memory_bytes: int, world_size: int,
                    precision: str = "bf16-mixed") -> dict:
    """The cheapest setting that fits: no activation checkpointing before checkpointing (recomputing
    the forward costs about a third more compute), within that DDP before FSDP (no parameter
    gathering), then the largest micro-batch that divides the per-device batch and fits in
    USABLE_FRACTION of the memory less RESERVED_BYTES. Returns the
    estimate of the chosen setting plus `strategy`, `micro_batch`, `accumulation`, `budget_bytes`."""
    _check(precision, "ddp", world_size, 1)
    if isinstance(global_batch, bool) or not isinstance(global_batch, int) or global_batch % world_size:
        raise ConfigError(f"global_batch={global_batch!r}: expected a positive multiple of world_size={world_size}")
    per_device = global_batch // world_size
    budget = int(gpu_memory_bytes * USABLE_FRACTION) - RESERVED_BYTES
    candidates = sorted((m for m in range(1, per_device + 1) if per_device % m == 0), reverse=True)
    for checkpointing in (False, True):
        for strategy in STRATEGIES if world_size > 1 else ("ddp",):
            for micro in candidates:
                est = estimate_memory(gpt_config, micro, precision, world_size, strategy, checkpointing)
                if est["total"] <= budget:
                    return {**est, "accumulation": per_device // micro, "budget_bytes": budget}
    smallest = estimate_memory(gpt_config, 1, precision, world_size, "fsdp" if world_size > 1 else "ddp", True)
    raise ConfigError(f"the model ({gpt_config.n_layer} layers, d_model {gpt_config.d_model}) needs at least "
                      f"{smallest['total'] / GIB:.1f} GiB per device with {world_size} device(s), more than the "
                      f"{budget / GIB:.1f} GiB usable of {gpu_memory_bytes / GIB:.1f} GiB: use more devices or a larger GPU")


PROFILE = "slurm_gpu"  # the cluster profile whose trainer.gpu names the GPU plans are sized for


def profile_gpu() -> str:
    """The GPU named by the GPU cluster profile (conf/cluster/slurm_gpu.yaml, trainer.gpu)."""
    from lmlab.config import compose_train

    gpu = compose_train([f"cluster={PROFILE}"])["trainer"]["gpu"]
    if not gpu:
        raise ConfigError(f"conf/cluster/{PROFILE}.yaml names no GPU (trainer.gpu); expected one of "
                          f"{', '.join(GPU_MEMORY_BYTES)}, or pass --gpu")
    return str(gpu)


def plan_memory(gpt_config: GPTConfig, trainer: dict, gpu: str | None = None) -> dict:
    """Memory per GPU of a run with the `trainer` settings (global_batch_size, micro_batch_size, devices,
    nodes, precision, strategy, activation_checkpointing) on `gpu` (default: the cluster profile's).
    strategy auto (or absent): lmlab chooses strategy, micro-batch and checkpointing (choose_strategy);
    ddp or fsdp: the given setting is estimated and refused in one line if it does not fit. Returns the
    estimate plus `gpu`, `gpu_memory_bytes`, `budget_bytes`, the totals `with_checkpointing` and
    `without_checkpointing` of the chosen strategy and micro-batch, `chosen` (whether lmlab chose the
    setting), the training `overrides` that run it, and report `lines`."""
    from lmlab.runspec import accumulation_steps

    gpu = gpu or profile_gpu()
    memory = gpu_memory_bytes(gpu)
    world = int(trainer["devices"]) * int(trainer["nodes"])
    precision, strategy = str(trainer["precision"]), str(trainer.get("strategy") or "auto")
    if int(trainer["global_batch_size"]) % world:
        raise ConfigError(f"trainer.global_batch_size={trainer['global_batch_size']}: expected a multiple of the "
                          f"{world} GPUs ({trainer['nodes']} node(s) x {trainer['devices']})")
    if strategy == "auto":
        plan = choose_strategy(gpt_config, int(trainer["global_batch_size"]), memory, world, precision)
    else:
        checkpointing = bool(trainer.get("activation_checkpointing"))
        plan = estimate_memory(gpt_config, int(trainer["micro_batch_size"]), precision, world, strategy, checkpointing)
        plan.update(accumulation=accumulation_steps(trainer), budget_bytes=int(memory * USABLE_FRACTION) - RESERVED_BYTES)
        if plan["total"] > plan["budget_bytes"]:
            raise ConfigError(f"trainer.strategy={strategy} with micro_batch_size={plan['micro_batch']}"
                              f"{' and activation checkpointing' if checkpointing else ''} needs "
                              f"{plan['total'] / GIB:.1f} GiB per GPU, more than the {plan['budget_bytes'] / GIB:.1f} "
                              f"GiB usable of a {gpu}; expected trainer.strategy=auto (lmlab chooses), a smaller "
                              f"micro-batch or activation checkpointing")
    both = {ckpt: estimate_memory(gpt_config, plan["micro_batch"], precision, world, plan["strategy"], ckpt)["total"]
            for ckpt in (False, True)}
    plan.update(gpu=gpu, gpu_memory_bytes=memory, with_checkpointing=both[True], without_checkpointing=both[False],
                chosen=strategy == "auto",
                overrides=[f"trainer.strategy={plan['strategy']}", f"trainer.micro_batch_size={plan['micro_batch']}",
                           f"trainer.activation_checkpointing={str(plan['activation_checkpointing']).lower()}"])
    return {**plan, "lines": memory_lines(plan)}


def memory_lines(plan: dict) -> list[str]:
    gib = lambda b: f"{b / GIB:.1f}"  # noqa: E731
    parts = ", ".join(f"{k.replace('_', ' ')} {gib(plan[k])}" for k in
                      ("params", "grads", "optimizer", "weight_casts", "comm_buffers", "activations", "backward_transient"))
    return [f"memory per GPU on {plan['gpu']} ({gib(plan['gpu_memory_bytes'])} GiB, {gib(plan['budget_bytes'])} usable), "
            f"{plan['world_size']} GPU(s), {plan['precision']}: {plan['strategy']}, micro-batch {plan['micro_batch']} x "
            f"{plan['accumulation']} accumulated, activation checkpointing "
            f"{'on' if plan['activation_checkpointing'] else 'off'}",
            f"  {parts} = {gib(plan['total'])} GiB",
            f"  at this micro-batch: {gib(plan['without_checkpointing'])} GiB without activation checkpointing, "
            f"{gib(plan['with_checkpointing'])} GiB with it"]


def measure_cpu_peak(gpt_config: GPTConfig, micro_batch: int, accumulation: int = 2, steps: int = 2,
                     activation_checkpointing: bool = False, precision: str = "32") -> int:
    """Peak bytes a CPU training step adds to a fresh process (AdamW, lmlab's GPT; bf16-mixed as
    Lightning runs it on CPU: fp32 weights, the forward under bf16 autocast): the growth
    of its peak resident set (VmHWM) over its resident set (VmRSS) after a warm-up step of a
    tiny model (so that libraries and kernels are already loaded). Runs in a subprocess."""
    _check(precision, "ddp", 1, micro_batch)
    spec = {"cfg": gpt_config.__dict__, "micro_batch": micro_batch, "accumulation": accumulation, "steps": steps,
            "checkpointing": activation_checkpointing, "precision": precision}
    # glibc serves allocations above 64 KiB by mmap, so a freed tensor leaves the resident set at once
    # (otherwise freed heap blocks stay resident and the peak counts allocator slack, not tensors).
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run([sys.executable, "-m", "lmlab.launch.memory", json.dumps(spec)], capture_output=True,
                         text=True, check=True, timeout=600, env=env)
    return int(out.stdout.strip().splitlines()[-1])


def _train_steps(cfg: GPTConfig, micro_batch: int, accumulation: int, steps: int, checkpointing: bool,
                 precision: str) -> None:
    import torch

    from lmlab.models.gpt import GPT, Block

    model = GPT(cfg)
    if checkpointing:
        from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import apply_activation_checkpointing

        apply_activation_checkpointing(model, check_fn=lambda m: isinstance(m, Block))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def micro_step(batch):  # returns only the loss, as a LightningModule's training_step does
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
            return model(batch[:, :-1], batch[:, 1:])[1]

    for step in range(steps):
        for micro in range(accumulation):
            batch = torch.randint(0, cfg.vocab_size, (micro_batch, cfg.seq_len + 1),
                                  generator=torch.Generator().manual_seed(step * accumulation + micro))
            micro_step(batch).backward()
        optimizer.step()
        optimizer.zero_grad()


def _status_bytes(field: str) -> int:
    """A size from /proc/self/status (VmRSS, VmHWM: this process's memory only; getrusage's ru_maxrss
    would also carry the parent's peak across fork and exec)."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def _measure(spec: dict) -> int:
    import gc

    import torch

    torch.set_num_threads(1)
    cfg = GPTConfig(**spec["cfg"])
    tiny = replace(cfg, n_layer=1, d_model=cfg.n_head * 2, vocab_size=64, d_ff=None)
    _train_steps(tiny, 1, 1, 1, spec["checkpointing"], spec["precision"])
    gc.collect()
    rss_before = _status_bytes("VmRSS")
    _train_steps(cfg, spec["micro_batch"], spec["accumulation"], spec["steps"], spec["checkpointing"], spec["precision"])
    return _status_bytes("VmHWM") - rss_before


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="measure the peak memory of CPU training steps (see measure_cpu_peak)")
    parser.add_argument("spec", help="JSON: cfg (GPTConfig fields), micro_batch, accumulation, steps, checkpointing, precision")
    print(_measure(json.loads(parser.parse_args().spec)))
