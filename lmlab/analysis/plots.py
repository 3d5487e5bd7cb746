"""Figures of a study and its fits. Each function returns a matplotlib Figure built without pyplot
(no global backend or state, so they work headless and leave a notebook's backend alone);
`save_figure` writes PNG and SVG (`write_figure` one file), `png_bytes` gives the PNG for a notebook's display(Image(...))."""

from __future__ import annotations

from pathlib import Path

import io

import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from lmlab.analysis.approaches import Allocation
from lmlab.analysis.fit import Fit
from lmlab.analysis.plan import optimal_n, optimum


def save_figure(fig, out_dir: str | Path, name: str) -> list[Path]:
    """out_dir/name.png and .svg."""
    paths = [Path(out_dir) / f"{name}.png", Path(out_dir) / f"{name}.svg"]
    for path in paths:
        write_figure(fig, path)
    return paths


def write_figure(fig, path: str | Path) -> Path:
    """The figure written atomically, in the format its suffix names (.png, .svg, .pdf)."""
    from lmlab.io import atomic_path

    path = Path(path)
    readable_log_ticks(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix[1:], dpi=120, bbox_inches="tight")
    return path


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    readable_log_ticks(fig)
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def readable_log_ticks(fig) -> None:
    """Readable tick labels on every log axis of fig spanning under two decades. Under one decade
    matplotlib has at most one major tick and labels the minor ones as 3x10^0 (crowded, or none at all);
    a few plain numbers (3, 3.5, 4) read at once. Between one and two decades it labels minor ticks too,
    and they overlap (2x10^4 3x10^4 4x10^4): 1, 2 and 5 times each power of ten, in SI units (20k, 50k,
    100k), read at once. Called by save_figure and png_bytes, after plotting."""
    from matplotlib.ticker import EngFormatter, FormatStrFormatter, LogLocator, MaxNLocator, NullFormatter

    for ax in fig.axes:
        for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            span = max(lo, hi) / min(lo, hi) if axis.get_scale() == "log" and 0 < min(lo, hi) else None
            if span is None or span >= 100:
                continue
            if span < 10:
                axis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
                axis.set_major_formatter(FormatStrFormatter("%g"))
            else:
                axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                axis.set_major_formatter(EngFormatter(sep=""))
            axis.set_minor_formatter(NullFormatter())


def _subplots(ncols=1, figsize=(6.4, 4.4), **kw):
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(1, ncols, **kw)


def _size_colors(ax, n):
    norm = LogNorm(vmin=np.min(n), vmax=max(np.max(n), np.min(n) * 1.0001))
    return norm, matplotlib.colormaps["viridis"]


def _colorbar(fig, ax, norm, cmap, label="N (parameters)"):
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=label)


def frontier(flops, loss) -> tuple[np.ndarray, np.ndarray]:
    """The lowest loss reached at or below each compute: the points on the lower-left envelope."""
    order = np.argsort(flops)
    c, l = np.asarray(flops)[order], np.asarray(loss)[order]
    keep = l <= np.minimum.accumulate(l)
    return c[keep], l[keep]


def loss_vs_compute(flops, loss, n) -> Figure:
    """Every run's final loss against its compute, coloured by size, with the frontier."""
    fig, ax = _subplots()
    norm, cmap = _size_colors(ax, n)
    ax.scatter(flops, loss, c=cmap(norm(n)), s=18, alpha=0.85)
    fc, fl = frontier(flops, loss)
    ax.plot(fc, fl, color="crimson", lw=1.5, label="frontier (lowest loss at <= C)")
    ax.set(xscale="log", yscale="log", xlabel="compute C (FLOPs)", ylabel="final loss (nats/token)",
           title="Loss vs compute")
    ax.legend(loc="upper right")
    _colorbar(fig, ax, norm, cmap)
    return fig


def isoflop(alloc: Allocation, n, flops, loss, groups) -> Figure:
    """Approach 2: each compute budget's loss against N, its parabola and its minimum."""
    fig, ax = _subplots()
    norm = LogNorm(vmin=np.min(flops), vmax=max(np.max(flops), np.min(flops) * 1.0001))
    cmap = matplotlib.colormaps["plasma"]
    n, flops, loss, groups = (np.asarray(v) for v in (n, flops, loss, groups))
    for g in np.unique(groups):
        sel = groups == g
        ax.scatter(n[sel], loss[sel], color=cmap(norm(np.median(flops[sel]))), s=14)
    for par in alloc.details["parabolas"]:
        sel = np.isclose(flops, par["C"], rtol=0.2)
        lo, hi = (np.log(n[sel]).min(), np.log(n[sel]).max()) if sel.any() else (np.log(n).min(), np.log(n).max())
        x = np.linspace(lo, hi, 100)
        ax.plot(np.exp(x), np.polyval(par["coefs"], x), color=cmap(norm(par["C"])), lw=1)
    ax.scatter(alloc.n_points, alloc.loss_points, marker="*", s=90, color="black", zorder=3, label="minima")
    ax.set(xscale="log", xlabel="N (parameters)", ylabel="final loss (nats/token)", title="IsoFLOP profiles")
    ax.legend()
    _colorbar(fig, ax, norm, cmap, label="compute C (FLOPs)")
    return fig


