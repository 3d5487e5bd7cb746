"""The size registry, parameter counts against real modules, FLOPs against the papers' formulas by hand."""

from __future__ import annotations

from enum import Enum

import pytest
import torch
from omegaconf import OmegaConf

from lmlab.errors import ConfigError
from lmlab.models.family import (
    LADDER, NAME_TOLERANCE, REFERENCES, SIZES, build_model, count_params, flops_per_token_6n,
    flops_per_token_exact, get_size, nearest_size, resolve_config,
)
from lmlab.models.gpt import GPT, GPTConfig
from tests.models.test_gpt import ARCHS, arch_id


def numel(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # a tied matrix is yielded once


def meta_model(cfg: GPTConfig) -> GPT:
    with torch.device("meta"):  # shapes without memory or init cost
        return GPT(cfg)


def nonembedding(size) -> int:
    return count_params(size.config(50257))["n_params_nonembedding"]


@pytest.mark.parametrize("arch", ARCHS, ids=arch_id)
def test_count_params_equals_the_instantiated_model(arch):
    cfg = GPTConfig(vocab_size=37, seq_len=24, n_layer=3, d_model=48, n_head=4, **arch)
    model = GPT(cfg)
    counts = count_params(cfg)
    assert counts["n_params"] == numel(model)
    embedding = model.tok_emb.weight.numel() * (1 if arch["tie_embeddings"] else 2)
    embedding += model.pos_emb.weight.numel() if model.pos_emb is not None else 0
    assert counts["n_params_nonembedding"] == numel(model) - embedding


def test_count_params_with_an_explicit_mlp_width():
    cfg = GPTConfig(vocab_size=37, seq_len=8, n_layer=2, d_model=32, n_head=2, d_ff=40, mlp="swiglu", bias=True)
    assert count_params(cfg)["n_params"] == numel(GPT(cfg))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: s.name)
def test_count_params_equals_every_registry_size_built_on_the_meta_device(size):
    cfg = size.config(50257, pos="rope", mlp="swiglu", norm="rmsnorm", tie_embeddings=False)
    assert count_params(cfg)["n_params"] == numel(meta_model(cfg))
    cfg = size.config(50257)
    assert count_params(cfg)["n_params"] == numel(meta_model(cfg))


def test_gpt2_small_has_exactly_gpt2_124m_parameters():
    size = get_size("gpt2-small")
    cfg = size.config(50257)
    assert (cfg.n_layer, cfg.d_model, cfg.n_head, cfg.seq_len) == (12, 768, 12, 1024)
    assert (cfg.bias, cfg.tie_embeddings, cfg.pos, cfg.mlp, cfg.norm) == (True, True, "learned", "gelu", "layernorm")
    per_layer = (
        2 * (768 + 768)  # two LayerNorms, weight and bias
        + 768 * 3 * 768 + 3 * 768  # c_attn
        + 768 * 768 + 768  # attention c_proj
        + 768 * 3072 + 3072  # c_fc
        + 3072 * 768 + 768  # mlp c_proj
    )
    by_hand = 50257 * 768 + 1024 * 768 + 12 * per_layer + 2 * 768  # wte (tied with the head), wpe, blocks, ln_f
    assert by_hand == 124_439_808
    assert count_params(cfg) == {"n_params": 124_439_808, "n_params_nonembedding": 124_439_808 - 50257 * 768 - 1024 * 768}
    assert numel(meta_model(cfg)) == 124_439_808


def test_registry_is_ordered_by_size_and_spans_cpu_to_billion_scale():
    counts = [nonembedding(size) for size in SIZES]
    assert counts == sorted(counts) and len(set(counts)) == len(counts)
    assert counts[0] <= 50_000 and counts[-1] > 1_000_000_000
    assert sum(100_000 <= n <= 10_000_000 for n in counts) >= 4
    assert len({size.name for size in SIZES}) == len(SIZES)
    assert set(SIZES) == set(LADDER) | set(REFERENCES)


def nominal(name: str) -> float:
    return float(name[:-1]) * {"k": 1e3, "m": 1e6, "b": 1e9}[name[-1]]


@pytest.mark.parametrize("size", LADDER, ids=lambda s: s.name)
def test_ladder_names_state_the_nonembedding_count(size):
    assert abs(nonembedding(size) / nominal(size.name) - 1) <= NAME_TOLERANCE


@pytest.mark.parametrize("size", LADDER, ids=lambda s: s.name)
def test_ladder_follows_its_shape_rules(size):
    main_line = size.d_model == 64 * size.n_layer and size.n_head == size.n_layer  # head size 64
    below_it = size.n_layer == 2 and size.n_head == 2 and size.d_model <= 128
    assert main_line or below_it
    assert (size.seq_len, size.bias) == (1024, False)


def test_nonembedding_count_depends_on_shape_only():
    size = get_size("1.3m")
    base = count_params(size.config(50257))
    for other in (size.config(100), size.config(50257, seq_len=64), size.config(50257, pos="rope"),
                  size.config(50257, tie_embeddings=False)):
        assert count_params(other)["n_params_nonembedding"] == base["n_params_nonembedding"]
    assert count_params(size.config(100))["n_params"] < base["n_params"]


def test_unknown_size_names_itself_and_the_choices():
    with pytest.raises(ConfigError) as err:
        get_size("nope")
    message = str(err.value)
    assert "'nope'" in message
    assert all(size.name in message for size in SIZES)


# A small config for the FLOP formulas, worked by hand below.
V, T, L, D, H, FF = 100, 16, 2, 32, 2, 128


def hand_config(**arch) -> GPTConfig:
    return GPTConfig(vocab_size=V, seq_len=T, n_layer=L, d_model=D, n_head=H, **arch)


