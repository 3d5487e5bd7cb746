"""Task scoring throughput: lmlab.eval's batched log-likelihoods vs one request at a time (the naive
loop), on the same model and the same requests, in one process.

Prints requests/s of both and their ratio (target >= 1: batching must not cost; its gain is on
GPUs, where one request leaves the device idle, while a CPU is busy either way). The model is a
freshly initialised GPT (speed does not depend on training); requests are random token ids shaped
like cloze choices (40 context tokens, 20 choice tokens).

    .venv/bin/python bench/eval_scoring.py [--requests 512] [--size 1.3m] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from lmlab.eval.scoring import token_loglikelihoods
from lmlab.models.family import build_model


def requests_per_s(model, pairs, batch_size: int) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    logprob, _ = token_loglikelihoods(model, pairs, batch_size)
    return len(pairs) / (time.perf_counter() - start), logprob


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=512)
    parser.add_argument("--size", default="1.3m")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model({"size": args.size, "seq_len": 128}, vocab_size=4096).eval()
    rng = np.random.default_rng(0)
    pairs = [(rng.integers(0, 4096, 40).tolist(), rng.integers(0, 4096, 20).tolist()) for _ in range(args.requests)]
    requests_per_s(model, pairs[:64], 64)  # warm-up
    naive, expected = requests_per_s(model, pairs, 1)
    batched, got = requests_per_s(model, pairs, 64)
    np.testing.assert_allclose(got, expected, rtol=1e-4)  # the same numbers, faster
    print(f"one at a time: {naive:,.0f} requests/s; batched (64): {batched:,.0f} requests/s; "
          f"ratio {batched / naive:.2f} (target >= 1)")


if __name__ == "__main__":
    main()