def law_fit(fit: Fit, held_X: dict | None = None, held_y=None) -> Figure:
    """The fitted law, its default band (holds when extrapolating), its parameter-only (bootstrap)
    band and the held-out points.

    Laws of N and D are drawn along their compute-optimal frontier against C = 6 N D; laws of
    one input against that input."""
    fig, ax = _subplots()
    tradeoff = {"N", "D"} <= set(fit.law.inputs) or {"C", "M"} <= set(fit.law.inputs)
    x_of = (lambda X: 6.0 * X["N"] * X["D"] if "N" in X else X["C"]) if tradeoff else (lambda X: X[fit.law.inputs[0]])
    x_data = x_of(fit.X)
    ax.scatter(x_data, fit.y, s=12, color="0.55", label="fitted points")
    if held_X is not None:
        ax.scatter(x_of(held_X), held_y, s=30, color="crimson", marker="D", label="held out")
        x_data = np.r_[x_data, x_of(held_X)]
    grid = np.geomspace(x_data.min(), x_data.max() * 3.0, 60) if fit.law.space == "log" \
        else np.linspace(x_data.min(), x_data.max(), 60)
    thetas = fit.theta[None] if fit.bootstrap is None else np.vstack([fit.theta, fit.bootstrap.thetas])
    curves = np.empty((len(thetas), len(grid)))
    for j, c in enumerate(grid):
        if tradeoff:
            curves[:, j] = optimum(fit, c, thetas)[1]
        else:
            curves[:, j] = fit.law.predict_theta(thetas, {fit.law.inputs[0]: np.array([c])})[:, 0]
    label = "law at the compute-optimal N" if tradeoff else "law"
    ax.plot(grid, curves[0], color="navy", lw=1.6, label=label)
    level = fit.bootstrap.level if fit.bootstrap is not None else 0.95
    if fit.extrapolation is not None:
        x = np.log10(grid) if fit.extrapolation.axis.startswith("log10") else -grid
        half = fit.extrapolation.multiplier(level) * fit.extrapolation.sigma(x)
        lo, hi = (curves[0] * np.exp(-half), curves[0] * np.exp(half)) if fit.law.space == "log" \
            else (curves[0] - half, curves[0] + half)
        ax.fill_between(grid, lo, hi, color="tab:orange", alpha=0.25, label=f"{level:.0%} default (extrapolation) band")
    if fit.bootstrap is not None:
        lo, hi = fit.bootstrap.interval(curves[1:])
        ax.fill_between(grid, lo, hi, color="navy", alpha=0.3, label=f"{level:.0%} parameter-only band")
    ax.set(xlabel="compute C = 6ND (FLOPs)" if tradeoff else fit.law.inputs[0], ylabel=fit.law.target,
           title=f"{fit.law.name}: {fit.law.formula}")
    if fit.law.space == "log":
        ax.set_xscale("log")   # loss stays linear: its range is well under a decade
    ax.legend(fontsize=8)
    return fig


def allocation(allocs: list[Allocation], fit: Fit | None = None) -> Figure:
    """N_opt(C) and D_opt(C) from approaches 1 and 2 (points and power laws) and approach 3 (a law)."""
    fig, axes = _subplots(2, figsize=(10, 4))
    spans = [a.flops for a in allocs] + ([6.0 * fit.X["N"] * fit.X["D"]] if fit is not None else [])
    lo, hi = min(s.min() for s in spans), max(s.max() for s in spans)
    grid = np.geomspace(lo / 3, hi * 3, 50)
    for a, color in zip(allocs, ("tab:green", "tab:orange")):
        for ax, pts, law in ((axes[0], a.n_points, a.n_opt), (axes[1], a.d_points, a.d_opt)):
            ax.scatter(a.flops, pts, s=14, color=color)
            exp = law.exponent
            ax.plot(grid, law(grid), color=color, label=f"approach {a.method}: exponent {exp:.3f}")
    if fit is not None:
        ns = np.array([optimal_n(fit, c)[0] for c in grid])
        d = fit.derived
        axes[0].plot(grid, ns, color="navy", label=f"approach 3: a = {d.get('a', float('nan')):.3f}")
        axes[1].plot(grid, grid / (6 * ns), color="navy", label=f"approach 3: b = {d.get('b', float('nan')):.3f}")
    for ax, name in zip(axes, ("N_opt", "D_opt")):
        ax.set(xscale="log", yscale="log", xlabel="compute C (FLOPs)", ylabel=name, title=f"{name}(C)")
        ax.legend(fontsize=8)
    return fig