def test_flops_6n_by_hand():
    # N = every weight multiplied per token: the blocks, the final norm and the LM head.
    per_layer = 2 * D + D * 3 * D + D * D + D * FF + FF * D  # 2 norms, qkv, proj, up, down = 12,352
    n = L * per_layer + D + V * D  # = 24,736 + 3,200
    assert n == 27_936
    expected = 6 * n + 12 * L * D * T  # PaLM appendix B: 6N + 12 * n_layer * (n_head * head_size) * seq_len
    assert expected == 179_904
    assert flops_per_token_6n(hand_config()) == expected


def test_flops_exact_by_hand_from_chinchilla_appendix_f():
    key_size = D // H
    embeddings = 2 * T * V * D  # per sequence, as in the paper
    qkv = 2 * 3 * T * D * (key_size * H)
    logits_qk = 2 * T * T * (key_size * H)
    softmax = 3 * H * T * T
    reduction = 2 * T * T * (key_size * H)
    out_proj = 2 * T * (key_size * H) * D
    attention = qkv + logits_qk + softmax + reduction + out_proj
    dense = 2 * T * (D * FF + D * FF)
    final_logits = 2 * T * D * V
    forward = embeddings + L * (attention + dense) + final_logits
    training_per_token = 3 * forward // T  # backward = 2 x forward
    assert training_per_token == 198_720
    assert flops_per_token_exact(hand_config()) == training_per_token
    # SwiGLU: the dense block has three matrices of width 8/3 * d_model rounded up to 8 (88 here).
    swiglu_dense = 2 * T * 3 * D * 88
    swiglu = 3 * (embeddings + L * (attention + swiglu_dense) + final_logits) // T
    assert flops_per_token_exact(hand_config(mlp="swiglu")) == swiglu


def test_flops_6n_reproduces_nanogpt_for_gpt2_small():
    # nanoGPT: N = all parameters but the position table; 6N + 12 * L * H * Q * T.
    n = 124_439_808 - 1024 * 768
    assert flops_per_token_6n(get_size("gpt2-small").config(50257)) == 6 * n + 12 * 12 * 768 * 1024


def test_exact_count_is_within_ten_percent_of_6n_at_billion_scale():
    cfg = get_size("1.6b").config(50257, seq_len=2048)
    assert 1.0 < flops_per_token_exact(cfg) / flops_per_token_6n(cfg) < 1.1


def test_nearest_size_in_log_space():
    assert nearest_size(3e6).name == "3.1m"
    assert nearest_size(1.0).name == SIZES[0].name
    assert nearest_size(1e12).name == SIZES[-1].name
    with pytest.raises(ConfigError, match="n_params_nonembedding=0"):
        nearest_size(0)


MODEL_GROUP = dict(size="25k", seq_len=64, norm="rmsnorm", mlp="swiglu", pos="rope", tie_embeddings=False,
                   dropout=0.0, bias=None, n_layer=None, d_model=None, n_head=None)


def test_build_model_resolves_null_shape_keys_from_the_registry():
    model = build_model(OmegaConf.create(MODEL_GROUP), vocab_size=300)
    cfg = model.cfg
    assert (cfg.n_layer, cfg.d_model, cfg.n_head) == (2, 32, 2)
    assert (cfg.vocab_size, cfg.seq_len, cfg.norm, cfg.pos, cfg.bias) == (300, 64, "rmsnorm", "rope", False)
    assert numel(model) == count_params(cfg)["n_params"]


def test_resolve_config_explicit_keys_win_over_the_registry():
    cfg = resolve_config(MODEL_GROUP | dict(n_layer=3, seq_len=None), vocab_size=300)
    assert (cfg.n_layer, cfg.d_model, cfg.seq_len) == (3, 32, 1024)
    gpt2 = resolve_config(dict(size="gpt2-small"), vocab_size=50257)
    assert gpt2.bias is True and count_params(gpt2)["n_params"] == 124_439_808
    assert resolve_config(dict(size="gpt2-small", bias=False), vocab_size=50257).bias is False
    shapes_only = resolve_config(dict(n_layer=1, d_model=16, n_head=2, seq_len=8), vocab_size=10)
    assert (shapes_only.n_layer, shapes_only.bias, shapes_only.norm) == (1, False, "layernorm")


class Positions(str, Enum):  # how a Hydra structured config hands over a choice
    learned = "learned"
    rope = "rope"


def test_resolve_config_takes_the_values_of_enum_choices():
    cfg = resolve_config(MODEL_GROUP | dict(pos=Positions.rope), vocab_size=300)
    assert type(cfg.pos) is str and cfg.pos == "rope"


@pytest.mark.parametrize(("group", "fragment"), [
    (dict(MODEL_GROUP, size=None), "model.n_layer is null and model.size is not set"),
    (dict(MODEL_GROUP, size="tiny"), "unknown model size 'tiny'"),
    (dict(MODEL_GROUP, layers=4), "unknown model key(s) layers"),
    (dict(MODEL_GROUP, d_model=33), "model.d_model=33 must be divisible by model.n_head=2"),
])
def test_resolve_config_rejects_bad_groups(group, fragment):
    with pytest.raises(ConfigError) as err:
        resolve_config(group, vocab_size=300)
    assert fragment in str(err.value)


def test_resolve_config_checks_a_given_config_against_the_data_vocabulary():
    cfg = hand_config()
    assert resolve_config(cfg, vocab_size=V) is cfg
    with pytest.raises(ConfigError, match="model.vocab_size=100 differs from the data's vocab_size=99"):
        resolve_config(cfg, vocab_size=99)
