"""The compute-efficient frontier on a synthetic study whose curves follow Kaplan's L(N, S_min) exactly."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq

from lmlab.analysis.frontier import frontier
from lmlab.analysis.laws import KAPLAN_NS, kaplan_b_crit
from lmlab.cli import main
from lmlab.io import write_table
from lmlab.runs.collect import curves_path

TRUTH = {"Nc": 8.8e13, "alpha_N": 0.076, "Sc": 2.1e3, "alpha_S": 0.76}  # Kaplan et al.'s values
BATCH = 2.5e5  # tokens per step
SIZES = 1e6 * 3.0 ** np.arange(5)


def loss_at(n, s_min):
    n, s_min = np.broadcast_arrays(np.atleast_1d(n).astype(float), np.atleast_1d(s_min).astype(float))
    return KAPLAN_NS.predict(TRUTH, N=n, S_min=s_min)


def steps_of(n, s_min):
    return s_min * (1.0 + kaplan_b_crit(loss_at(n, s_min)) / BATCH)


def true_loss_at_compute(n, compute):
    """The truth's loss of size n at compute C = 6 n B S (solving for S_min)."""
    s_min = brentq(lambda s: np.log(6 * n * BATCH * steps_of(n, s)[0] / compute), 1e-3, 1e12)
    return float(loss_at(n, s_min)[0])


def synthetic_study():
    rows, points = [], []
    for i, n in enumerate(SIZES):
        s_min = np.geomspace(300, 3e4, 30)
        loss, steps = loss_at(n, s_min), steps_of(n, s_min)
        run = f"run{i}"
        rows.append({"run_id": run, "status": "completed", "n_params": n, "n_params_nonembedding": n,
                     "planned_steps": steps[-1], "schedule.warmup_frac": 0.0, "final_val_loss": loss[-1]})
        points += [{"run_id": run, "kind": "val", "step": s, "tokens": s * BATCH, "flops_6n": 6 * n * s * BATCH,
                    "loss": l, "n_params": n, "n_params_nonembedding": n} for s, l in zip(steps, loss)]
    rows.append({"run_id": "failed", "status": "failed", "n_params": 1e9, "n_params_nonembedding": 1e9})
    points.append({"run_id": "failed", "kind": "val", "step": 10, "tokens": 1e9, "flops_6n": 1e30, "loss": 0.01,
                   "n_params": 1e9, "n_params_nonembedding": 1e9})  # kept out: not completed
    return pd.DataFrame(rows), pd.DataFrame(points)


def test_envelope_best_size_law_and_stopping_points_are_the_truths():
    table, curves = synthetic_study()
    fr = frontier(table, curves, n_grid=40)
    assert "failed" not in set(fr.curves["run_id"])
    checked = 0
    for row in fr.table.itertuples():
        span = curves[curves.run_id != "failed"].groupby("n_params")["flops_6n"].agg(["min", "max"])
        truths = {n: true_loss_at_compute(n, row.compute) for n in SIZES
                  if span.loc[n, "min"] * (1 - 1e-9) <= row.compute <= span.loc[n, "max"] * (1 + 1e-9)}
        best = min(truths, key=truths.get)
        assert row.loss == pytest.approx(truths[best], rel=3e-3)
        ranked = sorted(truths.values())
        if len(ranked) == 1 or ranked[1] > ranked[0] * 1.005:  # a clear winner: the envelope names it
            assert row.n_params == best
            checked += 1
    assert checked > len(fr.table) // 2
    assert fr.table["n_params"].nunique() >= 3  # the best size grows with compute
    assert np.all(np.diff(fr.table["n_params"]) >= 0)
    interior = fr.table[fr.table.n_params.between(SIZES[1], SIZES[-2])]  # where the frontier law is fitted
    assert np.max(np.abs(interior["law_loss"] / interior["loss"] - 1)) < 0.01
    # Kaplan's L(N, S_min) is recovered, and each size stops (1 + alpha_N / alpha_S) above its converged loss
    for k, v in TRUTH.items():
        assert fr.stopping_fit.params[k] == pytest.approx(v, rel=0.02), k
    stop = fr.stopping.set_index("n_params")
    converged = (TRUTH["Nc"] / SIZES) ** TRUTH["alpha_N"]
    assert stop.loc[SIZES, "loss_stop"].to_numpy() == pytest.approx(1.1 * converged, rel=2e-3)
    s_stop = TRUTH["Sc"] * (0.1 * converged) ** (-1 / TRUTH["alpha_S"])
    assert stop.loc[SIZES, "s_min"].to_numpy() == pytest.approx(s_stop, rel=0.03)
    assert stop.loc[SIZES, "steps"].to_numpy() == pytest.approx(steps_of(SIZES, s_stop), rel=0.03)


def test_frontier_cli_writes_tables_figure_and_json(tmp_path, capsys):
    table, curves = synthetic_study()
    path = tmp_path / "study.parquet"
    write_table(table, path)
    write_table(curves, curves_path(path))
    assert main(["frontier", str(path), "-o", str(tmp_path / "out"), "--json", "--grid", "30"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frontier_law"]["params"]["alpha_C"] > 0
    assert [r["n_params"] for r in summary["best_size_from"]] == sorted(r["n_params"] for r in summary["best_size_from"])
    assert len(pd.read_csv(tmp_path / "out" / "frontier.csv")) == 30
    assert len(pd.read_csv(tmp_path / "out" / "stopping.csv")) == len(SIZES)
    assert (tmp_path / "out" / "frontier.png").read_bytes()[:4] == b"\x89PNG"


def test_two_sizes_give_an_envelope_but_no_stopping_points():
    table, curves = synthetic_study()
    two = table[table.n_params.isin(SIZES[:2])]
    fr = frontier(two, curves, n_grid=20)
    assert fr.stopping is None and fr.stopping_fit is None and set(fr.table.n_params) == set(SIZES[:2])
    assert fr.notes == ["no stopping points: Kaplan's L(N, S_min) needs curves of at least 3 sizes; found 2"]


def test_the_envelope_keeps_a_loss_reached_with_less_compute():
    table = pd.DataFrame({"run_id": ["small", "big"], "status": "completed", "n_params": [1e6, 4e6]})
    pts = [("small", 1e9, 4.0), ("small", 1e10, 3.0), ("big", 1e9, 6.0), ("big", 3e10, 3.5), ("big", 1e11, 2.5)]
    curves = pd.DataFrame([{"run_id": r, "kind": "val", "step": i + 1, "tokens": c / 6e6, "flops_6n": c, "loss": l,
                            "n_params": 1e6 if r == "small" else 4e6} for i, (r, c, l) in enumerate(pts)])
    env = frontier(table, curves, n_grid=21).table.set_index("compute")
    at = env.loc[env.index[np.argmin(np.abs(np.log(env.index / 3e10)))]]
    assert at["loss"] == pytest.approx(3.0) and at["run_id"] == "small"  # the big run is still above what small reached
    assert np.all(np.diff(env["loss"]) <= 0) and env["loss"].iloc[-1] == pytest.approx(2.5)


def test_frontier_cli_bad_input_is_one_line(tmp_path, capsys):
    table, _ = synthetic_study()
    path = tmp_path / "study.csv"
    write_table(table, path)
    assert main(["frontier", str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "study.curves.csv" in err and "does not exist" in err
    assert main(["frontier", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "out")]) == 2
    assert "nope.csv" in capsys.readouterr().err and not (tmp_path / "out").exists()
