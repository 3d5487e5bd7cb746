"""`lmlab sizes`: the registry of model sizes with parameter counts and training FLOPs per token."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lmlab.cli_args import positive_count

TABLE_COLUMNS = (  # (JSON key, table header)
    ("name", "name"),
    ("n_layer", "layers"),
    ("d_model", "d_model"),
    ("n_head", "heads"),
    ("seq_len", "seq_len"),
    ("n_params", "N total"),
    ("n_params_nonembedding", "N non-embedding"),
    ("flops_per_token_6n", "FLOPs/token 6N"),
    ("flops_per_token_exact", "FLOPs/token exact"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    vocab = parser.add_mutually_exclusive_group()
    vocab.add_argument("--vocab-size", type=positive_count, default=None,
                       help="vocabulary size for the counts (default: 50257, GPT-2's, as in the papers)")
    vocab.add_argument("--data", type=Path, metavar="DIR", help="count at the vocabulary of a prepared data directory")
    parser.add_argument("--seq-len", type=positive_count, default=None,
                        help="context length for the counts (default: each size's own, 1024 for all today)")
    parser.add_argument("--norm", choices=("layernorm", "rmsnorm"), default="layernorm")
    parser.add_argument("--mlp", choices=("gelu", "swiglu"), default="gelu")
    parser.add_argument("--pos", choices=("learned", "rope"), default="learned")
    parser.add_argument("--tie-embeddings", action=argparse.BooleanOptionalAction, default=True,
                        help="share the token embedding with the LM head (default: tied)")
    parser.add_argument("--bias", action=argparse.BooleanOptionalAction, default=None,
                        help="biases in Linear and LayerNorm (default: each size's own; only gpt2-small has them)")


def size_rows(args: argparse.Namespace) -> list[dict]:
    """One dict per registry size, smallest first, with the JSON keys of TABLE_COLUMNS."""
    from lmlab.models.family import SIZES, count_params, flops_per_token_6n, flops_per_token_exact

    arch = {"norm": args.norm, "mlp": args.mlp, "pos": args.pos, "tie_embeddings": args.tie_embeddings}
    if args.bias is not None:
        arch["bias"] = args.bias
    rows = []
    for size in SIZES:
        cfg = size.config(args.vocab_size, args.seq_len, **arch)
        rows.append({"name": size.name, "vocab_size": args.vocab_size, "n_layer": cfg.n_layer, "d_model": cfg.d_model, "n_head": cfg.n_head,
                     "seq_len": cfg.seq_len, **count_params(cfg),
                     "flops_per_token_6n": flops_per_token_6n(cfg), "flops_per_token_exact": flops_per_token_exact(cfg)})
    return rows


def format_table(rows: list[dict]) -> str:
    """Right-aligned columns (the name left-aligned), integers with thousands separators."""
    cells = [[header for _, header in TABLE_COLUMNS]]
    cells += [[row[key] if key == "name" else f"{row[key]:,}" for key, _ in TABLE_COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(TABLE_COLUMNS))]
    lines = []
    for line in cells:
        first = line[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(line[1:], widths[1:]))
        lines.append("  ".join((first, *rest)))
    return "\n".join(lines)


def vocab_size(args: argparse.Namespace) -> tuple[int, str]:
    """The vocabulary to count at, and where it came from (said above the table)."""
    from lmlab.models.family import DEFAULT_VOCAB_SIZE

    if args.data is not None:
        from lmlab.data.shards import read_manifest

        return int(read_manifest(args.data)["vocab_size"]), f"the data in {args.data}"
    if args.vocab_size is not None:
        return args.vocab_size, "--vocab-size"
    return DEFAULT_VOCAB_SIZE, "GPT-2's, no shipped data set has it: --data DIR or --vocab-size V for yours"


def run(args: argparse.Namespace) -> int:
    args.vocab_size, source = vocab_size(args)
    rows = size_rows(args)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"counts at vocab_size={args.vocab_size:,} ({source})")
        print(format_table(rows))
    return 0
