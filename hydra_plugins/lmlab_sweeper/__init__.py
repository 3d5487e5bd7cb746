"""lmlab's Hydra sweeper: hyperparameter search on Optuna's ask-and-tell interface (lmlab.tune.sweep)."""
