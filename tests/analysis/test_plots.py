"""Figures: each is written as PNG and SVG and draws what it says (points, lines, bands)."""

from __future__ import annotations

import numpy as np
import pytest

from lmlab.analysis import plots
from lmlab.analysis.approaches import approach1, approach2, isoflop_groups
from lmlab.analysis.fit import bootstrap, fit_law
from lmlab.analysis.holdout import holdout_mask

from .conftest import curves_for, isoflop_runs


@pytest.fixture(scope="module")
def ladder():
    rng = np.random.default_rng(5)
    runs = isoflop_runs(rng, budgets=np.geomspace(1e18, 1e20, 4), per_budget=7)
    return runs, curves_for(runs, rng, points=15)


def _check_written(paths):
    png, svg = paths
    assert png.read_bytes()[:4] == b"\x89PNG" and svg.read_text().rstrip().endswith("</svg>")


def test_law_fit_with_band_and_heldout_points(ladder, tmp_path):
    runs, _ = ladder
    X = {"N": runs.n_params.to_numpy(), "D": runs.tokens.to_numpy()}
    held = holdout_mask("max:N", X)
    fit = fit_law("chinchilla", {k: v[~held] for k, v in X.items()}, runs.final_val_loss.to_numpy()[~held])
    bootstrap(fit, 50)
    fig = plots.law_fit(fit, {k: v[held] for k, v in X.items()}, runs.final_val_loss.to_numpy()[held])
    ax = fig.axes[0]
    assert len(ax.collections) == 3          # fitted points, held-out points, the band
    assert ax.collections[1].get_offsets().shape[0] == held.sum()
    _check_written(plots.save_figure(fig, tmp_path, "law"))
    _check_written(plots.save_figure(plots.residuals(fit), tmp_path, "residuals"))


def test_isoflop_allocation_curves_and_compute_figures(ladder, tmp_path):
    runs, curves = ladder
    a2 = approach2(runs.n_params, runs.flops_6n, runs.final_val_loss)
    fig = plots.isoflop(a2, runs.n_params, runs.flops_6n, runs.final_val_loss, isoflop_groups(runs.flops_6n))
    assert len(fig.axes[0].lines) == len(a2.details["parabolas"])
    _check_written(plots.save_figure(fig, tmp_path, "isoflop"))
    a1 = approach1(curves.run_id, curves.n_params, curves.tokens, curves.flops_6n, curves.loss)
    fig = plots.allocation([a1, a2])
    assert [len(ax.lines) for ax in fig.axes[:2]] == [2, 2]
    _check_written(plots.save_figure(fig, tmp_path, "allocation"))
    fig = plots.loss_curves(curves, x="flops_6n", envelope=a1)
    assert len(fig.axes[0].lines) == runs.run_id.nunique()
    assert fig.axes[0].collections[0].get_offsets().shape[0] == len(a1.flops)
    _check_written(plots.save_figure(fig, tmp_path, "curves"))
    fig = plots.loss_vs_compute(runs.flops_6n, runs.final_val_loss, runs.n_params)
    fc, fl = plots.frontier(runs.flops_6n, runs.final_val_loss)
    assert np.all(np.diff(fl) <= 0) and np.all(np.diff(fc) >= 0)
    _check_written(plots.save_figure(fig, tmp_path, "loss_vs_compute"))


def test_log_axes_over_one_decade_but_under_two_label_1_2_5_in_si_units_without_overlap():
    """An IsoFLOP plot's N axis from 25k to 220k: matplotlib would label its minor ticks (2x10^4 3x10^4 ...,
    overlapping); lmlab labels 20k, 50k, 100k, 200k."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig, ax = plots._subplots()
    ax.plot([2.5e4, 5.5e4, 1e5, 2.2e5], [3.9, 3.85, 3.87, 3.95], "o")
    ax.set_xscale("log")
    plots.png_bytes(fig)
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    xmin, xmax = ax.get_xlim()
    shown = [t for t in ax.xaxis.get_majorticklabels() + ax.xaxis.get_minorticklabels()
             if t.get_text() and xmin <= t.get_position()[0] <= xmax]
    expected = [label for value, label in ((2e4, "20k"), (5e4, "50k"), (1e5, "100k"), (2e5, "200k"))
                if xmin <= value <= xmax]
    assert [t.get_text() for t in shown] == expected
    boxes = sorted((t.get_window_extent(renderer) for t in shown), key=lambda b: b.x0)
    assert all(a.x1 <= b.x0 for a, b in zip(boxes, boxes[1:])), "tick labels overlap"


@pytest.mark.parametrize("lo, hi", [(3.1, 4.6), (2.05, 9.7), (5.2, 5.5)])
def test_log_axes_under_a_decade_get_a_few_plain_readable_tick_labels(lo, hi):
    """A loss axis spanning under a decade has no labelled power of ten: its labels are plain numbers,
    2 to 7 of them, none overlapping; an axis spanning decades keeps matplotlib's powers of ten."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig, ax = plots._subplots()
    tokens = np.geomspace(1e3, 1e6, 20)
    ax.plot(tokens, np.geomspace(hi, lo, 20))
    ax.set(xscale="log", yscale="log")
    plots.png_bytes(fig)  # renders, after plots.readable_log_ticks
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    ymin, ymax = ax.get_ylim()
    shown = [t for t in ax.yaxis.get_majorticklabels() + ax.yaxis.get_minorticklabels()
             if t.get_text() and ymin <= t.get_position()[1] <= ymax]
    texts = [t.get_text() for t in shown]
    assert 2 <= len(shown) <= 7, texts
    assert all(lo * 0.9 <= float(t) <= hi * 1.1 for t in texts), texts  # plain numbers, inside the data's range
    boxes = sorted((t.get_window_extent(renderer) for t in shown), key=lambda b: b.y0)
    assert all(a.y1 <= b.y0 for a, b in zip(boxes, boxes[1:])), "tick labels overlap"
    assert all("10^" in t.get_text() or "10^{" in t.get_text() for t in ax.xaxis.get_majorticklabels()
               if t.get_text())
