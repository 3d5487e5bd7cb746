"""`lmlab sizes`: the aligned table, the JSON list, flags, and a cheap import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lmlab.cli import main
from lmlab.models.family import SIZES, count_params, flops_per_token_6n, flops_per_token_exact

JSON_FIELDS = {"name", "vocab_size", "n_layer", "d_model", "n_head", "seq_len", "n_params", "n_params_nonembedding",
               "flops_per_token_6n", "flops_per_token_exact"}


def sizes_output(capsys, *flags: str) -> str:
    assert main(["sizes", *flags]) == 0
    return capsys.readouterr().out


def test_table_lists_every_size_in_order_with_aligned_columns(capsys):
    said, *lines = sizes_output(capsys).splitlines()
    assert said.startswith("counts at vocab_size=50,257 (GPT-2's")  # the table says what it counts at
    assert lines[0].split()[:4] == ["name", "layers", "d_model", "heads"]
    assert "FLOPs/token 6N" in lines[0] and "FLOPs/token exact" in lines[0]
    assert [line.split()[0] for line in lines[1:]] == [size.name for size in SIZES]
    assert len({len(line) for line in lines}) == 1  # right-aligned numbers end in the same column
    gpt2 = next(line for line in lines if line.startswith("gpt2-small"))
    for header, value in (("N total", "124,439,808"), ("N non-embedding", "85,056,000")):
        end = lines[0].index(header) + len(header)
        assert gpt2[end - len(value):end] == value

def test_json_has_the_counts_of_each_size_for_the_given_flags(capsys):
    flags = ("--vocab-size", "4096", "--seq-len", "256", "--mlp", "swiglu", "--pos", "rope", "--no-tie-embeddings")
    rows = json.loads(sizes_output(capsys, "--json", *flags))
    assert [row["name"] for row in rows] == [size.name for size in SIZES]
    nonembedding = [row["n_params_nonembedding"] for row in rows]
    assert nonembedding == sorted(nonembedding)
    for row, size in zip(rows, SIZES):
        assert set(row) == JSON_FIELDS
        cfg = size.config(4096, seq_len=256, mlp="swiglu", pos="rope", tie_embeddings=False)
        assert (row["n_layer"], row["d_model"], row["n_head"], row["seq_len"]) == (size.n_layer, size.d_model, size.n_head, 256)
        assert row["n_params"] == count_params(cfg)["n_params"]
        assert row["flops_per_token_6n"] == flops_per_token_6n(cfg)
        assert row["flops_per_token_exact"] == flops_per_token_exact(cfg)


def test_json_defaults_are_gpt2_vocab_and_each_sizes_own_bias(capsys):
    rows = {row["name"]: row for row in json.loads(sizes_output(capsys, "--json"))}
    assert rows["gpt2-small"]["n_params"] == 124_439_808
    assert rows["85m"]["n_params"] < rows["gpt2-small"]["n_params"]  # same shape, no biases
    no_bias = {row["name"]: row for row in json.loads(sizes_output(capsys, "--json", "--no-bias"))}
    assert no_bias["gpt2-small"]["n_params"] == rows["85m"]["n_params"]


@pytest.mark.parametrize("flags", [("--vocab-size", "0"), ("--seq-len", "ten"), ("--norm", "batchnorm")])
def test_bad_flags_exit_2_in_one_line_naming_the_flag(capsys, flags):
    assert main(["sizes", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lmlab sizes: error: ") and flags[0] in err and err.count("\n") == 1


def test_importing_the_command_does_not_import_torch():
    code = "import sys, lmlab.cli, lmlab.models.cli_sizes; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
