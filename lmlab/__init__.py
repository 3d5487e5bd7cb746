"""lmlab: train families of small GPTs, record every run, fit scaling laws, plan the big run."""

__version__ = "0.1.0"

from pathlib import Path as _Path

# lmlab's Hydra configs, inside the package (in a checkout, lmlab/conf links to the top-level conf/).
CONF_DIR = _Path(__file__).resolve().parent / "conf"
