"""Scaling-law analysis: laws, fitting, bootstrap, extrapolation tests, planning and figures.

  laws         the laws (Kaplan, Chinchilla, Gadre et al., OLMo ladder, per-run curve) as data
  solver       many L-BFGS problems in one batch (multi-start grids, bootstrap resamples)
  objective    the summed Huber loss on log (or plain) residuals
  fit          fit_law, bootstrap, predict_interval, Fit
  approaches   Chinchilla approaches 1 (curve envelope) and 2 (IsoFLOP parabolas)
  allocation   compute-optimal N and D (closed form for Chinchilla), power laws
  holdout      the extrapolation testbed
  diagnostics  residual summaries
  forecast     a run's final loss from its partial curve; compute-efficient stopping
  plan         the planned run and its Hydra experiment config
  study        study tables and the columns that feed a law
  fitjson      the fit file
  plots        figures (PNG and SVG)
  cli_fit, cli_plan, cli_predict   the `lmlab fit | plan | predict` commands

Nothing is imported here, so `lmlab --help` stays fast.
"""
