"""lmlab: train families of small GPTs, record every run, fit scaling laws, plan the big run."""

__version__ = "0.1.0"
