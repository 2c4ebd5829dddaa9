"""A tiny batched service for the Ray tests: rows times FACTOR, after a short pause (so requests are in flight).

The tests build it twice, with FACTOR 2 and then 3, to roll out a new version
and tell from each answer which version served it. ``count`` streams (through
Serve's proxy) and ``scale`` is a WebSocket.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import numpy as np
from numpy.typing import NDArray

from modelbundle import Service, Shape, api

FACTOR = 2.0
PAUSE_S = 0.02


class Scaler(Service):
    name = "scaler"

    @api(batchable=True, max_batch_size=32, max_latency_ms=5000)
    def predict(self, x: Annotated[NDArray[np.float64], Shape(-1, 2)]) -> NDArray[np.float64]:
        time.sleep(PAUSE_S)
        return x * FACTOR

    @api
    def count(self, n: int, pause_ms: float = 0) -> Iterator[float]:
        """FACTOR * 1, FACTOR * 2, ... FACTOR * n, one item every ``pause_ms``."""
        for i in range(1, n + 1):
            time.sleep(pause_ms / 1000)
            yield i * FACTOR

    @api(websocket=True)
    async def scale(self, messages: AsyncIterator[float]) -> AsyncIterator[float]:
        async for value in messages:
            yield value * FACTOR
