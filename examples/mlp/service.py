"""A numpy-only 64 -> 256 -> 10 MLP with fixed seeded weights, served with micro-batching.

``MLP_CALL_OVERHEAD_MS`` (default 2) adds a fixed CPU cost to every call, the
way a framework's dispatch, kernel launch or session.run costs the same
whether a call carries one row or sixty-four. It burns CPU rather than
sleeping: a fixed amount of work (hashing a buffer, which like framework
kernels releases the GIL), calibrated once to take that long on an idle core,
so that calls running side by side on busy cores take longer, as real work does.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from typing import Annotated

import numpy as np
from numpy.typing import NDArray

from modelbundle import Service, Shape, api

INPUT_DIM, HIDDEN_DIM, OUTPUT_DIM = 64, 256, 10
_BURN_BUFFER = bytes(16 * 1024)


@functools.cache
def _hashes_per_ms() -> float:
    """How many buffer hashes one idle core does per millisecond (the best of a few tries).

    ``MLP_HASHES_PER_MS`` sets it instead: a benchmark comparing two servers gives both the same
    figure, so that their calls do the same work however busy the machine was at each start.
    """
    if os.environ.get("MLP_HASHES_PER_MS"):
        return float(os.environ["MLP_HASHES_PER_MS"])
    best = 0.0
    for _ in range(5):
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < 0.02:
            hashlib.sha256(_BURN_BUFFER).digest()
            count += 1
        best = max(best, count / (elapsed * 1000))
    return best


def burn_cpu(milliseconds: float) -> None:
    """Do ``milliseconds`` worth of CPU work (a fixed per-call cost, not a sleep)."""
    for _ in range(round(milliseconds * _hashes_per_ms())):
        hashlib.sha256(_BURN_BUFFER).digest()


def make_weights(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # divide before casting: float32 / np.float64 would promote the weights back to float64
    w1 = (rng.standard_normal((INPUT_DIM, HIDDEN_DIM)) / np.sqrt(INPUT_DIM)).astype(np.float32)
    w2 = (rng.standard_normal((HIDDEN_DIM, OUTPUT_DIM)) / np.sqrt(HIDDEN_DIM)).astype(np.float32)
    return w1, w2


class MLP(Service):
    """A two-layer perceptron: rows of 64 floats in, 10 scores per row out."""

    def setup(self) -> None:
        self.w1, self.w2 = make_weights()
        self.overhead_ms = float(os.environ.get("MLP_CALL_OVERHEAD_MS", "2"))
        burn_cpu(self.overhead_ms)  # calibrates the burn before the first request

    @api(batchable=True, max_batch_size=64, max_latency_ms=1000)
    def predict(self, x: Annotated[NDArray[np.float32], Shape(-1, INPUT_DIM)]) -> NDArray[np.float32]:
        """Scores for each row of ``x`` (shape N x 64)."""
        if self.overhead_ms:
            burn_cpu(self.overhead_ms)
        return np.maximum(x @ self.w1, 0) @ self.w2
