"""muP for the GPT: the identity at the base width, the per-group learning rates, and the coordinate
check (activation sizes flat across widths under muP, drifting under the standard parametrisation)."""

from __future__ import annotations

import json

import pytest
import torch

from lmlab.models.gpt import GPT, GPTConfig
from tests.conftest import run_cli

SHAPE = dict(vocab_size=97, seq_len=16, n_layer=2, n_head=4)


def model(d_model: int, base: int | None) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(**SHAPE, d_model=d_model, mup_base_width=base))


def test_mup_at_its_base_width_is_the_standard_model():
    idx = torch.randint(0, 97, (2, 16), generator=torch.Generator().manual_seed(1))
    sp, mup = model(64, None), model(64, 64)
    assert torch.equal(sp(idx)[0], mup(idx)[0])
    assert [g["lr"] for g in mup.param_groups(0.1, 1e-3)] == [1e-3] * 3


def test_mup_scales_hidden_init_and_learning_rate_by_the_width_multiplier():
    wide = model(256, 64)  # m = 4
    groups = wide.param_groups(0.1, 1e-3)
    embedding, hidden, vectors = groups
    assert [g["lr"] for g in groups] == pytest.approx([1e-3, 2.5e-4, 1e-3])
    assert {id(p) for p in embedding["params"]} == {id(wide.tok_emb.weight), id(wide.pos_emb.weight)}
    assert vectors["weight_decay"] == 0.0 and all(p.dim() == 1 for p in vectors["params"])
    assert len(hidden["params"]) == 2 * 4  # qkv, proj, up, proj per block
    assert wide.blocks[0].mlp.up.weight.std().item() == pytest.approx(0.02 / 2, rel=0.05)
    assert wide.blocks[0].attn.scale == pytest.approx((64 / 4) ** 0.5 / 64)  # sqrt(base head size) / head size
    sp_wide = model(256, None)
    assert sp_wide.blocks[0].mlp.up.weight.std().item() == pytest.approx(0.02, rel=0.05)


def test_coord_check_is_flat_under_mup_and_drifts_under_the_standard_parametrisation(tmp_path):
    proc = run_cli(["-m", "lmlab.cli", "mup", "coord-check", "--widths", "32,64,128,256", "--steps", "3",
                    "-o", str(tmp_path), "--json"], env={"OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    drift = json.loads(proc.stdout)
    assert drift == json.loads((tmp_path / "coord_check.json").read_text())["drift"]
    hidden = [layer for layer in drift["sp"] if layer.startswith(("attn", "mlp"))]
    assert len(hidden) == 4
    # muP: every hidden layer's activation size within a factor 2^0.2 per doubling of the width...
    assert all(abs(drift["mup"][layer]) < 0.2 for layer in [*hidden, "embedding"]), drift["mup"]
    # ...while under SP each grows at least in proportion to the width, and the logits too.
    assert all(drift["sp"][layer] > 1.0 for layer in hidden), drift["sp"]
    assert drift["sp"]["logits"] > 0.4 and drift["sp"]["logits"] - drift["mup"]["logits"] > 0.6
    assert (tmp_path / "coord_check.png").stat().st_size > 10_000


def test_coord_check_refuses_widths_that_are_not_increasing(tmp_path):
    proc = run_cli(["-m", "lmlab.cli", "mup", "coord-check", "--widths", "64,32", "-o", str(tmp_path)], timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("lmlab mup coord-check: error: argument --widths")
