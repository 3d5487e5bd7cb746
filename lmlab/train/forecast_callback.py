"""The live forecast of a run's final validation loss, and stopping a run that cannot reach a target.

After each validation past `forecast.after` of the planned steps, the schedule-aware curve law
(lmlab.analysis.forecast.forecast_curve) is fitted to the run's validation points so far and the
completed runs of its size in its group; the forecast goes to the progress bar and the log. With
`forecast.stop_above`, a run whose whole forecast interval lies above that loss stops; the run
then records status `stopped_early`, the reason and the forecast (result.json "forecast").
Every rank computes the same forecast from the same points, so all stop together.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from lmlab.errors import ConfigError, LmlabError
from lmlab.train.callbacks import OnStep

log = logging.getLogger("lmlab.train")


def check_forecast_config(cfg: dict) -> None:
    after, stop, resamples = cfg["after"], cfg["stop_above"], cfg["resamples"]
    if resamples < 2:
        raise ConfigError(f"forecast.resamples={resamples!r}: expected a whole number >= 2 (bootstrap resamples)")
    if not 0.0 < after <= 1.0:
        raise ConfigError(f"forecast.after={after!r}: expected a fraction of the planned steps in (0, 1]")
    if stop is not None and not stop > 0:
        raise ConfigError(f"forecast.stop_above={stop!r}: expected a positive loss (nats per token) or null")


def live_forecast(cfg: dict, spec, record, latest) -> "LiveForecast | None":
    """The callback for a run (cfg: the resolved config; spec: its RunSpec), or None when the
    forecast is neither shown nor used to stop."""
    from lmlab.analysis.curve_law import Curve, run_lrs

    f = cfg["forecast"]
    check_forecast_config(f)
    if not f["show"] and f["stop_above"] is None:
        return None
    lrs = run_lrs(cfg, spec)
    curve = Curve(spec.run_id, np.zeros(0, dtype=int), np.zeros(0), lrs, spec.budget.tokens_per_step, spec.n_params)
    return LiveForecast(latest, curve, record, f)


class LiveForecast(OnStep):
    """`latest()` gives the last (step, val_loss) (ValidationMilestones.last); `curve` is the run's
    Curve (schedule, size) with no points yet; `record` is its RunRecord (earlier points on resume)."""

    def __init__(self, latest, curve, record, cfg: dict):
        super().__init__()
        self.latest, self.curve, self.record, self.cfg = latest, curve, record, cfg
        self.points: dict[int, float] = {}
        self.study: list = []
        self.checked_step: int | None = None
        self.last: dict | None = None       # the latest forecast (Forecast.to_json()), for result.json
        self.reason: str | None = None

    def on_train_start(self, trainer, module) -> None:
        from lmlab.analysis.forecast import study_curves
        from lmlab.io import read_jsonl

        if self.record.metrics_path.exists():  # a resumed run's earlier validations
            self.points.update({r["step"]: r["val_loss"] for r in read_jsonl(self.record.metrics_path)
                                if "val_loss" in r and r["step"] <= trainer.global_step})
        if self.cfg["study"]:
            self.study = study_curves(self.record.dir)

    def on_step(self, trainer, module) -> None:
        last = self.latest()
        if last is None or last[0] == self.checked_step:
            return
        self.checked_step = last[0]
        self.points[last[0]] = last[1]
        if last[0] < self.cfg["after"] * self.curve.total_steps:
            return
        fc = self.forecast()
        if fc is None:
            return
        self.last = {**fc.to_json(), "step": last[0]}
        module.log("forecast", fc.loss, prog_bar=True, logger=False)
        if trainer.is_global_zero:
            log.info("step %d  forecast final validation loss %.4f (%.0f%% interval %.4f - %.4f)",
                     last[0], fc.loss, 100 * self.last["level"], fc.lo, fc.hi)
        target = self.cfg["stop_above"]
        if target is not None and fc.hopeless(target):
            self.reason = (f"forecast stop at step {last[0]}: final validation loss forecast {fc.loss:.4f} "
                           f"(interval {fc.lo:.4f} - {fc.hi:.4f}) lies wholly above forecast.stop_above={target:g}")
            trainer.should_stop = True

    def forecast(self):
        """The forecast from the points so far, or None while the law cannot be fitted yet."""
        from lmlab.analysis.curve_law import Curve
        from lmlab.analysis.forecast import forecast_curve

        steps = np.array(sorted(self.points), dtype=int)
        c = self.curve
        now = Curve(c.run_id, steps, np.array([self.points[s] for s in steps]), c.lrs, c.tokens_per_step,
                    c.n_params, "running")
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")  # a fit that did not converge: the interval says how loose it is
                return forecast_curve(now, study=self.study, n_resamples=self.cfg["resamples"])
        except LmlabError as err:
            log.debug("no forecast at step %d: %s", steps[-1], err)
            return None

    def result_fields(self) -> dict:
        return {"forecast": self.last} if self.last else {}
