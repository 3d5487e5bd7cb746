"""The cost of verifying shards at load (sha256 and token ids, lmlab's default) against loading them
unverified, in the same run: the first load of a file version reads every byte; a later load (another
process: the stamp in $LMLAB_CACHE_DIR) reads only metadata and the stamps file (target: under 1% of the
first load; in absolute terms about a millisecond more than an unverified load).

    .venv/bin/python bench/shard_verify.py [--tokens 5e7] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from lmlab.data import shards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=float, default=5e7, help="tokens in the corpus (uint16)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LMLAB_CACHE_DIR"] = str(Path(tmp) / "cache")
        n = int(args.tokens)
        writer = shards.ShardWriter(Path(tmp), "train", "uint16", 1 << 24)
        rng = np.random.default_rng(0)
        for start in range(0, n, 1 << 22):
            writer.write(rng.integers(0, 50257, size=min(1 << 22, n - start), dtype=np.uint16))
        shards.write_manifest(Path(tmp), {"vocab_size": 50257, "dtype": "uint16", "eot_id": 0, "tokenizer_sha256": "-",
                                          "splits": {"train": {"tokens": n, "documents": 1, "shards": writer.close()}}})
        first = _seconds(lambda: shards.open_split(tmp, "train"))
        plain, stamped = float("inf"), float("inf")
        for _ in range(args.repeats):  # interleaved, best of each
            plain = min(plain, _seconds(lambda: shards.open_split(tmp, "train", verify=False)))
            shards._verified.clear()  # as a new process would: only the stamps file
            stamped = min(stamped, _seconds(lambda: shards.open_split(tmp, "train")))
    print(f"corpus: {n:.3g} tokens in {len(writer.shards)} shards ({2 * n / 1e6:.0f} MB)")
    print(f"first verified load (full pass): {first:.3f} s ({2 * n / 1e6 / first:.0f} MB/s)")
    print(f"unverified load:                 {plain * 1e3:.2f} ms")
    print(f"verified load from the stamp:    {stamped * 1e3:.2f} ms")
    print(f"ratio stamped / first load:      {stamped / first:.4f} (target <= 0.01)")
    print(f"ratio stamped / unverified:      {stamped / plain:.2f}")


def _seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
