"""`lmlab plan FIT.json --flops C` (or `--gpu-hours H --flops-per-gpu-s F`): the compute-optimal run.

Sizes are counted at the vocabulary the fit's runs were counted at (fit.json `vocab_size`) unless
--vocab-size says otherwise. With --json the plan (numbers, intervals, warnings and the experiment
config's text) goes to stdout as one JSON document.

The experiment config carries the prediction for the planned run (`prediction:` loss, lo, hi, level,
law, the fit file and its sha256, the study: --study, else the table the fit was made from); the run
keeps it in plan.json, and `lmlab predictions` scores it once the run completes.
"""

from __future__ import annotations

import argparse

from lmlab import cli_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("fit", help="a fit file written by `lmlab fit -o`")
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument("--flops", type=cli_args.positive, help="the training compute budget in FLOPs")
    budget.add_argument("--gpu-hours", type=cli_args.positive, help="the budget in GPU-hours (needs --flops-per-gpu-s)")
    parser.add_argument("--flops-per-gpu-s", type=cli_args.positive,
                        help="measured training throughput per GPU in FLOP/s (e.g. a run's flops_per_s / devices)")
    parser.add_argument("--vocab-size", type=cli_args.positive_count, help="vocabulary size to count a registered "
                        "size's parameters (default: the fit's vocab_size; else GPT-2's 50257)")
    parser.add_argument("--seq-len", type=cli_args.positive_count, help="context length of the planned run "
                        "(default: the size's)")
    parser.add_argument("--nodes", type=cli_args.positive_count, default=4, help="nodes of the planned run (default 4)")
    parser.add_argument("--devices", type=cli_args.positive_count, default=8, help="GPUs per node (default 8)")
    parser.add_argument("--micro-batch-size", type=cli_args.positive_count, default=8,
                        help="sequences per GPU per pass (default 8; the memory plan may choose another that fits)")
    parser.add_argument("--gpu", help="the GPU model the run is sized for (default: the slurm_gpu cluster profile's "
                        "trainer.gpu); lmlab chooses DDP or FSDP, the micro-batch and activation checkpointing to fit it")
    parser.add_argument("--global-batch-size", type=cli_args.positive_count,
                        help="sequences per step (default: DeepSeek LLM's B_opt(C) = 0.292 C^0.3271 tokens)")
    parser.add_argument("--lr", type=cli_args.positive, help="peak learning rate (default: DeepSeek LLM's 0.3118 C^-0.125)")
    parser.add_argument("--level", type=cli_args.level, help="interval coverage (default: the fit's, else 0.95)")
    parser.add_argument("--group", help="for a fit made with --by: which group's law")
    parser.add_argument("--study", help="the study the fit came from, recorded with the prediction "
                        "(default: the table the fit was made from)")
    parser.add_argument("-o", "--output", help="write the Hydra experiment config here (e.g. "
                        "conf/experiment/planned.yaml); printed when absent")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")


def run(args) -> int:
    import contextlib
    import sys

    from lmlab.io import dumps

    flops = _budget(args)
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        plan, text = _plan(args, flops)
        if args.output:
            from lmlab.io import write_atomic
            write_atomic(args.output, text)
            print(f"wrote {args.output}")
        elif not args.json:
            print(text, end="")
    if args.json:
        print(dumps({**plan, "config": text}, indent=2))
    return 0


