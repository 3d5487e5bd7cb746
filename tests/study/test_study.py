"""`lmlab study` end to end on a tiny ladder (2 sizes x 2 budgets x 2 seeds, tens of steps each):
trained, collected, fitted with the largest size held out, planned, reported; relaunched without
training; a failed size reported; bad input refused in one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lmlab.io import read_json, read_table
from tests.conftest import run_cli

LADDER = Path(__file__).with_name("tiny_ladder.yaml")
# kaplan_c (L = (Cc/C)^a) has 2 parameters: the 4 runs of the smaller size are enough to fit it
FAST_FIT = ["--law", "kaplan_c", "--jobs", "2"]
HELDOUT = re.compile(r"^held-out (\S+): predicted ([\d.]+) \[([\d.]+), ([\d.]+)\], actual ([\d.]+), error ([-+\d.]+)%$",
                     re.M)


def study(tmp_path: Path, data_root: Path, *overrides: str, folder: bool = True):
    """`lmlab study LADDER OVERRIDES -o DIR` with a fast fit, its runs under tmp_path/runs (without -o: run
    in tmp_path, where the study folder goes by default)."""
    env = {"LMLAB_RUNS_DIR": str(tmp_path / "runs"), "LMLAB_DATA_DIR": str(data_root)}
    output = ["-o", str(tmp_path / "study")] if folder else []
    return run_cli(["-m", "lmlab.cli", "study", str(LADDER), *overrides, *output, *FAST_FIT],
                   env=env, timeout=1800, cwd=tmp_path)


def results(runs_dir: Path) -> dict[str, float]:
    return {p.parent.name: p.stat().st_mtime_ns for p in runs_dir.rglob("result.json")}


@pytest.mark.slow
def test_a_study_trains_fits_predicts_the_held_out_size_reports_and_a_relaunch_trains_nothing(tmp_path, data_root):
    out = study(tmp_path, data_root)
    assert out.returncode == 0, out.stderr[-3000:]
    progress = re.findall(r"^\[(\d)/8\] (14k|25k) .* seed [01]: loss [\d.]+, .* \| study ETA", out.stdout, re.M)
    assert sorted(int(i) for i, _ in progress) == list(range(1, 9))

    folder = tmp_path / "study"
    table = read_table(folder / "study.parquet")
    assert len(table) == 8 and set(table["status"]) == {"completed"}
    fit = read_json(folder / "fit.json")
    assert fit["law"] == "kaplan_c" and fit["points"]["n_points"] == 4   # the 14k runs; 25k held out
    # the printed held-out line is the held-out run of the largest compute, against its recorded loss
    size, pred, lo, hi, actual, error = HELDOUT.search(out.stdout).groups()
    big = table[(table["model.size"] == "25k") & (table["flops_6n"] == table["flops_6n"].max())]
    assert size == "25k" and min(abs(big["final_val_loss"] - float(actual))) < 1e-4
    assert float(lo) < float(pred) < float(hi)
    assert float(error) == pytest.approx(100 * (float(pred) - float(actual)) / float(actual), abs=0.02)
    # too few runs for a bootstrap, and kaplan_c (loss against compute) cannot split a budget into N and D
    assert "warning: no bootstrap: 4 fitted runs" in out.stdout
    assert "no plan: law 'kaplan_c' does not trade N against D" in out.stdout and not (folder / "planned.yaml").exists()
    report = (folder / "report.md").read_text()
    for figure in re.findall(r"!\[[^]]*\]\(([^)]+)\)", report):
        assert (folder / figure).is_file(), figure
    assert "figures/kaplan_c_fit.png" in report and "figures/heldout.png" in report
    assert f"written to {folder}" in out.stdout

    before = results(tmp_path / "runs")
    again = study(tmp_path, data_root, folder=False)   # the default folder: studies/<ladder name>
    assert again.returncode == 0, again.stderr[-3000:]
    assert (tmp_path / "studies" / "tiny_ladder" / "report.md").is_file()
    assert "8 of 8 runs already completed: not retrained" in again.stdout
    assert not re.search(r"^\[\d/8\]", again.stdout, re.M) and "training" not in again.stdout
    assert results(tmp_path / "runs") == before
    assert HELDOUT.search(again.stdout).group(2) == pred


@pytest.mark.slow
def test_a_branched_study_launches_the_trunks_and_tracks_every_budget(tmp_path, data_root):
    out = study(tmp_path, data_root, "chinchilla_multiples=[0.006]", "branches=[0.5]")
    assert out.returncode == 0, out.stderr[-3000:]
    assert len(re.findall(r"^\[\d/8\] (14k|25k) .*: loss [\d.]+", out.stdout, re.M)) == 8  # budgets, not trunks
    table = read_table(tmp_path / "study" / "study.parquet")
    assert len(table) == 8 and set(table["status"]) == {"completed"}
    assert table.groupby("model.size")["tokens"].nunique().tolist() == [2, 2]   # each trunk's two budgets
    trunks = list((tmp_path / "runs" / "study-tiny" / ".trunks").iterdir())
    assert len(trunks) == 4   # one per size and seed, each serving both budgets
    assert set(table["branch_of"].dropna()) == {t.name for t in trunks}


@pytest.mark.slow
def test_a_failed_size_is_reported_and_the_study_says_why_it_cannot_fit(tmp_path, data_root):
    # the learning-rate rule gives 14k 0.03 and 25k an lr so large that its loss is not finite
    diverge = ["rules.lr.ref_n=113000", "rules.lr.coef=0.03", "rules.lr.exponent=600", "seeds=[0]"]
    out = study(tmp_path, data_root, *diverge)
    assert out.returncode == 2
    lines = out.stdout.splitlines()
    assert sum("failed" in line and line.startswith("  not completed: 25k") for line in lines) == 2
    assert "study tiny_ladder: 2 of 4 runs completed, 2 failed" in out.stdout
    error = out.stderr.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("lmlab study: error: study tiny_ladder: 2 completed run(s) of 1 size")
    table = read_table(tmp_path / "study" / "study.parquet")   # what there is, kept: the failures labelled
    assert sorted(table["status"]) == ["completed", "completed", "failed", "failed"]
    assert "## Missing" in (tmp_path / "study" / "report.md").read_text()
    for run_dir in table[table["status"] == "completed"]["run_dir"]:   # nothing trained is lost
        assert read_json(Path(run_dir) / "result.json")["status"] == "completed"


@pytest.mark.parametrize("args, message", [
    (["no_such_ladder"], "ladder 'no_such_ladder': no such file"),
    ([str(LADDER), "chinchilla_multiples=[1e-9,0.004]"], "fewer than one optimizer step"),
    ([str(LADDER), "sizes"], "override 'sizes': expected KEY=VALUE"),
])
def test_bad_input_is_one_line_and_trains_nothing(tmp_path, args, message):
    out = run_cli(["-m", "lmlab.cli", "study", *args, "-o", str(tmp_path / "study")],
                  env={"LMLAB_RUNS_DIR": str(tmp_path / "runs")})
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "study").exists()


@pytest.mark.slow
@pytest.mark.slurm
def test_a_study_on_the_local_slurm_cluster(tmp_path, data_root):
    from tests.slurm.conftest import node_state

    if node_state() not in ("idle", "mixed", "allocated", "completing"):
        pytest.skip("local SLURM cluster not running: make slurm-up")
    slurm = ["cluster=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1",
             "hydra.launcher.timeout_min=10"]
    out = study(tmp_path, data_root, *slurm)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert len(re.findall(r"^\[\d/8\] ", out.stdout, re.M)) == 8
    table = read_table(tmp_path / "study" / "study.parquet")
    assert set(table["status"]) == {"completed"} and table["slurm_job_id"].notna().all()
    assert HELDOUT.search(out.stdout).group(1) == "25k"
