"""The model family: named sizes as data, their parameter counts and training FLOPs per token.

Shape rules of the ladder (LADDER), from 14 thousand to 1.6 billion non-embedding parameters:
  - main line: d_model = 64 * n_layer (aspect ratio d_model/n_layer = 64, as GPT-2 small) and head
    size 64, so n_head = n_layer; n_layer = 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 28, 32.
  - below it (too small for whole layers of width 64): 2 layers and 2 heads, the width growing by
    about sqrt(2) a step (24, 32, 48, 64, 96), so the parameter count roughly doubles.
  The smallest sizes train on a CPU in seconds; 100k to 11m make a CPU ladder.
Names state the non-embedding parameter count of the default architecture (LayerNorm, GELU,
no biases), within 5% (checked by tests). REFERENCES holds published shapes: gpt2-small is
GPT-2 124M exactly (biases, context 1024; 124,439,808 parameters at vocab 50257).

Counting conventions:
  - n_params: every parameter, a tied output matrix once (Chinchilla's N).
  - n_params_nonembedding: Kaplan et al. 2020's N. It excludes every vocabulary-sized matrix (the
    token embedding and the LM head, tied or not) and the learned position table; norms and biases
    count. So it depends on the shape alone, not on vocab_size, seq_len, tying or positions.
  - flops_per_token_6n: 6*N + 12*n_layer*d_model*seq_len (PaLM appendix B, nanoGPT), with
    N = n_params_nonembedding + vocab_size*d_model: every weight multiplied in each token's
    forward pass, the LM head included (its FLOPs matter at small scale, Porian et al. 2024).
    For a tied model with learned positions this N is nanoGPT's (all parameters but the position table).
  - flops_per_token_exact: Hoffmann et al. 2022 appendix F, divided by seq_len: embeddings
    (counted as a matmul, as the paper does), attention (QKV, logits, softmax, reduction, output
    projection; full T x T, no causal saving), dense block, final logits; backward = 2 x forward.
    Like the paper it ignores norms, biases, nonlinearities and positions. For SwiGLU the dense
    block has three matrices instead of two (our extension of the paper's formula).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import Enum

from lmlab.errors import ConfigError
from lmlab.models.config import GPTConfig

DEFAULT_VOCAB_SIZE = 50257  # GPT-2's, for counts comparable with the papers
NAME_TOLERANCE = 0.05  # a size's name is within 5% of its non-embedding count


@dataclass(frozen=True)
class ModelSize:
    name: str
    n_layer: int
    d_model: int
    n_head: int
    seq_len: int = 1024  # the default context when a config leaves model.seq_len null
    bias: bool = False  # the default when a config leaves model.bias null

    def config(self, vocab_size: int, seq_len: int | None = None, **arch) -> GPTConfig:
        """The GPTConfig of this size; arch holds GPTConfig's other fields (norm, mlp, pos, ...)."""
        arch.setdefault("bias", self.bias)
        return GPTConfig(vocab_size=vocab_size, seq_len=self.seq_len if seq_len is None else seq_len,
                         n_layer=self.n_layer, d_model=self.d_model, n_head=self.n_head, **arch)


LADDER: tuple[ModelSize, ...] = (
    ModelSize("14k", n_layer=2, d_model=24, n_head=2),
    ModelSize("25k", n_layer=2, d_model=32, n_head=2),
    ModelSize("55k", n_layer=2, d_model=48, n_head=2),
    ModelSize("100k", n_layer=2, d_model=64, n_head=2),
    ModelSize("220k", n_layer=2, d_model=96, n_head=2),
    ModelSize("390k", n_layer=2, d_model=128, n_head=2),
    ModelSize("1.3m", n_layer=3, d_model=192, n_head=3),
    ModelSize("3.1m", n_layer=4, d_model=256, n_head=4),
    ModelSize("6.1m", n_layer=5, d_model=320, n_head=5),
    ModelSize("11m", n_layer=6, d_model=384, n_head=6),
    ModelSize("25m", n_layer=8, d_model=512, n_head=8),
    ModelSize("50m", n_layer=10, d_model=640, n_head=10),
    ModelSize("85m", n_layer=12, d_model=768, n_head=12),
    ModelSize("200m", n_layer=16, d_model=1024, n_head=16),
    ModelSize("390m", n_layer=20, d_model=1280, n_head=20),
    ModelSize("680m", n_layer=24, d_model=1536, n_head=24),
    ModelSize("1.1b", n_layer=28, d_model=1792, n_head=28),
    ModelSize("1.6b", n_layer=32, d_model=2048, n_head=32),
)
REFERENCES: tuple[ModelSize, ...] = (
    ModelSize("gpt2-small", n_layer=12, d_model=768, n_head=12, seq_len=1024, bias=True),
)


