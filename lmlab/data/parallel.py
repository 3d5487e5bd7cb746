"""How many worker processes a `datasets.map` deserves: forking costs more than it saves on small tables."""

from __future__ import annotations

BYTES_PER_PROC = 4 << 20


def procs_for(ds, num_proc: int) -> int | None:
    """`num_proc` for `Dataset.map`/`filter` over `ds` (None means in this process)."""
    n = min(int(num_proc), int(ds.data.nbytes // BYTES_PER_PROC), len(ds))
    return n if n > 1 else None
