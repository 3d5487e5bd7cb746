"""The default interval holds when extrapolating a law whose form is wrong; the bootstrap resamples
runs, not rows; pinned rows stay; chained intervals carry the loss's uncertainty and stay in [0, 1]."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lmlab.analysis.extrapolation import calibrate, honest_interval
from lmlab.analysis.fit import bootstrap, fit_law, resample_weights
from lmlab.analysis.laws import CHINCHILLA
from lmlab.analysis.synthetic import ladder, score_intervals
from lmlab.cli import main

from .conftest import TRUTH, chinchilla_loss, isoflop_runs

# a coarse share of Hoffmann et al.'s grid: many seeds stay fast
COARSE_STARTS = CHINCHILLA.start_grid(None, None)[::45]


def test_default_interval_covers_held_out_budgets_of_misspecified_ladders():
    """Truths whose exponents drift with scale, with per-size and per-run noise (synthetic.py):
    fitted on every budget but the largest, the 95% default interval must hold the largest
    budget's actual losses at least 90% of the time, at a median half-width within 3% of the loss,
    while the parameter-only interval holds them far less often."""
    covered, widths, param_covered = [], [], []
    for seed in range(12):
        scores = score_intervals(ladder(np.random.default_rng(seed)), n_resamples=40 if seed < 4 else 0,
                                 starts=COARSE_STARTS, seed=seed, grid_starts=20)
        covered.extend(scores["covered"])
        widths.extend(scores["half_width"])
        param_covered.extend(scores.get("param_covered", []))
    assert np.mean(covered) >= 0.90, np.mean(covered)
    assert np.median(widths) <= 0.03, np.median(widths)
    assert np.mean(param_covered) < np.mean(covered) - 0.15


def test_backtests_measure_error_growth_on_a_bending_truth_not_on_an_exact_one():
    bent = ladder(np.random.default_rng(0), {**TRUTH, "drift_N": 0.03, "drift_D": 0.03, "size_noise": 0.0,
                                              "run_noise": 0.002})
    exact = ladder(np.random.default_rng(0), {**TRUTH, "drift_N": 0.0, "drift_D": 0.0, "size_noise": 0.0,
                                               "run_noise": 0.002})
    kappas = []
    for runs in (bent, exact):
        fit = fit_law(CHINCHILLA, {"N": runs.n_params.to_numpy(), "D": runs.tokens.to_numpy()},
                      runs.final_val_loss.to_numpy(), starts=COARSE_STARTS)
        cal = calibrate(fit, grid_starts=20)
        assert len(cal.backtests) >= 2 and 0.0015 < cal.sigma0 < 0.004   # the runs scatter 0.2%
        kappas.append(cal.kappa)
    assert kappas[0] > 2 * kappas[1]


def test_grouped_resamples_keep_the_rows_of_a_run_together_and_pinned_rows_in_every_one():
    groups = np.repeat(np.arange(8), 5)            # 8 runs of 5 checkpoints each
    pinned = np.zeros(41, dtype=bool)
    pinned[-1] = True                               # an anchor row
    weights, n_groups = resample_weights(np.random.default_rng(0), np.ones(41), np.r_[groups, -1], pinned, 200)
    assert n_groups == 8
    per_run = weights[:, :40].reshape(200, 8, 5)
    assert np.all(per_run == per_run[:, :, :1])     # a run's rows share one count
    assert np.all(weights[:, 40] == 1.0)            # the anchor is in every resample
    assert np.all(weights[:, :40].sum(axis=1) == 40)
    assert (per_run[:, :, 0] == 0).any()            # whole runs do drop out


def test_bootstrap_refuses_too_few_runs():
    from lmlab.errors import FitError

    n, d = np.geomspace(1e8, 1e9, 12), np.geomspace(1e9, 1e10, 12)
    fit = fit_law(CHINCHILLA, {"N": n, "D": d}, chinchilla_loss(n, d), starts=CHINCHILLA.from_params(TRUTH))
    with pytest.raises(FitError, match="3 independent run"):
        bootstrap(fit, 10, groups=np.repeat(["a", "b", "c"], 4))


@pytest.fixture(scope="module")
def loss_and_task_fits(tmp_path_factory):
    """A loss law on a ladder and an accuracy law of the loss (OLMo's sigmoid), both fitted by the CLI."""
    out = tmp_path_factory.mktemp("chain")
    rng = np.random.default_rng(4)
    runs = isoflop_runs(rng, budgets=np.geomspace(1e18, 1e20, 5), per_budget=7)
    runs.to_csv(out / "runs.csv", index=False)
    loss = np.linspace(2.1, 3.6, 40)
    acc = 0.6 / (1 + np.exp(3.0 * (loss - 2.8))) + 0.25 + 0.01 * rng.standard_normal(40)
    pd.DataFrame({"final_val_loss": loss, "acc": acc}).to_csv(out / "tasks.csv", index=False)
    assert main(["fit", str(out / "runs.csv"), "--bootstrap", "50", "--starts", "150", "-o", str(out / "loss.json")]) == 0
    assert main(["fit", str(out / "tasks.csv"), "--law", "olmo_sigmoid", "--y-col", "acc", "--huber-delta", "0.02",
                 "--bootstrap", "50", "-o", str(out / "task.json")]) == 0
    return out


def test_chained_prediction_carries_the_loss_uncertainty_and_stays_in_0_1(loss_and_task_fits, capsys):
    out = loss_and_task_fits
    capsys.readouterr()
    for n, tokens in ((3e9, 6e10), (3e7, 6e8)):   # near the fitted range, and far below it (accuracy ~0.25)
        assert main(["predict", str(out / "loss.json"), str(out / "task.json"), "--n", str(n), "--tokens",
                     str(tokens), "--json"]) == 0
        chained = json.loads(capsys.readouterr().out)
        assert chained["interval"][0] < chained["loss"] < chained["interval"][1] and chained["level"] == 0.95
        task = chained["task"]
        assert 0.0 <= task["interval"][0] <= task["value"] <= task["interval"][1] <= 1.0
        assert main(["predict", str(out / "task.json"), "--loss", str(chained["loss"]), "--json"]) == 0
        alone = json.loads(capsys.readouterr().out)
        assert alone["value"] == pytest.approx(task["value"])
        assert task["interval"][1] - task["interval"][0] > alone["interval"][1] - alone["interval"][0]


def test_accuracy_interval_never_leaves_0_1(loss_and_task_fits, capsys):
    from lmlab.analysis.fitjson import fit_from_doc, load_fit_doc

    fit = fit_from_doc(load_fit_doc(loss_and_task_fits / "task.json"))
    _, lo, hi = honest_interval(fit, L=np.array([0.5, 1.0, 9.0]))   # far outside the fitted losses
    assert np.all(lo >= 0.0) and np.all(hi <= 1.0) and np.all(lo <= hi)
