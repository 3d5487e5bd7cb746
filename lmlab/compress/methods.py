"""Compression methods. Both act on the Linear layers of the transformer blocks (the non-embedding
parameters); the embedding, which with tied embeddings is also the output layer, stays fp32, as
LLM.int8() and most post-training schemes keep the first and last layers in full precision.

- int8: dynamic quantisation (torch.ao.quantization.quantize_dynamic): int8 weights with one
  scale per tensor, activations quantised on the fly per batch; CPU kernels (fbgemm/qnnpack).
- prune: magnitude pruning with torch.nn.utils.prune, per layer: `unstructured` zeroes the
  smallest |w| of each weight matrix; `2:4` keeps the 2 largest |w| of every 4 consecutive
  weights along the input dimension (the semi-structured pattern sparse tensor cores run),
  applied as a mask. The masks are made permanent (zeros in the weights).
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from lmlab.errors import ConfigError

PATTERNS = ("unstructured", "2:4")


def block_linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.blocks.modules() if isinstance(m, nn.Linear)]


def quantize_int8(model: nn.Module) -> nn.Module:
    """A copy of the model with int8 dynamic quantisation of the blocks' Linear layers."""
    from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # torch points eager-mode quantisation users to torchao; it still works
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantiz.*deprecated", category=UserWarning)
        return quantize_dynamic(copy.deepcopy(model), {"blocks": default_dynamic_qconfig}, dtype=torch.qint8)


def check_sparsity(sparsity: float, pattern: str) -> None:
    if pattern not in PATTERNS:
        raise ConfigError(f"--pattern={pattern!r}: expected one of {', '.join(PATTERNS)}")
    if not 0 < sparsity < 1:
        raise ConfigError(f"--sparsity={sparsity:g}: expected a fraction of weights to remove in (0, 1), e.g. 0.5")
    if pattern == "2:4" and sparsity != 0.5:
        raise ConfigError(f"--sparsity={sparsity:g} with --pattern 2:4: the 2:4 pattern removes exactly 0.5")


def two_four_mask(weight: torch.Tensor) -> torch.Tensor:
    """1 for the 2 largest |w| in each group of 4 consecutive inputs, 0 for the others."""
    out_features, in_features = weight.shape
    if in_features % 4:
        raise ConfigError(f"2:4 pruning needs input sizes divisible by 4, got a {tuple(weight.shape)} weight")
    groups = weight.detach().abs().reshape(out_features, in_features // 4, 4)
    keep = groups.topk(2, dim=-1).indices
    return torch.zeros_like(groups).scatter_(-1, keep, 1.0).reshape(out_features, in_features)


def prune(model: nn.Module, sparsity: float, pattern: str = "unstructured") -> nn.Module:
    """A copy of the model with the blocks' Linear weights pruned by magnitude (see the module doc)."""
    from torch.nn.utils import prune as torch_prune

    check_sparsity(sparsity, pattern)
    model = copy.deepcopy(model)
    for layer in block_linears(model):
        if pattern == "2:4":
            torch_prune.custom_from_mask(layer, "weight", two_four_mask(layer.weight))
        else:
            torch_prune.l1_unstructured(layer, "weight", amount=sparsity)
        torch_prune.remove(layer, "weight")
    return model
