"""Bootstrap intervals over units (documents, templates) for the statistics of an audit."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lmlab.eval.schemes import bootstrap_indices, percentile_interval

CHUNK = 200  # resamples drawn at once: bounds memory at CHUNK x units indices


def bootstrap(statistic: Callable[[np.ndarray], np.ndarray], n_units: int, n_boot: int, seed: int) -> np.ndarray:
    """statistic(index) for n_boot resamples of the units with replacement; index is [resamples, units]
    and statistic returns one row per resample ([resamples] or [resamples, k])."""
    out = [statistic(bootstrap_indices(n_units, max(10, min(CHUNK, n_boot - start)), seed + start))
           for start in range(0, n_boot, CHUNK)]
    return np.concatenate(out)[:n_boot]


def interval(samples: np.ndarray, confidence: float) -> list[float | None]:
    """The percentile interval of the finite bootstrap values (None, None when there are none)."""
    samples = np.asarray(samples, dtype=float)
    samples = samples[np.isfinite(samples)]
    return percentile_interval(samples, confidence) if len(samples) else [None, None]
