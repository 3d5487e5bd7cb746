"""report.md of a study and the summary printed at its end: the runs (and what is missing), the law,
the held-out prediction against the truth, the plan, and the figures."""

from __future__ import annotations

from pathlib import Path

from lmlab.study.runner import RunState, budget_label, duration


def heldout_rows(fit_doc: dict | None, states: list[RunState]) -> list[dict]:
    """The held-out runs of the fit: size, budget, predicted [lo, hi], actual and error, largest compute first."""
    if not fit_doc or "holdout" not in fit_doc:
        return []
    runs = {s.run.name: s.run for s in states}
    several_seeds = len({s.run.seed for s in states}) > 1
    rows = []
    for p in fit_doc["holdout"]["points"]:
        run = runs.get(p["label"])
        budget = (budget_label(run) + (f" seed {run.seed}" if several_seeds else "")) if run else ""
        rows.append({"size": run.size if run else p["label"], "budget": budget,
                     "compute": run.compute if run else 0.0, "predicted": p["predicted"], "lo": p["lo"],
                     "hi": p["hi"], "actual": p["actual"], "error": p["rel_error"],
                     "inside": p["lo"] <= p["actual"] <= p["hi"]})
    return sorted(rows, key=lambda r: -r["compute"])


def heldout_line(row: dict) -> str:
    return (f"held-out {row['size']}: predicted {row['predicted']:.4f} [{row['lo']:.4f}, {row['hi']:.4f}], "
            f"actual {row['actual']:.4f}, error {100 * row['error']:+.2f}%")


def heldout_figure(rows: list[dict]):
    """Each held-out run's prediction with its interval, and the loss it reached."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.add_subplot()
    for i, r in enumerate(rows):
        ax.errorbar([i], [r["predicted"]], yerr=[[r["predicted"] - r["lo"]], [r["hi"] - r["predicted"]]], fmt="o",
                    color="navy", capsize=4, label="predicted (interval)" if i == 0 else None)
        ax.scatter([i], [r["actual"]], marker="D", color="crimson", zorder=3, label="actual" if i == 0 else None)
    ax.set_xticks(range(len(rows)), [f"{r['size']}\n{r['budget']}" for r in rows])
    ax.set(ylabel="final validation loss (nats/token)", title="held-out runs: prediction against the truth")
    ax.legend(fontsize=8)
    return fig


def counts(states: list[RunState]) -> dict:
    out = {"planned": len(states), "completed": 0, "failed": 0, "unfinished": 0}
    for s in states:
        key = "completed" if s.state == "completed" else "failed" if s.state == "failed" else "unfinished"
        out[key] += 1
    return out


def summary_lines(name: str, out_dir: Path, states: list[RunState], fit_doc: dict | None, plan: dict | None,
                  problem: str | None, files: list[str]) -> list[str]:
    c = counts(states)
    lines = [f"study {name}: {c['completed']} of {c['planned']} runs completed"
             + (f", {c['failed']} failed" if c["failed"] else "") + (f", {c['unfinished']} not finished" if c["unfinished"] else "")]
    lines += [f"  not completed: {s.run.name} ({s.state}{': ' + s.reason if s.reason else ''})"
              for s in states if s.state != "completed"]
    if fit_doc:
        params = ", ".join(f"{k} = {v:.4g}" for k, v in fit_doc["params"].items())
        on = f" on N = {fit_doc['columns']['N']}" if "N" in fit_doc["columns"] else ""
        lines.append(f"law {fit_doc['law']}{on}: {params} "
                     f"({fit_doc['points']['n_points']} runs fitted)")
        lines += [f"  warning: {w}" for w in fit_doc.get("warnings", [])]
    rows = heldout_rows(fit_doc, states)
    if rows:
        lines.append(heldout_line(rows[0]))
        lines += [f"  also held out, {r['size']} {r['budget']}: predicted {r['predicted']:.4f} [{r['lo']:.4f}, "
                  f"{r['hi']:.4f}], actual {r['actual']:.4f}, error {100 * r['error']:+.2f}%" for r in rows[1:]]
    if plan:
        loss = f", loss {plan['loss']:.4f} [{plan['interval'][0]:.4f}, {plan['interval'][1]:.4f}]" if plan.get("loss") else ""
        lines.append(f"plan at C = {plan['flops']:.3g} FLOPs: N_opt = {plan['N_opt']:.3g}, D_opt = {plan['D_opt']:.3g}"
                     f"{loss}; nearest size {plan['size']} -> {out_dir / 'planned.yaml'}")
    if problem:
        lines.append(problem if problem.startswith("no plan") else f"missing: {problem}")
    lines.append(f"written to {out_dir}: {', '.join(files)}")
    return lines


def report_markdown(name: str, ladder: dict, states: list[RunState], fit_doc: dict | None, plan: dict | None,
                    problem: str | None, figures: list[tuple[str, str]], summary: list[str]) -> str:
    """report.md: the summary, the runs, the held-out table, the plan and the figures (relative paths)."""
    lines = [f"# Study `{name}` (ladder group `{ladder['group']}`)", "", ladder.get("description") or "", "",
             "## Summary", "", "```", *summary, "```", "", "## Runs", "",
             "| run | size | budget | N non-emb | tokens | status | val loss | wall |", "|---|---|---|---|---|---|---|---|"]
    for s in states:
        r = s.run
        loss = f"{s.loss:.4f}" if s.loss is not None else "-"
        lines.append(f"| {r.name} | {r.size} | {budget_label(r)} | {r.n_params_nonembedding:,} | {r.tokens:,} | "
                     f"{s.state} | {loss} | {duration(s.wall_s)} |")
    rows = heldout_rows(fit_doc, states)
    if rows:
        lines += ["", "## Held-out prediction", "",
                  f"Fitted without the largest size; interval: {fit_doc['holdout']['summary']['interval']}, "
                  f"level {fit_doc['holdout']['summary']['level']:.0%}.", "",
                  "| size | budget | predicted | interval | actual | error | inside |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['size']} | {r['budget']} | {r['predicted']:.4f} | [{r['lo']:.4f}, {r['hi']:.4f}] | "
                  f"{r['actual']:.4f} | {100 * r['error']:+.2f}% | {'yes' if r['inside'] else 'no'} |" for r in rows]
    if fit_doc and fit_doc.get("warnings"):
        lines += ["", "## Fit warnings", "", *(f"- {w}" for w in fit_doc["warnings"])]
    if plan:
        lines += ["", "## Plan", "", f"At C = {plan['flops']:.3g} FLOPs: N_opt = {plan['N_opt']:.4g}, D_opt = "
                  f"{plan['D_opt']:.4g}; nearest registered size {plan['size']} on {plan['tokens']:,} tokens "
                  f"({plan['steps']:,} steps); its prediction is on record in planned.yaml. To train it: copy planned.yaml "
                  f"to conf/experiment/ and run `lmlab-train experiment=planned`.",
                  *(f"- warning: {w}" for w in plan.get("warnings", []))]
    if problem:
        lines += ["", "## Missing", "", problem]
    if figures:
        lines += ["", "## Figures", ""]
        lines += [f"### {title}\n\n![{title}]({path})\n" for title, path in figures]
    return "\n".join(lines) + "\n"