def _plan(args, flops):
    """(the plan as a dict, the experiment config's text); prints the human summary."""
    import functools
    import sys

    import numpy as np

    from lmlab.analysis.allocation import PowerLaw
    from lmlab.analysis.extrapolation import axis, beyond_evidence, honest_interval
    from lmlab.analysis.fitjson import fit_from_doc, load_fit_doc, select_group
    from lmlab.analysis.plan import experiment_config, inputs_at, plan_budget, planned_run, prediction_section
    from lmlab.launch.memory import plan_memory

    doc = select_group(load_fit_doc(args.fit), args.group, str(args.fit))
    n_column = doc.get("columns", {}).get("N", "n_params")
    vocab = _vocab(args, doc)
    warnings = []
    out = {"flops": flops, "compute": doc.get("compute"), "law": doc["law"], "method": doc.get("method", 3),
           "n_column": n_column, "vocab_size": vocab}
    if doc.get("method", 3) == 3:
        fit = fit_from_doc(doc)
        result = plan_budget(fit, flops, args.level)
        n_opt, d_opt = result.n_opt, result.d_opt
        out.update(N_opt=n_opt, D_opt=d_opt, loss=result.loss, interval=list(result.intervals["loss"]),
                   level=result.level, intervals=result.intervals, parameter_intervals=result.parameter_intervals)
        x = float(axis(fit.law, inputs_at(fit.law, flops, np.array([n_opt])))[0][0])
        reach = beyond_evidence(fit.extrapolation, x, "the plan")
        if reach:
            warnings.append(reach)
    else:  # approaches 1 and 2 give the allocation only
        fit = None
        alloc = doc["allocation"]
        n_opt, d_opt = PowerLaw(**alloc["N_opt"])(flops).item(), PowerLaw(**alloc["D_opt"])(flops).item()
        out.update(N_opt=n_opt, D_opt=d_opt, loss=None, interval=None)
    plan_run = functools.partial(planned_run, flops, n_opt, n_column, vocab, args.seq_len, lr=args.lr,
                                 global_batch_size=args.global_batch_size, nodes=args.nodes, devices=args.devices)
    run = plan_run(micro_batch_size=args.micro_batch_size)
    memory = plan_memory(run.spec.gpt, run.settings["trainer"], args.gpu)  # the setting that fits the GPU
    if memory["micro_batch"] != args.micro_batch_size:
        run = plan_run(micro_batch_size=memory["micro_batch"],
                       global_batch_size=run.settings["trainer"]["global_batch_size"])
    run.settings["trainer"].update(strategy=memory["strategy"], activation_checkpointing=memory["activation_checkpointing"])
    out["memory"] = {k: v for k, v in memory.items() if k not in ("lines", "overrides")}
    print(f"budget C = {flops:.4g} FLOPs ({doc['law']}, method {out['method']}; N is {n_column!r}, counted at "
          f"vocabulary {vocab})")
    level = out.get("level") or 0.95
    _line("N_opt", n_opt, out.get("intervals", {}).get("N_opt"), "parameter-only")
    _line("D_opt", d_opt, out.get("intervals", {}).get("D_opt"), "parameter-only")
    lines = [f"lmlab plan {args.fit}: C = {flops:.4g} FLOPs, N_opt = {n_opt:.4g}, D_opt = {d_opt:.4g}"]
    out.update(size=run.size.name, size_n=int(run.n), tokens=run.tokens, seq_len=run.seq_len,
               steps=run.spec.budget.steps, planned_compute=run.spec.compute, run_id=run.spec.run_id)
    if fit is not None:
        _line("loss", out["loss"], out["interval"], f"{level:.0%}, holds when extrapolating")
        at = {k: np.array([v], dtype=float) for k, v in
              {"N": run.n, "D": run.tokens, "C": flops, "M": run.tokens / run.n}.items() if k in fit.law.inputs}
        point, lo, hi = honest_interval(fit, level, **at)
        out.update(loss_at_size=float(point[0]), loss_at_size_interval=[float(lo[0]), float(hi[0])])
        # on record: the planned run's own prediction, scored when it completes (`lmlab predictions`)
        run.settings["prediction"] = prediction_section(
            point[0], (lo[0], hi[0]), level, doc["law"], args.fit,
            args.study or doc.get("rows", {}).get("table"))
        out["prediction"] = run.settings["prediction"]
        lines.append(f"predicted loss at N_opt: {out['loss']:.4f}; at {run.size.name}: {point[0]:.4f} "
                     f"[{lo[0]:.4g}, {hi[0]:.4g}]")
    else:
        print("  loss: not predicted (approaches 1 and 2 fit no loss law; use --method 3)")
    print(f"nearest registered size: {run.size.name} (N = {run.n:,}), trained on {run.tokens:.4g} tokens "
          f"({run.tokens / run.n:.1f} tokens per parameter) in {run.spec.budget.steps:,} steps, spending "
          f"{run.spec.compute:.4g} FLOPs ({run.spec.compute / flops:.2%} of the budget, in lmlab's unit)")
    print("\n".join(memory["lines"]))
    lines.append(memory["lines"][0])
    if not 0.5 <= run.n / n_opt <= 2.0:
        warnings.append(f"{run.size.name} is {run.n / n_opt:.3g} x N_opt; register a size near {n_opt:.3g} "
                        f"parameters for a compute-optimal run")
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    out["warnings"] = warnings
    text = experiment_config(run.settings, header="\n".join(lines))
    return out, text


def _vocab(args, doc) -> int:
    """The vocabulary to count sizes at: --vocab-size, else the fit's, else GPT-2's (said so)."""
    from lmlab.errors import FitError
    from lmlab.models.family import DEFAULT_VOCAB_SIZE

    if args.vocab_size:
        return args.vocab_size
    recorded = doc.get("vocab_size")
    if isinstance(recorded, list):
        raise FitError(f"the fit's runs were counted at several vocabularies ({', '.join(map(str, recorded))}); "
                       f"expected --vocab-size to say which one the planned run uses")
    if recorded is None:
        print(f"note: the fit records no vocab_size; counting sizes at GPT-2's {DEFAULT_VOCAB_SIZE} "
              f"(pass --vocab-size)")
        return DEFAULT_VOCAB_SIZE
    return int(recorded)


def _budget(args) -> float:
    from lmlab.errors import ConfigError
    if args.flops is not None:
        return args.flops
    if args.flops_per_gpu_s is None:
        raise ConfigError("--gpu-hours needs --flops-per-gpu-s (the measured training FLOP/s per GPU)")
    return args.gpu_hours * 3600.0 * args.flops_per_gpu_s


def _line(name, value, interval, what):
    band = f"  [{interval[0]:.4g}, {interval[1]:.4g}] ({what})" if interval else ""
    print(f"  {name} = {value:.4g}{band}")
