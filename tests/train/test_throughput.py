"""Peak FLOP/s for MFU: the right row of the GPU table, and a CPU peak that only ever rises."""

from __future__ import annotations

import json

import pytest

from lmlab.train import throughput


@pytest.mark.parametrize("name,precision,peak", [
    ("NVIDIA H100 PCIe", "bf16-mixed", 756e12),
    ("NVIDIA H100 80GB HBM3", "bf16-mixed", 989e12),
    ("NVIDIA A100-SXM4-80GB", "32", 19.5e12),
    ("NVIDIA L4", "bf16-mixed", 121e12),
    ("NVIDIA L40S", "bf16-mixed", 362e12),
    ("Some Future Accelerator", "bf16-mixed", None),
])
def test_gpu_table_matches_the_most_specific_name(name, precision, peak):
    assert throughput.gpu_peak_flops(name, precision) == peak


def test_cpu_peak_keeps_the_best_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(throughput, "CACHE", tmp_path / "cpu_peak_flops.json")
    readings = iter([5e9, 9e9, 7e9])
    monkeypatch.setattr(throughput, "measure_cpu_matmul_flops", lambda size, seconds: next(readings))
    assert [throughput.cpu_peak_flops() for _ in range(3)] == [5e9, 9e9, 9e9]
    assert list(json.loads((tmp_path / "cpu_peak_flops.json").read_text()).values()) == [9e9]


def test_a_user_peak_wins(monkeypatch):
    import torch

    assert throughput.peak_flops(torch.device("cpu"), "32", override=1.5e12) == 1.5e12


def test_measured_matmul_rate_is_plausible():
    rate = throughput.measure_cpu_matmul_flops(size=256, seconds=0.05)
    assert 1e8 < rate < 1e14
