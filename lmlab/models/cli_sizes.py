"""`lmlab sizes`: the registry of model sizes with parameter counts and training FLOPs per token."""

from __future__ import annotations

import argparse
import json

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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.add_argument("--vocab-size", type=_positive_int, default=50257,
                        help="vocabulary size for the counts (default: 50257, GPT-2's)")
    parser.add_argument("--seq-len", type=_positive_int, default=None,
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
        rows.append({"name": size.name, "n_layer": cfg.n_layer, "d_model": cfg.d_model, "n_head": cfg.n_head,
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


def run(args: argparse.Namespace) -> int:
    rows = size_rows(args)
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0
