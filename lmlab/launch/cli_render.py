"""`lmlab launch render`: write (and check) the sbatch script of a multi-node run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lmlab.cli_args import count, positive_count
from lmlab.launch.render import OPTIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", help="training overrides (key=value), as for lmlab-train")
    parser.add_argument("--config", type=Path, help="a YAML file with any of the options below, plus "
                                                    "`setup` (list of shell lines) and `overrides` (list)")
    for key, (kind, _, help_text) in OPTIONS.items():
        number = count if key == "gpus_per_node" else positive_count  # 0 GPUs: CPU tasks
        parser.add_argument(f"--{key.replace('_', '-')}", dest=key, type=number if kind is int else kind, default=None,
                            help=help_text)
    parser.add_argument("--setup", action="append", default=[], help="a shell line run before srun (repeatable)")
    parser.add_argument("--out", type=Path, help="write the script here (default: standard output)")
    parser.add_argument("--check", action="store_true", help="ask SLURM: sbatch --test-only on the script")
    parser.add_argument("--json", action="store_true", help="print where the script went and SLURM's verdict as JSON")


def run(args: argparse.Namespace) -> int:
    import tempfile

    from lmlab.io import write_atomic
    from lmlab.launch.render import OPTIONS, load_options, render_script, sbatch_test_only

    cli = {k: getattr(args, k) for k in OPTIONS} | {"setup": args.setup, "overrides": args.overrides}
    opts = load_options(args.config, cli)
    script = render_script(opts)
    verdict = None
    if args.check:  # SLURM judges a temporary copy first: a refused script is never written
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "job.sbatch"
            path.write_text(script)
            verdict = sbatch_test_only(path, opts)
    if args.out is not None:
        write_atomic(args.out, script, mode=0o755)
        Path(opts["log_dir"]).mkdir(parents=True, exist_ok=True)  # SLURM does not create it
    if args.json:
        memory = {k: v for k, v in (opts["memory"] or {}).items() if k != "lines"} or None
        print(json.dumps({"script": str(args.out) if args.out else script, "check": verdict, "memory": memory}, indent=2))
        return 0
    if args.out is None:
        print(script, end="")
    else:
        print(f"wrote {args.out}")
    if verdict is not None:
        print(f"sbatch --test-only: {verdict}", file=sys.stderr if args.out is None else sys.stdout)
    return 0
