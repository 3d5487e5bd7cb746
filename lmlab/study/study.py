"""One study: the ladder's planned runs, where they live, and the steps from training to report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lmlab.errors import ConfigError, FitError
from lmlab.launch.ladder import PlannedRun

LADDER_PREFIXES = ("cluster", "hydra.", "+hydra.", "~hydra.")   # launcher settings: not part of any run's identity
CONCURRENT_CLUSTERS = ("slurm", "slurm_gpu")                   # a scheduler queues every size's sweep at once


def split_overrides(overrides: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(ladder keys, launcher settings, training overrides) of the command line's KEY=VALUE words."""
    from lmlab.launch.ladder import LADDER_KEYS

    ladder, launcher, train = [], [], []
    for item in overrides:
        key, sep, _ = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE (a ladder key, cluster=..., or a training key)")
        if key.lstrip("+~").startswith(LADDER_PREFIXES):
            launcher.append(item)
        elif key.split(".")[0] in LADDER_KEYS:
            ladder.append(item)
        else:
            train.append(item)
    return ladder, launcher, train


@dataclass
class Study:
    name: str
    ladder: dict
    runs: list[PlannedRun]
    run_root: Path          # <runs_dir>/<ladder group>: the runs' directories
    out_dir: Path
    launcher: list[str]
    options: object         # the command's arguments (law, n_col, bootstrap, level, plan_flops, no_train)
    trunks: list[PlannedRun] = field(default_factory=list)
    states: list = field(default_factory=list)

    @classmethod
    def prepare(cls, args) -> "Study":
        """The ladder loaded and every run resolved, before anything is launched or written."""
        from lmlab.launch.ladder import load_ladder, plan, size_config

        ladder_over, launcher, train_over = split_overrides(args.overrides)
        ladder = load_ladder(args.ladder, ladder_over)
        ladder["overrides"] = [*ladder["overrides"], *train_over]
        try:
            planned = plan(ladder)
        except ConfigError as err:
            raise ConfigError(f"ladder {args.ladder!r}: {err}") from None
        runs_dir = Path(size_config(ladder, ladder["sizes"][0])["paths"]["runs_dir"])
        # named after the ladder, not its group: ladders may share a group (and its runs), never a folder
        out_dir = Path(args.output) if args.output else Path("studies") / Path(args.ladder).stem
        if out_dir.exists() and not out_dir.is_dir():
            raise ConfigError(f"-o {str(out_dir)!r} is a file; expected a folder for the study")
        # a branched ladder's trunks are launched (their launch trains the branches) but the study counts budgets
        runs = [r for r in planned if r.role != "trunk"]
        trunks = [r for r in planned if r.role == "trunk"]
        return cls(Path(args.ladder).stem, ladder, runs, runs_dir / ladder["group"], out_dir, launcher, args, trunks)

    def run_dirs(self) -> dict[str, Path]:
        return {r.name: self.run_root / r.name for r in self.runs}

    def train(self, out) -> None:
        from lmlab.study.runner import launch, run_state

        if self.options.no_train:
            self.states = [run_state(r, self.run_root / r.name) for r in self.runs]
            return
        cluster = next((o.split("=", 1)[1] for o in self.launcher if o.startswith("cluster=")), "local")
        jobs = len(self.ladder["sizes"]) if cluster in CONCURRENT_CLUSTERS else self.options.jobs
        self.states = launch(self.ladder, self.runs, self.run_dirs(), self.launcher, self.out_dir / "logs", jobs, out,
                             self.trunks)

    def analyse(self) -> dict:
        """Collect, fit with the largest size held out, plan, and write the report; what it found."""
        from lmlab.study import analyse, report

        out = self.out_dir
        out.mkdir(parents=True, exist_ok=True)
        o = self.options
        fit_doc = plan = problem = None
        files = []
        collected = analyse.collect_study(self.run_root, [r.name for r in self.runs], out / "study.parquet")
        if collected is not None:
            files.append("study.parquet")
        try:
            fitted = analyse.check_fittable(collected[0] if collected else None, o.law, o.n_col, f"study {self.name}")
            bootstrap, note = analyse.bootstrap_size(o.bootstrap, fitted)
            fit_doc = analyse.fit_study(out / "study.parquet", out / "fit.json", out / "figures", out / "analysis.log",
                                        law=o.law, n_col=o.n_col, bootstrap=bootstrap, level=o.level)
            if note:
                fit_doc.setdefault("warnings", []).append(note)
            files.append("fit.json")
        except FitError as err:
            problem = str(err)
        if fit_doc:
            flops = o.plan_flops or analyse.DEFAULT_PLAN_MULTIPLE * max(r.compute for r in self.runs)
            try:
                plan = analyse.plan_study(out / "fit.json", flops, out / "planned.yaml", out / "analysis.log", out)
                files.append("planned.yaml")
            except FitError as err:
                problem = f"no plan: {err}"
        figures = self.figures(collected, fit_doc)
        files += ["report.md", "figures/"]
        summary = report.summary_lines(self.name, out, self.states, fit_doc, plan, problem, files)
        from lmlab.io import write_atomic
        write_atomic(out / "report.md", report.report_markdown(self.name, self.ladder, self.states, fit_doc, plan,
                                                                problem, figures, summary))
        return {"study": self.name, "folder": str(out), "counts": report.counts(self.states),
                "heldout": report.heldout_rows(fit_doc, self.states), "plan": plan, "fit": fit_doc and
                {k: fit_doc[k] for k in ("law", "params", "columns")}, "problem": problem, "summary": summary}

    def figures(self, collected, fit_doc) -> list[tuple[str, str]]:
        """(title, path relative to the study folder) of each figure written."""
        from lmlab.analysis import plots
        from lmlab.study import report

        fig_dir = self.out_dir / "figures"
        shown = []
        if collected is not None and len(collected[1]):
            val = collected[1][collected[1]["kind"] == "val"]
            if len(val):
                plots.save_figure(plots.loss_curves(val, size=self.options.n_col), fig_dir, "loss_curves")
                shown.append(("Loss curves (validation)", "figures/loss_curves.png"))
        if fit_doc:
            shown.append(("The law against the runs (held-out size in red)", f"figures/{fit_doc['law']}_fit.png"))
            shown.append(("Residuals", f"figures/{fit_doc['law']}_residuals.png"))
        done = collected[0][collected[0]["status"] == "completed"] if collected is not None else None
        if done is not None and len(done):
            plots.save_figure(frontier_figure(*collected, done, self.options.n_col), fig_dir, "frontier")
            shown.append(("The compute frontier: each run's curve and the lowest loss reached at each compute",
                          "figures/frontier.png"))
        rows = report.heldout_rows(fit_doc, self.states)
        if rows:
            plots.save_figure(report.heldout_figure(rows), fig_dir, "heldout")
            shown.append(("Held-out prediction", "figures/heldout.png"))
        return shown


def frontier_figure(runs, curves, done, n_col: str):
    """The compute-efficient frontier from the runs' validation curves (lmlab.analysis.frontier); where the
    curves cannot give one (too few runs), each completed run's final loss against its compute."""
    import numpy as np

    from lmlab.analysis import plots
    from lmlab.analysis.frontier import frontier
    from lmlab.errors import LmlabError
    from lmlab.runspec import COMPUTE

    try:
        return frontier(runs, curves).figure()
    except LmlabError:
        col = lambda name: done[name].to_numpy(dtype=float)  # noqa: E731
        return plots.loss_vs_compute(col(COMPUTE), col("final_val_loss"), np.maximum(col(n_col), 1.0))
