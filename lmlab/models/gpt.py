"""A GPT decoder as one plain nn.Module, readable top to bottom (nanoGPT's model.py is the taste).

Pre-norm blocks (LayerNorm or RMSNorm), causal attention through
F.scaled_dot_product_attention, a GELU or SwiGLU MLP, learned or rotary positions, optionally
tied input/output embeddings, and GPT-2's init: every matrix N(0, 0.02), the two residual
projections of each block N(0, 0.02/sqrt(2*n_layer)) so the residual stream's variance does
not grow with depth. With `mup_base_width` set, muP's width rules (lmlab.models.mup) change the
init of hidden matrices, the attention scale, the logits and the per-group learning rates.
Parameter and FLOP counts live next door in lmlab.models.family.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from lmlab.errors import ConfigError
from lmlab.models import mup
from lmlab.models.config import GPTConfig, default_d_ff  # noqa: F401  (GPTConfig lives torch-free next door)


class RMSNorm(nn.Module):
    """x / rms(x) * weight (Zhang & Sennrich 2019), computed in float32 for bf16 inputs."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


def make_norm(cfg: GPTConfig) -> nn.Module:
    if cfg.norm == "rmsnorm":
        return RMSNorm(cfg.d_model)
    return nn.LayerNorm(cfg.d_model, bias=cfg.bias)


class Rotary(nn.Module):
    """Rotary positions (Su et al. 2021): rotate channel pairs of q and k by angles proportional to
    the position, so that the score q_m . k_n depends on positions only through m - n."""

    def __init__(self, head_dim: int, max_len: int, base: float = 10000.0):
        super().__init__()
        inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        angles = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)  # [max_len, head_dim/2]
        # Derived from the config, so not saved in checkpoints and not counted as parameters.
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, n_head, T, head_dim], rotated as if at positions 0..T-1."""
        T = x.size(-2)
        cos, sin = self.cos[:T], self.sin[:T]
        x1, x2 = x.float().chunk(2, dim=-1)  # pair channel i with channel i + head_dim/2 (GPT-NeoX layout)
        return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).type_as(x)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.dropout = cfg.dropout
        self.scale = mup.attention_scale(cfg)  # None: 1/sqrt(head_dim)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.resid_drop = nn.Dropout(cfg.dropout)
        self.rotary = Rotary(cfg.head_dim, cfg.seq_len) if cfg.pos == "rope" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in self.qkv(x).split(C, dim=2))
        if self.rotary is not None:
            q, k = self.rotary(q), self.rotary(k)
        dropout = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True, scale=self.scale)
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(B, T, C)))


class MLP(nn.Module):
    """GELU MLP (GPT-2, tanh approximation) or SwiGLU (Shazeer 2020): proj(silu(gate(x)) * up(x))."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.up = nn.Linear(cfg.d_model, cfg.ff_dim, bias=cfg.bias)
        self.gate = nn.Linear(cfg.d_model, cfg.ff_dim, bias=cfg.bias) if cfg.mlp == "swiglu" else None
        self.proj = nn.Linear(cfg.ff_dim, cfg.d_model, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate is None:
            h = F.gelu(self.up(x), approximate="tanh")
        else:
            h = F.silu(self.gate(x)) * self.up(x)
        return self.drop(self.proj(h))


class Block(nn.Module):
    """Pre-norm residual block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.norm1 = make_norm(cfg)
        self.attn = CausalSelfAttention(cfg)
        self.norm2 = make_norm(cfg)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.seq_len, cfg.d_model) if cfg.pos == "learned" else None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = make_norm(cfg)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight
        self._init_weights()

    def _init_weights(self) -> None:
        hidden_std = mup.hidden_std(self.cfg)  # 0.02 under the standard parametrisation
        for name, module in self.named_modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                std = hidden_std if name.startswith("blocks.") else 0.02  # muP: hidden matrices narrower
                nn.init.normal_(module.weight, mean=0.0, std=std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        # The two projections that write into the residual stream: 2*n_layer additions in all.
        residual_std = hidden_std / math.sqrt(2 * self.cfg.n_layer)
        for block in self.blocks:
            nn.init.normal_(block.attn.proj.weight, mean=0.0, std=residual_std)
            nn.init.normal_(block.mlp.proj.weight, mean=0.0, std=residual_std)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """idx, targets: [B, T] token ids. Returns (logits [B, T, vocab], mean cross-entropy in nats or None)."""
        T = idx.size(1)
        if T > self.cfg.seq_len:
            raise ConfigError(f"input length {T} exceeds model.seq_len={self.cfg.seq_len}")
        x = self.tok_emb(idx)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(T, device=idx.device))
        x = self.drop(x)
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.norm(x))
        if self.cfg.mup_base_width:
            logits = logits * mup.output_mult(self.cfg)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        return logits, loss

    def param_groups(self, weight_decay: float, lr: float | None = None) -> list[dict]:
        """AdamW groups: decay every matrix, never a vector. Matrices are the Linear weights and, as in
        GPT-2 and nanoGPT, the embeddings (with tied embeddings the token table is also the output
        layer); vectors are norm weights and biases. A tied matrix appears once. Under muP the hidden
        matrices get a group of their own with a smaller learning rate (lmlab.models.mup). With lr
        given, each group carries its learning rate."""
        if self.cfg.mup_base_width:
            return mup.param_groups(self, weight_decay, lr)
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        return [{**g, "lr": lr} for g in groups] if lr is not None else groups
