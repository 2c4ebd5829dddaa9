"""A tiny batched service for the Ray tests: rows times FACTOR, after a short pause (so requests are in flight).

The tests build it twice, with FACTOR 2 and then 3, to roll out a new version
and tell from each answer which version served it.
"""

from __future__ import annotations

import time
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
