"""`lmlab mup coord-check`: the coordinate check of muP against the standard parametrisation, as a
figure (coord_check.png), the numbers (coord_check.json) and a table of each layer's drift."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lmlab.cli_args import positive, positive_count


def widths(text: str) -> tuple[int, ...]:
    """A comma-separated list of at least two increasing widths (64,128,256)."""
    values = tuple(positive_count(part) for part in text.split(","))
    if len(values) < 2 or list(values) != sorted(set(values)):
        raise argparse.ArgumentTypeError(f"{text!r}: expected two or more increasing widths, e.g. 64,128,256")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--widths", type=widths, default=(64, 128, 256, 512), help="d_model values (default 64,128,256,512)")
    parser.add_argument("--base-width", type=positive_count, default=None, help="muP's base width (default: the first width)")
    parser.add_argument("--n-layer", type=positive_count, default=2)
    parser.add_argument("--n-head", type=positive_count, default=4, help="fixed, so wider models have wider heads")
    parser.add_argument("--steps", type=positive_count, default=4, help="Adam steps (default 4)")
    parser.add_argument("--lr", type=positive, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--out", type=Path, default=Path("coord_check"), help="directory for the figure and JSON")
    parser.add_argument("--json", action="store_true", help="print the drifts as JSON")


def run(args: argparse.Namespace) -> int:
    from lmlab.analysis.plots import png_bytes
    from lmlab.errors import ConfigError
    from lmlab.io import write_atomic, write_json
    from lmlab.tune.coord_check import CoordCheckSpec, coord_check, figure

    bad = [w for w in args.widths if w % args.n_head]
    if bad:
        raise ConfigError(f"--widths {','.join(map(str, bad))}: each width must be divisible by --n-head={args.n_head}")
    spec = CoordCheckSpec(widths=args.widths, base_width=args.base_width or args.widths[0], n_layer=args.n_layer,
                          n_head=args.n_head, steps=args.steps, lr=args.lr, seed=args.seed)
    result = coord_check(spec)
    write_json(args.out / "coord_check.json", result)
    write_atomic(args.out / "coord_check.png", png_bytes(figure(result)))
    if args.json:
        print(json.dumps(result["drift"], indent=2))
        return 0
    layers = list(result["drift"]["sp"])
    print(f"drift of mean |activation| with width (slope in log-log after step {spec.steps}; 0 is flat)")
    print(f"{'layer':<10}" + "".join(f"{p:>8}" for p in result["drift"]))
    for layer in layers:
        print(f"{layer:<10}" + "".join(f"{result['drift'][p][layer]:>8.2f}" for p in result["drift"]))
    print(f"figure: {args.out / 'coord_check.png'}")
    return 0
