"""`make demo`: prepare the bundled corpus, train one small model on it, print and plot its result."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

FIELDS = [("model", "size"), ("n_params", "parameters (total)"), ("n_params_nonembedding", "parameters (non-embedding)"),
          ("tokens", "tokens"), ("flops_6n", "FLOPs (6N + attention)"), ("flops_exact", "FLOPs (Chinchilla exact)"),
          ("final_train_loss", "final train loss (nats/token)"), ("final_val_loss", "final validation loss (nats/token)"),
          ("wall_s", "wall time (s)")]


def curve_figure(metrics_path: Path):
    """Train and validation loss against tokens, from the run's metrics.jsonl."""
    from matplotlib.figure import Figure

    from lmlab.io import read_jsonl

    rows = read_jsonl(metrics_path)
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_subplot()
    for key, style in (("train_loss", "-"), ("val_loss", "o-")):
        points = [(r["tokens"], r[key]) for r in rows if key in r]
        ax.plot(*zip(*points), style, label=key.replace("_", " "), ms=4)
    ax.set(xscale="log", xlabel="tokens", ylabel="loss (nats/token)", title=metrics_path.parent.name)
    ax.legend()
    return fig


def main(argv: list[str] | None = None) -> int:
    from lmlab.analysis.plots import save_figure
    from lmlab.config import compose_train
    from lmlab.train.run import Run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    run = Run(compose_train(["experiment=sotu_small", *(argv if argv is not None else sys.argv[1:])]))
    result = run.execute()
    if result["status"] != "completed":
        print(f"demo: the run did not complete: {result['reason']}", file=sys.stderr)
        return 1
    width = max(len(label) for _, label in FIELDS)
    print(f"\nrun directory: {run.record.dir}")
    for key, label in FIELDS:
        value = result[key]
        shown = f"{value:,}" if isinstance(value, int) else f"{value:.4g}" if isinstance(value, float) else value
        print(f"  {label:<{width}}  {shown}")
    paths = save_figure(curve_figure(run.record.metrics_path), Path(run.record.dir), "loss_curve")
    print(f"  {'loss curve':<{width}}  {paths[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
