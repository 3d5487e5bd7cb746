"""`lmlab runs plot DIR`: a run group's validation loss curves, one labelled line per run."""

from __future__ import annotations

import numpy as np
import pytest

from lmlab.cli import main
from lmlab.runs.cli_plot import run_curve, run_dirs
from lmlab.runs.record import RunRecord


def write_run(root, name, size, tokens, val_points):
    rec = RunRecord(root / name)
    rec.write_config({"model": {"size": size}})
    rec.write_plan({"run_id": name, "planned_tokens": tokens})
    for k, t in enumerate(np.geomspace(tokens / 50, tokens, val_points)):
        rec.append_metrics({"step": k, "tokens": int(t), "train_loss": 5.0})
        rec.append_metrics({"step": k, "tokens": int(t), "val_loss": 4.0 + 1000 / t})


@pytest.fixture
def group(tmp_path):
    root = tmp_path / "runs" / "ladder"
    write_run(root, "14k-a", "14k", 20000, 6)
    write_run(root, "55k-b", "55k", 80000, 4)
    write_run(root, "100k-c", "100k", 160000, 0)  # started, not validated yet: no line
    return root


def test_each_validated_run_is_one_line_labelled_by_size_and_budget(group):
    from lmlab.analysis.plots import labelled_curves

    curves = [c for c in map(run_curve, run_dirs(group)) if c is not None]
    fig = labelled_curves(curves)
    (ax,) = fig.axes
    labels = sorted(t.get_text() for t in ax.get_legend().get_texts())
    assert labels == ["14k, 2e+04 tokens", "55k, 8e+04 tokens"]
    points = sorted(len(line.get_xdata()) for line in ax.get_lines())
    assert points == [4, 6]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "tokens"


def test_runs_plot_writes_the_figure(group, tmp_path, capsys):
    out = tmp_path / "figs" / "curves.png"
    assert main(["runs", "plot", str(group), "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "2 run(s)" in capsys.readouterr().out
    assert main(["runs", "plot", str(group)]) == 0
    assert (group / "loss_curves.png").exists()


@pytest.mark.parametrize("argv, words", [
    (["runs", "plot", "{tmp}/nowhere"], "is not a directory"),
    (["runs", "plot", "{tmp}/empty"], "neither multirun.yaml"),
    (["runs", "plot", "{tmp}/fresh"], "has a validation loss yet"),
    (["runs", "plot", "{tmp}/fresh", "-o", "{tmp}/x.txt"], "expected a file ending in .png or .svg"),
])
def test_bad_input_is_one_line(tmp_path, capsys, argv, words):
    (tmp_path / "empty").mkdir()
    write_run(tmp_path / "fresh", "14k-a", "14k", 20000, 0)
    capsys.readouterr()
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lmlab runs plot: error:") and words in err[0]
