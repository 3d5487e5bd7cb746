"""Hyperparameter search (lmlab-train -m hparams_search=...), pruning, results, muP checks and tuned-rung checks."""
