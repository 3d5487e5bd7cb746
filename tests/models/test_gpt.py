"""The GPT module: outputs, causality, init, weight-decay groups, rotary positions, config checks."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from lmlab.errors import ConfigError
from lmlab.models.gpt import GPT, GPTConfig, Rotary, default_d_ff

ARCHS = [
    dict(norm=norm, mlp=mlp, pos=pos, tie_embeddings=tie, bias=bias)
    for norm, mlp, pos, tie, bias in itertools.product(
        ("layernorm", "rmsnorm"), ("gelu", "swiglu"), ("learned", "rope"), (True, False), (True, False))
]
VOCAB, SEQ = 37, 16


def arch_id(arch: dict) -> str:
    return "-".join(str(value) for value in arch.values())


def small(**arch) -> GPTConfig:
    return GPTConfig(vocab_size=VOCAB, seq_len=SEQ, n_layer=2, d_model=32, n_head=4, **arch)


def tokens(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, VOCAB, shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("arch", ARCHS[::5], ids=arch_id)
def test_forward_returns_logits_and_mean_cross_entropy_in_nats(arch):
    torch.manual_seed(0)
    model = GPT(small(**arch))
    idx, targets = tokens(3, SEQ), tokens(3, SEQ, seed=1)
    logits, loss = model(idx, targets)
    assert logits.shape == (3, SEQ, VOCAB)
    assert loss.shape == ()
    log_probs = logits.log_softmax(-1)
    expected = -log_probs.gather(-1, targets.unsqueeze(-1)).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)

    short_logits, no_loss = model(idx[:, :5])
    assert short_logits.shape == (3, 5, VOCAB) and no_loss is None


def test_initial_loss_is_close_to_uniform_over_the_vocabulary():
    # std-0.02 weights give near-zero logits, so the first loss is about ln(vocab).
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=1000, seq_len=SEQ, n_layer=2, d_model=64, n_head=4)
    _, loss = GPT(cfg)(torch.randint(0, 1000, (4, SEQ)), torch.randint(0, 1000, (4, SEQ)))
    assert loss.item() == pytest.approx(math.log(1000), abs=0.05)


@pytest.mark.parametrize("arch", ARCHS, ids=arch_id)
def test_changing_a_future_token_leaves_earlier_logits_unchanged(arch):
    torch.manual_seed(0)
    model = GPT(small(**arch)).eval()
    idx = tokens(2, SEQ)
    changed = idx.clone()
    t = 7
    changed[:, t] = (changed[:, t] + 1) % VOCAB
    with torch.no_grad():
        before, _ = model(idx)
        after, _ = model(changed)
    torch.testing.assert_close(after[:, :t], before[:, :t], rtol=0, atol=1e-6)
    assert not torch.allclose(after[:, t], before[:, t], atol=1e-4)


def test_init_uses_gpt2_scales():
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=512, seq_len=SEQ, n_layer=4, d_model=256, n_head=4, bias=True)
    model = GPT(cfg)
    residual_std = 0.02 / math.sqrt(2 * cfg.n_layer)
    for block in model.blocks:
        assert block.attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.03)
        assert block.mlp.up.weight.std().item() == pytest.approx(0.02, rel=0.03)
        assert block.attn.proj.weight.std().item() == pytest.approx(residual_std, rel=0.03)
        assert block.mlp.proj.weight.std().item() == pytest.approx(residual_std, rel=0.03)
        assert torch.all(block.attn.qkv.bias == 0) and torch.all(block.norm1.weight == 1)
    assert model.tok_emb.weight.std().item() == pytest.approx(0.02, rel=0.03)
    assert model.lm_head.weight is model.tok_emb.weight


@pytest.mark.parametrize("arch", ARCHS[::3], ids=arch_id)
def test_weight_decay_goes_to_every_matrix_and_no_vector(arch):
    model = GPT(small(**arch))
    decay, no_decay = model.param_groups(weight_decay=0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decay["params"])
    assert all(p.dim() == 1 for p in no_decay["params"])
    grouped = [id(p) for p in decay["params"] + no_decay["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())  # each parameter exactly once
    linears_per_layer = 5 if arch["mlp"] == "swiglu" else 4
    n_matrices = 1 + (arch["pos"] == "learned") + (not arch["tie_embeddings"]) + 2 * linears_per_layer
    n_norms = 2 * 2 + 1
    n_vectors = n_norms * (2 if arch["norm"] == "layernorm" and arch["bias"] else 1)
    n_vectors += 2 * linears_per_layer if arch["bias"] else 0
    assert (len(decay["params"]), len(no_decay["params"])) == (n_matrices, n_vectors)


def rotate_at(rotary: Rotary, x: torch.Tensor, start: int) -> torch.Tensor:
    """x [1, 1, T, head_dim] rotated as if at positions start..start+T-1."""
    padded = torch.cat((torch.zeros(1, 1, start, x.size(-1)), x), dim=2)
    return rotary(padded)[:, :, start:]


def test_rotary_attention_scores_are_translation_equivariant():
    torch.manual_seed(0)
    rotary = Rotary(head_dim=16, max_len=64)
    q, k = torch.randn(1, 1, 8, 16), torch.randn(1, 1, 8, 16)
    scores = rotate_at(rotary, q, 0) @ rotate_at(rotary, k, 0).transpose(-1, -2)
    for shift in (1, 13, 56):
        shifted = rotate_at(rotary, q, shift) @ rotate_at(rotary, k, shift).transpose(-1, -2)
        torch.testing.assert_close(shifted, scores, rtol=0, atol=1e-4)
    # ... and position does matter: shifting q alone changes the scores.
    assert not torch.allclose(rotate_at(rotary, q, 3) @ rotate_at(rotary, k, 0).transpose(-1, -2), scores, atol=1e-2)
    # A rotation keeps lengths.
    torch.testing.assert_close(rotate_at(rotary, q, 5).norm(dim=-1), q.norm(dim=-1))


def test_rotary_score_of_one_query_and_key_depends_only_on_their_distance():
    torch.manual_seed(0)
    rotary = Rotary(head_dim=16, max_len=32)
    q, k = torch.randn(16), torch.randn(16)
    qs, ks = rotary(q.expand(1, 1, 32, 16)), rotary(k.expand(1, 1, 32, 16))
    scores = (qs @ ks.transpose(-1, -2))[0, 0]  # scores[m, n] = q at m . k at n
    for distance in range(-5, 6):
        diagonal = torch.diagonal(scores, offset=distance)
        torch.testing.assert_close(diagonal, diagonal[0].expand_as(diagonal), rtol=0, atol=1e-4)
    assert abs(scores[0, 0].item() - scores[0, 3].item()) > 1e-3  # distance 0 vs 3


def test_rotary_tables_are_neither_parameters_nor_checkpointed():
    model = GPT(small(pos="rope"))
    assert model.pos_emb is None
    assert not any("cos" in name or "sin" in name for name in model.state_dict())
    assert all(p.dim() > 0 for p in model.parameters())


def test_dropout_acts_in_training_only():
    torch.manual_seed(0)
    model = GPT(small(dropout=0.2))
    idx = tokens(2, SEQ)
    model.train()
    assert not torch.allclose(model(idx)[0], model(idx)[0])
    model.eval()
    torch.testing.assert_close(model(idx)[0], model(idx)[0])


def test_swiglu_default_width_keeps_the_mlp_parameter_count():
    assert default_d_ff(768, "gelu") == 3072
    assert default_d_ff(768, "swiglu") == 2048
    assert 3 * 768 * 2048 == 2 * 768 * 3072
    assert default_d_ff(100, "swiglu") == 272  # 8/3 * 100 = 266.7, up to a multiple of 8


@pytest.mark.parametrize(("change", "fragment"), [
    (dict(d_model=30), "model.d_model=30 must be divisible by model.n_head=4"),
    (dict(norm="batchnorm"), "model.norm='batchnorm' is not one of layernorm, rmsnorm"),
    (dict(mlp="relu"), "model.mlp='relu'"),
    (dict(pos="alibi"), "model.pos='alibi'"),
    (dict(n_layer=0), "model.n_layer=0 must be a positive integer"),
    (dict(vocab_size=3.5), "model.vocab_size=3.5"),
    (dict(d_ff=-1), "model.d_ff=-1"),
    (dict(dropout=1.0), "model.dropout=1.0 must be a number in [0, 1)"),
    (dict(tie_embeddings="yes"), "model.tie_embeddings='yes' must be true or false"),
    (dict(d_model=12, pos="rope"), "even head size, got d_model/n_head=3"),
])
def test_config_rejects_bad_values(change, fragment):
    fields = dict(vocab_size=VOCAB, seq_len=SEQ, n_layer=2, d_model=32, n_head=4) | change
    with pytest.raises(ConfigError) as err:
        GPTConfig(**fields)
    assert fragment in str(err.value)


def test_input_longer_than_the_context_is_rejected():
    model = GPT(small())
    with pytest.raises(ConfigError, match=f"input length {SEQ + 1} exceeds model.seq_len={SEQ}"):
        model(tokens(1, SEQ + 1))
