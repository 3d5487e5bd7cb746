"""GPTConfig: the shape and options of a GPT, checked on construction. Torch-free, so that run specs,
counts and plans never import torch (the model itself lives in lmlab.models.gpt)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lmlab.errors import ConfigError

NORMS = ("layernorm", "rmsnorm")
MLPS = ("gelu", "swiglu")
POSITIONS = ("learned", "rope")


def default_d_ff(d_model: int, mlp: str) -> int:
    """4*d_model for GELU. SwiGLU has three matrices, so 8/3*d_model (rounded up to a multiple of 8)
    keeps its parameter count equal to the GELU MLP's (Shazeer 2020, as in LLaMA)."""
    return 8 * math.ceil(d_model / 3) if mlp == "swiglu" else 4 * d_model


@dataclass
class GPTConfig:
    vocab_size: int
    seq_len: int  # the context length: the longest input, and the size of the position tables
    n_layer: int
    d_model: int
    n_head: int
    d_ff: int | None = None  # None: default_d_ff(d_model, mlp); read the resolved value as .ff_dim
    norm: str = "layernorm"
    mlp: str = "gelu"
    pos: str = "learned"
    tie_embeddings: bool = True
    dropout: float = 0.0
    bias: bool = False  # biases in every Linear and LayerNorm (GPT-2 has them), never in the LM head
    mup_base_width: int | None = None  # None: standard parametrisation; a d_model: muP relative to it

    def __post_init__(self) -> None:
        for key in ("vocab_size", "seq_len", "n_layer", "d_model", "n_head"):
            _check_positive_int(key, getattr(self, key))
        for key in ("d_ff", "mup_base_width"):
            if getattr(self, key) is not None:
                _check_positive_int(key, getattr(self, key))
        for key, choices in (("norm", NORMS), ("mlp", MLPS), ("pos", POSITIONS)):
            if getattr(self, key) not in choices:
                raise ConfigError(f"model.{key}={getattr(self, key)!r} is not one of {', '.join(choices)}")
        for key in ("tie_embeddings", "bias"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"model.{key}={getattr(self, key)!r} must be true or false")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ConfigError(f"model.dropout={self.dropout!r} must be a number in [0, 1)")
        if self.d_model % self.n_head:
            raise ConfigError(f"model.d_model={self.d_model} must be divisible by model.n_head={self.n_head}")
        if self.pos == "rope" and self.head_dim % 2:
            raise ConfigError(f"model.pos='rope' needs an even head size, got d_model/n_head={self.head_dim}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @property
    def ff_dim(self) -> int:
        return self.d_ff if self.d_ff is not None else default_d_ff(self.d_model, self.mlp)


def _check_positive_int(key: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"model.{key}={value!r} must be a positive integer")
