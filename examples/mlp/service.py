"""A numpy-only 64 -> 256 -> 10 MLP with fixed seeded weights, served with micro-batching.

``MLP_CALL_OVERHEAD_MS`` (default 2) adds a fixed CPU cost to every call, the
way a framework's dispatch, kernel launch or session.run costs the same
whether a call carries one row or sixty-four. It burns CPU (hashing a buffer,
which like framework kernels releases the GIL) rather than sleeping.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Annotated

import numpy as np
from numpy.typing import NDArray

from modelbundle import Service, Shape, api

INPUT_DIM, HIDDEN_DIM, OUTPUT_DIM = 64, 256, 10
_BURN_BUFFER = bytes(16 * 1024)


def burn_cpu(milliseconds: float) -> None:
    """Keep a core busy for ``milliseconds`` (a fixed per-call cost, not a sleep)."""
    end = time.perf_counter() + milliseconds / 1000.0
    while time.perf_counter() < end:
        hashlib.sha256(_BURN_BUFFER).digest()


def make_weights(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((INPUT_DIM, HIDDEN_DIM)).astype(np.float32) / np.sqrt(INPUT_DIM)
    w2 = rng.standard_normal((HIDDEN_DIM, OUTPUT_DIM)).astype(np.float32) / np.sqrt(HIDDEN_DIM)
    return w1, w2


class MLP(Service):
    """A two-layer perceptron: rows of 64 floats in, 10 scores per row out."""

    def setup(self) -> None:
        self.w1, self.w2 = make_weights()
        self.overhead_ms = float(os.environ.get("MLP_CALL_OVERHEAD_MS", "2"))

    @api(batchable=True, max_batch_size=64, max_latency_ms=1000)
    def predict(self, x: Annotated[NDArray[np.float32], Shape(-1, INPUT_DIM)]) -> NDArray[np.float32]:
        """Scores for each row of ``x`` (shape N x 64)."""
        if self.overhead_ms:
            burn_cpu(self.overhead_ms)
        return np.maximum(x @ self.w1, 0) @ self.w2
