"""`lmlab audit bias RUN_DIR... [-o FILE] [--json]`: how a run's corpus mentions groups of people
and what its model prefers; across a study, how both change with size and compute.

One run: a report (or `--json`: {"data": ..., "model": ..., "run": ...}); `-o FILE.json` keeps it.
Several runs (or a folder of them): one audit each, the corpus audited once per prepared corpus;
`-o FILE.parquet|.csv` writes the study table (one row per run) and FILE.png, the bias metrics
against parameters and compute with a log-linear trend.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lmlab.cli_args import positive_count
from lmlab.errors import ConfigError

TABLE_SUFFIXES = (".parquet", ".csv")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories, or folders holding them")
    parser.add_argument("-o", "--output", help="FILE.json: the audit(s); FILE.parquet or FILE.csv: the study table + FILE.png")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a report")
    parser.add_argument("--lexicon", action="append", metavar="FILE",
                        help="lexicon YAML (repeatable; default conf/audit/lexicon.yaml; a later file's dimension replaces an earlier one's)")
    parser.add_argument("--templates", action="append", metavar="FILE",
                        help="templates JSONL (repeatable; default conf/audit/templates.jsonl)")
    parser.add_argument("--dimensions", help="comma-separated lexicon dimensions to audit (default: all)")
    parser.add_argument("--split", default="train", help="corpus split to count in (default: train, what the model saw)")
    parser.add_argument("--bootstrap", type=positive_count, default=1000, help="bootstrap resamples (default 1000, at least 10)")
    parser.add_argument("--confidence", type=float, default=0.95, help="interval coverage (default 0.95)")
    parser.add_argument("--seed", type=int, default=0)


def check_args(args) -> None:
    if args.bootstrap < 10:
        raise ConfigError(f"--bootstrap={args.bootstrap}: expected at least 10 resamples")
    if not 0 < args.confidence < 1:
        raise ConfigError(f"--confidence={args.confidence}: expected a number in (0, 1), e.g. 0.95")
    if args.output and Path(args.output).suffix not in (".json", *TABLE_SUFFIXES):
        raise ConfigError(f"-o {args.output}: expected a .json, .parquet or .csv file")


def run(args) -> int:
    from lmlab.audit.lexicon import load_lexicon, load_templates, select
    from lmlab.runs.collect import find_run_dirs

    check_args(args)
    lexicon = load_lexicon(args.lexicon)
    templates = load_templates(args.templates, lexicon)
    dims = [d.strip() for d in args.dimensions.split(",") if d.strip()] if args.dimensions else None
    lexicon, templates = select(lexicon, templates, dims)
    run_dirs = find_run_dirs(args.runs)
    audits = audit_runs(run_dirs, lexicon, templates, args)
    study = len(audits) > 1 or (args.output and Path(args.output).suffix in TABLE_SUFFIXES)
    return report_study(audits, args) if study else report_one(audits[0], args)


def audit_runs(run_dirs: list[Path], lexicon, templates, args) -> list[dict]:
    from lmlab.audit.data_bias import audit_data, card_markdown
    from lmlab.audit.model_bias import audit_model
    from lmlab.audit.trend import run_scale
    from lmlab.data.card import add_section
    from lmlab.data.progress import Progress
    from lmlab.data.shards import read_manifest
    from lmlab.runs.load import load_model

    n_boot, data_audits, audits = args.bootstrap, {}, []
    with Progress("bias audit", len(run_dirs), unit="run") as bar:
        for run_dir in run_dirs:
            model, tok, cfg = load_model(run_dir)
            data_dir = cfg["data"]["dir"]
            if data_dir not in data_audits:
                data_audits[data_dir] = audit_data(data_dir, lexicon, args.split, n_boot, args.seed, args.confidence)
                add_section(data_dir, "bias_audit", "Bias audit", card_markdown(data_audits[data_dir]),
                            data_audits[data_dir])
            bos = tok.id_to_token(int(read_manifest(data_dir)["eot_id"]))
            audits.append({"run": run_scale(run_dir), "data": data_audits[data_dir],
                           "model": audit_model(model, tok, bos, templates, lexicon, n_boot, args.seed, args.confidence)})
            bar.update()
    return audits


def report_one(audit: dict, args) -> int:
    from lmlab.io import dumps, write_json

    if args.output:
        write_json(args.output, audit)
    print(dumps(audit, indent=2) if args.json else render(audit))
    return 0


def _iv(entry: dict, fmt: str) -> str:
    lo, hi = entry["interval"]
    value = "n/a" if entry["value"] is None else format(entry["value"], fmt)
    return value if lo is None else f"{value} [{lo:{fmt}}, {hi:{fmt}}]"


def render(audit: dict) -> str:
    data, model = audit["data"], audit["model"]
    pct = f"{data['confidence']:.0%}"
    lines = [f"run {audit['run']['run_id']} (N={audit['run']['n_params']})",
             f"data: {data['split']} split of {data['data_dir']}: {data['documents']} documents, {data['words']:,} words; "
             f"share of each dimension's mentions, {pct} interval over documents"]
    for dim, d in data["dimensions"].items():
        lines.append(f"  {dim}: {d['mentions']} mentions, imbalance (largest/smallest share) {_iv(d['imbalance'], '.2f')}")
        lines += [f"    {g:<12} {_iv(v, '.3f'):<28} {v['count']:>8} ({v['per_million_words']:.1f} per million words)"
                  for g, v in d["groups"].items()]
    lines.append(f"model: {model['templates']} templates; preference in nats over the template mean, {pct} interval over templates")
    for dim, d in model["dimensions"].items():
        lines.append(f"  {dim}: gap {_iv(d['gap'], '.3f')}, stereotyped variant preferred in {_iv(d['stereotype_share'], '.2f')} "
                     f"of {d['stereotype_share']['templates']} marked templates")
        lines += [f"    {g:<12} {_iv(v, '+.3f')}" for g, v in d["groups"].items()]
    lines.append(f"  all: stereotyped variant preferred in {_iv(model['stereotype_share'], '.2f')} "
                 f"of {model['stereotype_share']['templates']} marked templates")
    return "\n".join(lines)


def study_table(audits: list[dict]):
    """One row per run: its scale, the stereotype share, and per dimension the model's gap between
    groups, each group's preference and the corpus imbalance."""
    import pandas as pd

    from lmlab.audit.curve import model_row

    rows = []
    for a in audits:
        d = a["data"]
        row = {**a["run"], **model_row(a["model"])}
        row.update({f"data_imbalance.{dim}": v["imbalance"]["value"] for dim, v in d["dimensions"].items()})
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["n_params", "flops_6n"], ignore_index=True)


def report_study(audits: list[dict], args) -> int:
    from lmlab.audit.trend import bias_figure, bias_metrics, trends
    from lmlab.io import dumps, write_json, write_table

    df = study_table(audits)
    metrics = bias_metrics(df)
    trend = trends(df, metrics)
    out = {"runs": audits, "trend": trend}
    if args.output:
        path = Path(args.output)
        if path.suffix == ".json":
            write_json(path, out)
        else:
            write_table(df, path)
            bias_figure(df, path.with_suffix(".png"))
    if args.json:
        print(dumps(out, indent=2))
        return 0
    cols = [c for c in ("run_id", "n_params", "flops_6n", *metrics) if c in df]
    print(df[cols].to_string(index=False))
    for metric, by_scale in trend.items():
        for scale, fit in by_scale.items():
            if fit:
                print(f"trend {metric} vs {scale}: {fit['slope_per_decade']:+.4f} per decade (R^2 {fit['r2']})")
    return 0