def residuals(fit: Fit) -> Figure:
    """Residuals against the prediction and against each input: structure means a wrong form."""
    r = fit.residuals()
    pred = fit.law.predict_theta(fit.theta, fit.X)[0]
    panels = [("prediction", pred), *fit.X.items()]
    fig, axes = _subplots(len(panels), figsize=(4 * len(panels), 3.4), squeeze=False)
    for ax, (name, x) in zip(axes[0], panels):
        ax.scatter(x, r, s=10, color="tab:blue")
        ax.axhline(0.0, color="black", lw=0.8)
        if name in fit.law.positive_inputs():
            ax.set_xscale("log")
        ax.set(xlabel=name, ylabel=f"residual ({fit.law.space})")
    fig.suptitle(f"{fit.law.name} residuals")
    fig.tight_layout()
    return fig


def loss_curves(curves, x: str = "tokens", y: str = "loss", size: str = "n_params", run: str = "run_id",
                envelope: Allocation | None = None) -> Figure:
    """Each run's loss curve, coloured by its size; with approach 1's envelope points (x = compute)."""
    fig, ax = _subplots()
    norm, cmap = _size_colors(ax, curves[size])
    for _, g in curves.sort_values(x).groupby(run, sort=False):
        ax.plot(g[x], g[y], color=cmap(norm(g[size].iloc[0])), lw=1)
    if envelope is not None:
        ax.scatter(envelope.flops, envelope.loss_points, s=10, color="crimson", zorder=3, label="envelope")
        ax.legend()
    ax.set(xscale="log", yscale="log", xlabel=x, ylabel=y, title="Loss curves")
    _colorbar(fig, ax, norm, cmap)
    return fig


def predictions(table, calib=None) -> Figure:
    """Predictions on record (lmlab.runs.predictions.load_predictions' table): each scored run's predicted
    loss and interval against the loss it reached, and the coverage of the intervals against their
    nominal level (calib: lmlab.runs.predictions.calibration of the table, computed when absent)."""
    if calib is None:
        from lmlab.runs.predictions import calibration
        calib = calibration(table)
    fig, (ax, cov) = _subplots(2, figsize=(11.0, 4.4))
    scored = table[table["state"] == "scored"]
    for inside, color, label in ((True, "tab:blue", "inside its interval"), (False, "crimson", "outside")):
        g = scored[scored["inside"].astype(bool) == inside]
        if len(g):
            ax.errorbar(g["actual"], g["predicted"], yerr=[g["predicted"] - g["lo"], g["hi"] - g["predicted"]],
                        fmt="o", color=color, capsize=3, label=label)
    span = np.array([scored[["actual", "lo"]].min().min(), scored[["actual", "hi"]].max().max()], dtype=float)
    ax.plot(span, span, color="grey", lw=1, ls="--", label="predicted = actual")
    ax.set(xlabel="actual final validation loss", ylabel="predicted loss", title="Predicted vs actual")
    ax.legend()
    cov.errorbar(calib["level"], calib["fraction"], yerr=[calib["fraction"] - calib["ci_lo"],
                                                         calib["ci_hi"] - calib["fraction"]],
                 fmt="o", color="tab:blue", capsize=3, label="fraction inside (95% binomial interval)")
    for _, row in calib.iterrows():
        cov.annotate(f"n={row['n']}", (row["level"], row["fraction"]), textcoords="offset points", xytext=(-34, 4))
    cov.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="nominal")
    low = min(0.5, float(calib["level"].min()) - 0.1) if len(calib) else 0.5
    cov.set(xlim=(low, 1.0), ylim=(0, 1.02), xlabel="nominal level", ylabel="fraction inside",
            title="Coverage vs nominal")
    cov.legend(loc="upper left")
    fig.tight_layout()
    return fig


def labelled_curves(curves: list[tuple[str, list, list]]) -> Figure:
    """Validation loss against tokens, one labelled line per run ((label, tokens, loss) each)."""
    fig, ax = _subplots(figsize=(7.4, 4.6))
    for label, tokens, loss in curves:
        ax.plot(tokens, loss, marker=".", lw=1.2, label=label)
    ax.set(xscale="log", yscale="log", xlabel="tokens", ylabel="validation loss (nats/token)", title="Loss curves")
    ax.legend(fontsize="small", ncol=2 if len(curves) > 8 else 1)
    return fig
