"""Studies: a ladder's runs launched, collected, fitted, checked on the held-out largest size and
turned into a plan, in one folder (`lmlab study LADDER`).

runner.py launches the ladder's sweeps and reports each finished run; analyse.py collects, fits,
holds out and plans through lmlab.runs and lmlab.analysis; report.py writes report.md and the
summary printed at the end.
"""