def count_params(cfg: GPTConfig) -> dict[str, int]:
    """Parameter counts of GPT(cfg), without building it (equal to sum(p.numel()), tested)."""
    d, f = cfg.d_model, cfg.ff_dim

    def linear(n_in: int, n_out: int) -> int:
        return n_in * n_out + (n_out if cfg.bias else 0)

    norm = 2 * d if cfg.norm == "layernorm" and cfg.bias else d
    attention = linear(d, 3 * d) + linear(d, d)
    mlp = linear(d, f) + linear(f, d) + (linear(d, f) if cfg.mlp == "swiglu" else 0)
    nonembedding = cfg.n_layer * (2 * norm + attention + mlp) + norm  # + the final norm
    embedding = cfg.vocab_size * d * (1 if cfg.tie_embeddings else 2)
    if cfg.pos == "learned":
        embedding += cfg.seq_len * d
    return {"n_params": nonembedding + embedding, "n_params_nonembedding": nonembedding}


def flops_per_token_6n(cfg: GPTConfig) -> int:
    """Training FLOPs per token, 6N + 12*n_layer*d_model*seq_len, N as in the module docstring."""
    n = count_params(cfg)["n_params_nonembedding"] + cfg.vocab_size * cfg.d_model
    return 6 * n + 12 * cfg.n_layer * cfg.d_model * cfg.seq_len


def flops_per_token_exact(cfg: GPTConfig) -> int:
    """Training FLOPs per token by Hoffmann et al. 2022 appendix F (per sequence / seq_len)."""
    d, V, T, H = cfg.d_model, cfg.vocab_size, cfg.seq_len, cfg.n_head
    d_attn = H * cfg.head_dim  # key_size * num_heads
    embeddings = 2 * V * d
    attention = (
        2 * 3 * d * d_attn  # key, query and value projections
        + 2 * T * d_attn  # key @ query logits
        + 3 * H * T  # softmax
        + 2 * T * d_attn  # softmax @ value reduction
        + 2 * d_attn * d  # output projection
    )
    n_mlp_matrices = 3 if cfg.mlp == "swiglu" else 2
    dense = 2 * n_mlp_matrices * d * cfg.ff_dim
    logits = 2 * d * V
    forward = embeddings + cfg.n_layer * (attention + dense) + logits
    return 3 * forward  # backward = 2 x forward


def _sorted_by_size(sizes: tuple[ModelSize, ...]) -> tuple[ModelSize, ...]:
    return tuple(sorted(sizes, key=lambda s: count_params(s.config(DEFAULT_VOCAB_SIZE))["n_params_nonembedding"]))


SIZES: tuple[ModelSize, ...] = _sorted_by_size(LADDER + REFERENCES)  # every named size, smallest first


def get_size(name: str) -> ModelSize:
    for size in SIZES:
        if size.name == name:
            return size
    raise ConfigError(f"unknown model size {name!r}; expected one of: {', '.join(s.name for s in SIZES)}")


def nearest_size(n_params_nonembedding: float, **arch) -> ModelSize:
    """The named size whose non-embedding count (with the given architecture options) is nearest
    in log space."""
    if not n_params_nonembedding > 0:
        raise ConfigError(f"n_params_nonembedding={n_params_nonembedding!r} must be a positive number")

    def distance(size: ModelSize) -> float:
        n = count_params(size.config(DEFAULT_VOCAB_SIZE, **arch))["n_params_nonembedding"]
        return abs(math.log(n / n_params_nonembedding))

    return min(SIZES, key=distance)


_SHAPE_KEYS = ("n_layer", "d_model", "n_head", "seq_len")  # from the registry when null
_ARCH_KEYS = tuple(f.name for f in fields(GPTConfig) if f.name not in (*_SHAPE_KEYS, "vocab_size"))
_MODEL_KEYS = {"size", *_SHAPE_KEYS, *_ARCH_KEYS}


def resolve_config(model_cfg: Mapping | GPTConfig, vocab_size: int) -> GPTConfig:
    """A GPTConfig from the training config's `model` group: `size` names a registry entry, and
    n_layer/d_model/n_head/seq_len/bias left null (or absent) come from it; without a size the four
    shape keys are required. The other keys default as in GPTConfig."""
    if isinstance(model_cfg, GPTConfig):
        if model_cfg.vocab_size != vocab_size:
            raise ConfigError(f"model.vocab_size={model_cfg.vocab_size} differs from the data's vocab_size={vocab_size}")
        return model_cfg
    unknown = sorted(set(model_cfg) - _MODEL_KEYS)
    if unknown:
        raise ConfigError(f"unknown model key(s) {', '.join(unknown)}; expected some of: {', '.join(sorted(_MODEL_KEYS))}")
    # Hydra structured configs hand choices over as (str, Enum) members: keep their plain values.
    given = {k: v.value if isinstance(v, Enum) else v for k, v in model_cfg.items() if v is not None}
    size = get_size(given["size"]) if "size" in given else None
    shape = {}
    for key in _SHAPE_KEYS:
        if key in given:
            shape[key] = given[key]
        elif size is not None:
            shape[key] = getattr(size, key)
        else:
            raise ConfigError(f"model.{key} is null and model.size is not set; set one of them")
    arch = {k: given[k] for k in _ARCH_KEYS if k in given}
    arch.setdefault("bias", size.bias if size is not None else False)
    return GPTConfig(vocab_size=vocab_size, **shape, **arch)


def build_model(model_cfg: Mapping | GPTConfig, vocab_size: int):
    """The GPT for a training config's `model` group (see resolve_config) or a GPTConfig."""
    from lmlab.models.gpt import GPT

    return GPT(resolve_config(model_cfg, vocab_size))

