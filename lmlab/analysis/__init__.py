"""Scaling-law analysis: laws, fitting, bootstrap, extrapolation tests, planning and figures.

  laws           the laws (Kaplan, Chinchilla, Gadre et al., OLMo ladder, per-run curve) as data
  solver         many L-BFGS problems in one batch (multi-start grids, bootstrap resamples)
  objective      the summed Huber loss on log (or plain) residuals; over-estimate penalty
  fit            fit_law, bootstrap (by run, weights, pinned rows), parameter_interval, Fit
  extrapolation  the default interval: backtest-calibrated, holds when extrapolating
  synthetic      ladders whose truth is not of the fitted form, to measure interval coverage
  approaches     Chinchilla approaches 1 (curve envelope) and 2 (IsoFLOP parabolas)
  compare        approaches 2, 3, variable projection and pinned E side by side
  groups         per-group fits, optionally sharing E
  allocation     compute-optimal N and D (closed form for Chinchilla), power laws
  holdout        the extrapolation testbed
  diagnostics    residual summaries and the guard-rail warnings of a fit
  curve_law      a loss-curve law that knows the learning-rate schedule (Tissue et al. 2024)
  forecast       a run's final loss from its partial curve; compute-efficient stopping
  frontier       the compute-efficient frontier of a study's curves (`lmlab frontier`)
  plan           the planned run and its Hydra experiment config
  study          the columns of a study table that feed a law
  fitjson        the fit file
  plots          figures (PNG and SVG); `plots.predictions` draws the predictions on record, which
                 lmlab.runs.predictions.load_predictions / calibration load from run directories
  reference      public reference data shipped in the package (Chinchilla points, IsoFLOP studies)
  cli_fit, cli_plan, cli_predict, cli_frontier   the `lmlab fit | plan | predict | frontier` commands

Nothing is imported here, so `lmlab --help` stays fast.
"""
