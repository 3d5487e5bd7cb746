"""`lmlab compress RUN_DIR... --method int8|prune [--sparsity S] [--json]`: compress a run's model
after training and measure what it costs (validation loss before and after) and what it saves
(bytes on disk, CPU inference tokens/s). See lmlab.compress.methods for what each method does.

Several runs, methods or sparsities make a study: one row per (run, level); `-o FILE.parquet|.csv`
writes the table and FILE.png, the loss increase against model size at each level, with a
log-linear trend per level (do larger models compress better?).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lmlab.errors import ConfigError

METHODS = ("int8", "prune")
TABLE_SUFFIXES = (".parquet", ".csv")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories, or folders holding them")
    parser.add_argument("--method", required=True, help="int8 or prune, or both comma-separated (int8,prune)")
    parser.add_argument("--sparsity", default="0.5",
                        help="prune: the fraction of block weights removed, in (0, 1); comma-separated for several (default 0.5)")
    parser.add_argument("--pattern", default="unstructured", help="prune: unstructured or 2:4 (semi-structured, sparsity 0.5)")
    parser.add_argument("-o", "--output", help="FILE.json: the results; FILE.parquet or FILE.csv: the table + FILE.png")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def levels(args) -> list[dict]:
    """The compression levels asked for: int8, and prune at each sparsity."""
    from lmlab.compress.methods import check_sparsity

    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    for m in methods:
        if m not in METHODS:
            raise ConfigError(f"--method={m!r}: expected one of {', '.join(METHODS)}")
    out = [{"method": "int8", "pattern": None, "sparsity": None}] if "int8" in methods else []
    if "prune" in methods:
        for text in args.sparsity.split(","):
            try:
                s = float(text)
            except ValueError:
                raise ConfigError(f"--sparsity={text!r}: expected a number in (0, 1)") from None
            check_sparsity(s, args.pattern)
            out.append({"method": "prune", "pattern": args.pattern, "sparsity": s})
    if args.output and Path(args.output).suffix not in (".json", *TABLE_SUFFIXES):
        raise ConfigError(f"-o {args.output}: expected a .json, .parquet or .csv file")
    return out


def level_name(level: dict) -> str:
    return "int8" if level["method"] == "int8" else f"prune {level['pattern']} {level['sparsity']:g}"


def validation_batches(cfg: dict):
    """The run's held-out windows, batched as in training."""
    from lmlab.data.datamodule import TokenDataModule

    t = cfg["trainer"]
    data = TokenDataModule(cfg["data"]["dir"], cfg["model"]["seq_len"], t["micro_batch_size"], cfg["seed"],
                           t["val_tokens"], 1)
    data.setup()
    return data.val_batches(0, 1, t["micro_batch_size"])


def compress_run(run_dir: Path, todo: list[dict], bar) -> list[dict]:
    from lmlab.audit.trend import run_scale
    from lmlab.compress import measure
    from lmlab.compress.methods import prune, quantize_int8
    from lmlab.runs.load import load_model

    model, _, cfg = load_model(run_dir)
    batches = validation_batches(cfg)
    before = {"loss_before": measure.validation_loss(model, batches),
              "bytes_before": measure.serialized_bytes(model.state_dict()),
              "tokens_per_s_before": measure.tokens_per_second(model, batches)}
    rows = []
    for level in todo:
        if level["method"] == "int8":
            small = quantize_int8(model)
            size, fmt, measured = measure.serialized_bytes(small.state_dict()), "torch.save of the quantised state dict", None
        else:
            small = prune(model, level["sparsity"], level["pattern"])
            size, fmt = measure.serialized_bytes(measure.sparse_state(small)), measure.SPARSE_FORMAT
            measured = measure.sparsity_of(small)
        after = measure.validation_loss(small, batches)
        rows.append({**run_scale(run_dir), "level": level_name(level), **level, "sparsity_measured": measured,
                     **before, "loss_after": after, "loss_increase": after - before["loss_before"],
                     "bytes_after": size, "size_ratio": size / before["bytes_before"], "format": fmt,
                     "tokens_per_s_after": measure.tokens_per_second(small, batches)})
        bar.update()
    return rows


def run(args) -> int:
    from lmlab.data.progress import Progress
    from lmlab.io import dumps, write_json
    from lmlab.runs.collect import find_run_dirs

    todo = levels(args)
    run_dirs = find_run_dirs(args.runs)
    rows = []
    with Progress("compress", len(run_dirs) * len(todo), unit="model") as bar:
        for run_dir in run_dirs:
            rows += compress_run(run_dir, todo, bar)
    if args.output and Path(args.output).suffix == ".json":
        write_json(args.output, rows if len(rows) > 1 else rows[0])
    elif args.output:
        write_study(rows, Path(args.output))
    if args.json:
        print(dumps(rows if len(rows) > 1 else rows[0], indent=2))
        return 0
    print_table(rows)
    return 0


def print_table(rows: list[dict]) -> None:
    for r in rows:
        print(f"{r['run_id']} (N={r['n_params']:,}) {r['level']}: loss {r['loss_before']:.4f} -> {r['loss_after']:.4f} "
              f"({r['loss_increase']:+.4f}), {r['bytes_before']:,} -> {r['bytes_after']:,} bytes "
              f"(x{r['size_ratio']:.3f}), {r['tokens_per_s_before']:,.0f} -> {r['tokens_per_s_after']:,.0f} tokens/s on CPU")
    formats = {r["format"] for r in rows}
    print("bytes on disk: " + "; ".join(sorted(formats)))


def write_study(rows: list[dict], path: Path) -> None:
    from lmlab.compress.study import compression_figure, compression_table
    from lmlab.io import write_table

    df = compression_table(rows)
    write_table(df, path)
    compression_figure(df, path.with_suffix(".png"))
