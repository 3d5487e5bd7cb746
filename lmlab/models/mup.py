"""muP, the maximal update parametrisation (Yang et al. 2022, "Tensor Programs V", Table 3, Adam),
for lmlab's GPT: hyperparameters tuned at a small base width stay near-optimal as the width grows.

With the width multiplier m = d_model / mup_base_width:
  - hidden matrices (attention qkv and output, MLP up/gate/down): init std 0.02/sqrt(m), Adam LR lr/m;
  - embedding-like matrices (token and position tables, the LM head, tied or not): init std 0.02, LR lr;
    the logits are multiplied by 1/m instead (the "output multiplier" form of muP's readout);
  - vectors (norm gains, biases): LR lr;
  - attention scores q.k/head_dim instead of q.k/sqrt(head_dim), times sqrt(base head size) so that
    the base width scores as standard attention does (base head size: mup_base_width / n_head).
At m = 1 each rule is the identity: a muP model at its base width is the standard model.
Depth transfer (CompleteP, Dey et al. 2025) is not implemented: tune at the depth you will use.
"""

from __future__ import annotations

import math

BASE_STD = 0.02  # GPT-2's init std, kept for every matrix at the base width


def width_mult(cfg) -> float:
    """m = d_model / mup_base_width (1.0 under the standard parametrisation)."""
    return cfg.d_model / cfg.mup_base_width if cfg.mup_base_width else 1.0


def hidden_std(cfg) -> float:
    """Init std of a hidden matrix: variance 1/fan_in, anchored to 0.02 at the base width."""
    return BASE_STD / math.sqrt(width_mult(cfg))


def attention_scale(cfg) -> float | None:
    """The factor on q.k: None (SDPA's 1/sqrt(head_dim)) under the standard parametrisation."""
    if not cfg.mup_base_width:
        return None
    return math.sqrt(cfg.mup_base_width / cfg.n_head) / cfg.head_dim


def output_mult(cfg) -> float:
    return 1.0 / width_mult(cfg)


def is_hidden(name: str, param) -> bool:
    """A matrix inside a transformer block (the rest are embeddings, the head, or vectors)."""
    return param.dim() >= 2 and name.startswith("blocks.")


def param_groups(model, weight_decay: float, lr: float | None) -> list[dict]:
    """AdamW groups under muP: embedding-like matrices at lr (first, so logs show the base lr), hidden
    matrices at lr/m, vectors at lr without decay. Without lr the groups carry no "lr" key."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]  # a tied matrix appears once
    m = width_mult(model.cfg)
    groups = [
        {"params": [p for n, p in named if p.dim() >= 2 and not is_hidden(n, p)], "weight_decay": weight_decay},
        {"params": [p for n, p in named if is_hidden(n, p)], "weight_decay": weight_decay, "lr_mult": 1 / m},
        {"params": [p for n, p in named if p.dim() < 2], "weight_decay": 0.0},
    ]
    for group in groups:
        mult = group.pop("lr_mult", 1.0)
        if lr is not None:
            group["lr"] = lr * mult
    return groups
