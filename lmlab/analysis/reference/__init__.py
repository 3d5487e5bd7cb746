"""Public reference data shipped with lmlab, each folder with a README giving its provenance.

  chinchilla/svg_extracted_data.csv   Hoffmann et al. 2022 Figure 4 points (Epoch AI's digitisation)
  isoflops/isoflops.csv               nine published IsoFLOP studies (Open-Athena's transcription)

The files live inside the package (shipped as package data), so a non-editable install has them.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _path(*parts: str) -> Path:
    return Path(str(files(__name__).joinpath(*parts)))


def chinchilla_path() -> Path:
    """The 245 Chinchilla points (columns `Model Size`, `Training FLOP`, `loss`)."""
    return _path("chinchilla", "svg_extracted_data.csv")


def isoflops_path() -> Path:
    """The published IsoFLOP studies (one per `experiment`; columns params, tokens, budget, loss, outlier)."""
    return _path("isoflops", "isoflops.csv")
