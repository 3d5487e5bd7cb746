"""Peak FLOP/s for MFU: a table for known accelerators, a measured matmul peak on CPU (cached)."""

from __future__ import annotations

import json
import platform
import time

import torch

from lmlab.io import cache_dir, write_json

# Dense peak FLOP/s per device (vendor data sheets, no sparsity), by precision.
GPU_PEAK_FLOPS = {
    "H200": {"bf16-mixed": 989e12, "32": 67e12},
    "H100 SXM": {"bf16-mixed": 989e12, "32": 67e12},
    "H100 NVL": {"bf16-mixed": 835e12, "32": 60e12},
    "H100 PCIe": {"bf16-mixed": 756e12, "32": 51e12},
    "H100": {"bf16-mixed": 989e12, "32": 67e12},
    "A100": {"bf16-mixed": 312e12, "32": 19.5e12},
    "A10G": {"bf16-mixed": 70e12, "32": 31.2e12},
    "L40S": {"bf16-mixed": 362e12, "32": 91.6e12},
    "L4": {"bf16-mixed": 121e12, "32": 30.3e12},
    "V100": {"bf16-mixed": 125e12, "32": 15.7e12},  # V100 has no bf16: its fp16 tensor-core peak
    "RTX 4090": {"bf16-mixed": 165e12, "32": 82.6e12},
    "MI300X": {"bf16-mixed": 1307e12, "32": 163e12},
    "MI250X": {"bf16-mixed": 383e12, "32": 47.9e12},
}

CACHE = cache_dir() / "cpu_peak_flops.json"


def gpu_peak_flops(device_name: str, precision: str) -> float | None:
    """Longest table key contained in the device name wins ("H100 PCIe" before "H100")."""
    for key in sorted(GPU_PEAK_FLOPS, key=len, reverse=True):
        if key.lower() in device_name.lower():
            return GPU_PEAK_FLOPS[key].get(precision)
    return None


def measure_cpu_matmul_flops(size: int = 512, seconds: float = 0.5) -> float:
    """Sustained fp32 matmul FLOP/s of this CPU at the current thread count."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return 2 * size**3 * n / (time.perf_counter() - start)


def cpu_peak_flops(size: int = 512, seconds: float = 0.2) -> float:
    """The best matmul rate seen on this (CPU, thread count): a short measurement per run, folded
    into a cached maximum, so one reading taken on a busy machine does not stand for the peak."""
    key = f"{platform.processor() or platform.machine()}|threads={torch.get_num_threads()}|n={size}"
    cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    best = max(cache.get(key, 0.0), measure_cpu_matmul_flops(size, seconds))
    if best != cache.get(key):
        cache[key] = best
        write_json(CACHE, cache)
    return best


def peak_flops(accelerator_device: torch.device, precision: str, override: float | None) -> float | None:
    if override:
        return float(override)
    if accelerator_device.type == "cuda":
        return gpu_peak_flops(torch.cuda.get_device_name(accelerator_device), precision)
    if accelerator_device.type == "cpu":
        return cpu_peak_flops()
    return None
