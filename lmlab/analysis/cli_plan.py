"""`lmlab plan FIT.json --flops C` (or `--gpu-hours H --flops-per-gpu-s F`): the compute-optimal run."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("fit", help="a fit file written by `lmlab fit -o`")
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument("--flops", type=float, help="the training compute budget in FLOPs")
    budget.add_argument("--gpu-hours", type=float, help="the budget in GPU-hours (needs --flops-per-gpu-s)")
    parser.add_argument("--flops-per-gpu-s", type=float,
                        help="measured training throughput per GPU in FLOP/s (e.g. a run's flops_per_s / devices)")
    parser.add_argument("--vocab-size", type=int, help="vocabulary size to count a registered size's parameters "
                        "(default: GPT-2's 50257)")
    parser.add_argument("--seq-len", type=int, help="context length of the planned run (default: the size's)")
    parser.add_argument("--num-nodes", type=int, default=4, help="nodes of the planned run (default 4)")
    parser.add_argument("--devices", type=int, default=8, help="GPUs per node (default 8)")
    parser.add_argument("--micro-batch-size", type=int, default=8, help="sequences per GPU per pass (default 8)")
    parser.add_argument("--global-batch-size", type=int,
                        help="sequences per step (default: DeepSeek LLM's B_opt(C) = 0.292 C^0.3271 tokens)")
    parser.add_argument("--lr", type=float, help="peak learning rate (default: DeepSeek LLM's 0.3118 C^-0.125)")
    parser.add_argument("-o", "--output", help="write the Hydra experiment config here (e.g. "
                        "conf/experiment/planned.yaml); printed when absent")


def run(args) -> int:
    import math

    from lmlab.analysis.allocation import PowerLaw
    from lmlab.analysis.fitjson import fit_from_doc, load_fit_doc
    from lmlab.analysis.plan import experiment_config, nearest_registered_size, plan_budget
    from lmlab.errors import FitError

    flops = _budget(args)
    doc = load_fit_doc(args.fit)
    n_column = doc.get("columns", {}).get("N", "n_params")
    if doc.get("method", 3) == 3:
        fit = fit_from_doc(doc)
        result = plan_budget(fit, flops)
        n_opt, d_opt, intervals = result.n_opt, result.d_opt, result.intervals
    else:  # approaches 1 and 2 give the allocation only
        fit = None
        alloc = doc["allocation"]
        n_opt = PowerLaw(**alloc["N_opt"])(flops).item()
        d_opt, intervals = PowerLaw(**alloc["D_opt"])(flops).item(), {}
    from lmlab.models.family import DEFAULT_VOCAB_SIZE
    vocab = args.vocab_size or DEFAULT_VOCAB_SIZE
    size, size_n = nearest_registered_size(n_opt, n_column, vocab, args.seq_len)
    seq_len = args.seq_len or size.seq_len
    tokens = flops / (6.0 * size_n)
    print(f"budget C = {flops:.4g} FLOPs ({doc['law']}, method {doc.get('method', 3)}; N is {n_column!r})")
    _line("N_opt", n_opt, intervals.get("N_opt"))
    _line("D_opt", d_opt, intervals.get("D_opt"))
    lines = [f"lmlab plan {args.fit}: C = {flops:.4g} FLOPs, N_opt = {n_opt:.4g}, D_opt = {d_opt:.4g}"]
    if fit is not None:
        _line("loss", result.loss, intervals.get("loss"))
        from lmlab.analysis.fit import predict_interval
        at_size = fit.law.predict_theta(fit.theta, _inputs(fit, size_n, tokens, flops))[0, 0]
        band = ""
        if fit.bootstrap is not None:
            _, lo, hi = predict_interval(fit, **_inputs(fit, size_n, tokens, flops))
            band = f" [{lo[0]:.4g}, {hi[0]:.4g}]"
        lines.append(f"predicted loss at N_opt: {result.loss:.4f}; at {size.name}: {at_size:.4f}{band}")
    else:
        print("  loss: not predicted (approaches 1 and 2 fit no loss law; use --method 3)")
    print(f"nearest registered size: {size.name} (N = {size_n:,}), trained on {tokens:.4g} tokens "
          f"({tokens / size_n:.1f} tokens per parameter)")
    if not 0.5 <= size_n / n_opt <= 2.0:
        print(f"warning: {size.name} is {size_n / n_opt:.3g} x N_opt; register a size near {n_opt:.3g} "
              f"parameters for a compute-optimal run")
    if not math.isfinite(tokens) or tokens < 1:
        raise FitError(f"the budget gives {tokens!r} tokens for size {size.name}; expected at least 1")
    text = experiment_config(size=size.name, seq_len=seq_len, tokens=int(round(tokens)), flops=flops,
                             global_batch_size=args.global_batch_size, lr=args.lr, num_nodes=args.num_nodes,
                             devices=args.devices, micro_batch_size=args.micro_batch_size, header="\n".join(lines))
    if args.output:
        from pathlib import Path

        from lmlab.runs.record import write_atomic
        write_atomic(Path(args.output), text)
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0


def _budget(args) -> float:
    from lmlab.errors import ConfigError
    if args.flops is not None:
        flops = args.flops
    else:
        if args.flops_per_gpu_s is None:
            raise ConfigError("--gpu-hours needs --flops-per-gpu-s (the measured training FLOP/s per GPU)")
        flops = args.gpu_hours * 3600.0 * args.flops_per_gpu_s
    if not flops > 0:
        raise ConfigError(f"compute budget {flops!r} FLOPs; expected a positive number")
    return flops


def _inputs(fit, n, d, flops):
    import numpy as np
    values = {"N": n, "D": d, "C": flops, "M": d / n}
    return {k: np.array([values[k]], dtype=float) for k in fit.law.inputs}


def _line(name, value, interval):
    band = f"  [{interval[0]:.4g}, {interval[1]:.4g}]" if interval else ""
    print(f"  {name} = {value:.4g}{band}")
