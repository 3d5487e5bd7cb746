"""Compression of a trained run: the loss it costs within stated bounds, the bytes it saves, the
2:4 pattern and the sparse format exactly, a study table and figure, and bad input."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from lmlab.cli import main
from lmlab.compress.measure import serialized_bytes, sparse_state, sparsity_of
from lmlab.compress.methods import prune, quantize_int8, two_four_mask
from lmlab.io import read_table
from lmlab.models.gpt import GPT, GPTConfig

# The stated bounds (README "Compression"), on the toy run (a 25k model at loss ~0.25 nats).
MAX_INCREASE = {"int8": 0.02, "prune unstructured 0.5": 0.1, "prune 2:4 0.5": 0.3}


def small_gpt() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=64, seq_len=16, n_layer=2, d_model=32, n_head=2))


def test_two_four_mask_keeps_the_two_largest_of_every_four_inputs():
    w = torch.tensor([[0.1, -0.9, 0.5, 0.2, 3.0, 2.0, -1.0, 0.0]])
    assert two_four_mask(w).tolist() == [[0, 1, 1, 0, 1, 1, 0, 0]]
    model = prune(small_gpt(), 0.5, "2:4")
    for layer in (model.blocks[0].attn.qkv, model.blocks[1].mlp.proj):
        groups = (layer.weight != 0).reshape(layer.weight.shape[0], -1, 4).sum(-1)
        assert (groups <= 2).all()


def test_pruning_touches_only_block_weights_and_the_sparse_format_restores_them():
    original = small_gpt()
    model = prune(original, 0.7)
    assert sparsity_of(model) == pytest.approx(0.7, abs=0.01)
    assert torch.equal(model.tok_emb.weight, original.tok_emb.weight)  # the embedding (and tied head) stays
    state = sparse_state(model)
    buf = io.BytesIO()
    torch.save(state, buf)
    loaded = torch.load(io.BytesIO(buf.getvalue()), weights_only=True)
    packed = loaded["blocks.0.mlp.up.weight"]
    shape = tuple(packed["shape"].tolist())
    mask = np.unpackbits(packed["bitmask"].numpy(), count=int(np.prod(shape))).astype(bool)
    restored = torch.zeros(int(np.prod(shape)))
    restored[torch.from_numpy(mask)] = packed["values"]
    assert torch.equal(restored.reshape(shape), model.blocks[0].mlp.up.weight.detach())
    assert serialized_bytes(state) < serialized_bytes(original.state_dict())


def test_int8_quantises_the_block_linears_and_keeps_the_embedding():
    q = quantize_int8(small_gpt())
    for layer in (q.blocks[0].attn.qkv, q.blocks[1].mlp.proj):
        assert isinstance(layer, torch.ao.nn.quantized.dynamic.Linear) and layer.weight().dtype == torch.qint8
    assert isinstance(q.lm_head, torch.nn.Linear) and q.lm_head.weight is q.tok_emb.weight
    assert q(torch.zeros(1, 8, dtype=torch.long))[0].shape == (1, 8, 64)


@pytest.mark.slow
def test_compressed_toy_model_stays_within_the_stated_loss_increase(trained_toy_run, capsys, tmp_path):
    assert main(["compress", str(trained_toy_run), "--method", "int8,prune", "--sparsity", "0.3,0.5,0.9",
                 "-o", str(tmp_path / "compress.csv")]) == 0
    capsys.readouterr()
    assert main(["compress", str(trained_toy_run), "--method", "prune", "--pattern", "2:4", "--json"]) == 0
    two_four = json.loads(capsys.readouterr().out)
    table = read_table(tmp_path / "compress.csv")
    rows = {r["level"]: r for r in [*table.to_dict("records"), two_four]}
    for level, bound in MAX_INCREASE.items():
        assert rows[level]["loss_increase"] < bound, level
        assert rows[level]["bytes_after"] < rows[level]["bytes_before"], level
    assert rows["int8"]["size_ratio"] < 0.7
    increase = [rows[f"prune unstructured {s}"]["loss_increase"] for s in (0.3, 0.5, 0.9)]
    assert increase == sorted(increase) and increase[2] > 1  # 90% of the weights gone: the model breaks
    assert rows["prune 2:4 0.5"]["sparsity_measured"] == 0.5
    assert (tmp_path / "compress.png").read_bytes()[:4] == b"\x89PNG"
    assert set(table["run_id"]) == {trained_toy_run.name} and len(table) == 4


@pytest.mark.parametrize("args, message", [
    (["--method", "prune", "--sparsity", "1.5"], "--sparsity=1.5: expected a fraction of weights to remove in (0, 1)"),
    (["--method", "prune", "--sparsity", "0"], "--sparsity=0: expected a fraction"),
    (["--method", "prune", "--sparsity", "half"], "--sparsity='half': expected a number in (0, 1)"),
    (["--method", "prune", "--pattern", "2:4", "--sparsity", "0.3"], "the 2:4 pattern removes exactly 0.5"),
    (["--method", "int4"], "--method='int4': expected one of int8, prune"),
    (["--method", "prune", "--pattern", "4:8"], "--pattern='4:8': expected one of unstructured, 2:4"),
])
def test_bad_input_is_one_line_naming_it(args, message, tmp_path, capsys):
    assert main(["compress", str(tmp_path / "no-such-run"), *args]) == 2  # checked before any run is opened
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
