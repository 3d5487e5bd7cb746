"""Fixtures for the analysis tests: the public Chinchilla points and data generated from known laws."""

from __future__ import annotations

from pathlib import Path

import re

import numpy as np
import pandas as pd
import pytest

# A Chinchilla-like truth for generated data (close to the replication's fit).
TRUTH = {"E": 1.82, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}


@pytest.fixture(scope="session")
def chinchilla_csv() -> Path:
    from lmlab.analysis.reference import chinchilla_path
    return chinchilla_path()


@pytest.fixture(scope="session")
def chinchilla_points(chinchilla_csv) -> pd.DataFrame:
    """The 240 points of the replication: the 5 highest-loss points dropped, D = C / (6 N)."""
    df = pd.read_csv(chinchilla_csv)
    df = df.drop(df["loss"].nlargest(5).index)
    return pd.DataFrame({"N": df["Model Size"], "C": df["Training FLOP"],
                         "D": df["Training FLOP"] / (6 * df["Model Size"]), "L": df["loss"]})


@pytest.fixture(scope="session")
def chinchilla_fit(chinchilla_points):
    """The full 4,500-start approach-3 fit, shared by the tests that need it."""
    from lmlab.analysis.fit import fit_law

    pts = chinchilla_points
    return fit_law("chinchilla", {"N": pts["N"].to_numpy(), "D": pts["D"].to_numpy()}, pts["L"].to_numpy())


def chinchilla_loss(n, d, p=TRUTH):
    return p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]


def isoflop_runs(rng, budgets=np.geomspace(1e18, 1e21, 7), per_budget=9, noise=0.003, p=TRUTH) -> pd.DataFrame:
    """An IsoFLOP ladder from the law: per budget, sizes spread from 1/5 to 5 x the optimum."""
    from lmlab.analysis.allocation import chinchilla_optimal

    rows = []
    for c in budgets:
        n_opt, _ = chinchilla_optimal(p, c)
        for n in n_opt * np.geomspace(0.2, 5.0, per_budget):
            d = c / (6 * n)
            rows.append({"run_id": f"C{c:.2g}-N{n:.3g}", "n_params": n, "tokens": d, "flops_6n": c,
                         "final_val_loss": chinchilla_loss(n, d, p) * np.exp(noise * rng.standard_normal())})
    return pd.DataFrame(rows)


def curves_for(runs: pd.DataFrame, rng, points=40, noise=0.002, p=TRUTH) -> pd.DataFrame:
    """Each run's loss curve from 1% to 100% of its tokens, as if every point were a matched-schedule run."""
    rows = []
    for r in runs.itertuples():
        for d in np.geomspace(r.tokens / 100, r.tokens, points):
            rows.append({"run_id": r.run_id, "kind": "val", "n_params": r.n_params, "tokens": d,
                         "flops_6n": 6 * r.n_params * d,
                         "loss": chinchilla_loss(r.n_params, d, p) * np.exp(noise * rng.standard_normal())})
    return pd.DataFrame(rows)


def cli_error(capsys, argv) -> str:
    """Run `lmlab ARGV`, expect exit 2 with exactly one line `lmlab[ command]: error: ...`; return it."""
    from lmlab.cli import main

    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse refuses a bad value before run() is called
        code = exit_.code
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, (code, captured.out[-500:], err)
    assert err.count("\n") == 1 and re.match(r"lmlab( [\w-]+)*: error: ", err), err
    assert "Traceback" not in err + captured.out
    return err
