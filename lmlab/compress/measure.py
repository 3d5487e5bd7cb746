"""What compression costs and saves: validation loss, bytes on disk, CPU inference speed."""

from __future__ import annotations

import io
import time

import numpy as np
import torch
from torch import nn

from lmlab.compress.methods import block_linears

SPARSE_FORMAT = ("pruned block weights as their nonzero values (fp32) plus a bitmask of 1 bit per weight "
                 "(numpy.packbits); everything else dense")


@torch.no_grad()
def validation_loss(model: nn.Module, batches: list[torch.Tensor]) -> float:
    """Mean next-token loss per token over the held-out windows (as the training run evaluates)."""
    model.eval()
    total = count = 0.0
    for batch in batches:
        _, loss = model(batch[:, :-1], batch[:, 1:])
        total += loss.item() * len(batch)
        count += len(batch)
    return total / count


@torch.no_grad()
def tokens_per_second(model: nn.Module, batches: list[torch.Tensor], rounds: int = 3, min_seconds: float = 0.3) -> float:
    """Forward passes over the batches on one CPU thread, the best of `rounds` timings of at least
    min_seconds each: the best is the least disturbed by other work on the machine."""
    model.eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model(batches[0][:, :-1])  # warm-up: first-call allocations and kernel selection
        best = 0.0
        for _ in range(rounds):
            tokens, began = 0, time.perf_counter()
            while time.perf_counter() - began < min_seconds:
                for batch in batches:
                    model(batch[:, :-1])
                    tokens += batch[:, :-1].numel()
            best = max(best, tokens / (time.perf_counter() - began))
        return best
    finally:
        torch.set_num_threads(threads)


def serialized_bytes(state: dict) -> int:
    """Bytes of torch.save(state) (shared storages, such as tied weights, once)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getbuffer().nbytes


def sparse_state(model: nn.Module) -> dict:
    """The state dict with each pruned block weight as {values, bitmask, shape}: see SPARSE_FORMAT."""
    pruned = {id(m.weight) for m in block_linears(model)}
    state = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        if id(tensor) in pruned:
            w = tensor.detach()
            mask = (w != 0).flatten().numpy()
            state[name] = {"values": w.flatten()[torch.from_numpy(mask)].clone(),
                           "bitmask": torch.from_numpy(np.packbits(mask)), "shape": torch.tensor(w.shape)}
        else:
            state[name] = tensor.detach()
    return state


def sparsity_of(model: nn.Module) -> float:
    """Share of zero weights in the blocks' Linear layers."""
    weights = [m.weight.detach() for m in block_linears(model)]
    return float(sum((w == 0).sum().item() for w in weights) / sum(w.numel() for w in weights))
