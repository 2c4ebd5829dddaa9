"""Two APIs for the SageMaker protocol tests: ``label`` (the default: declared first) and ``scores``.

``SETUP_SECONDS`` in the environment makes setup() slow, ``SETUP_RAISES`` makes it fail.
"""

from __future__ import annotations

import os
import time
from typing import Annotated

import numpy as np
from numpy.typing import NDArray

from modelbundle import Service, Shape, api


class Pair(Service):
    def setup(self) -> None:
        time.sleep(float(os.environ.get("SETUP_SECONDS", "0")))
        if os.environ.get("SETUP_RAISES"):
            raise RuntimeError("no model today")

    @api(batchable=True, max_batch_size=8, max_latency_ms=1000)
    def label(self, x: Annotated[NDArray[np.float64], Shape(-1, 2)]) -> NDArray[np.int64]:
        """1 where a row sums above 0, else 0."""
        return (x.sum(axis=1) > 0).astype(np.int64)

    @api
    def scores(self, x: Annotated[NDArray[np.float64], Shape(-1, 2)]) -> NDArray[np.float64]:
        """Each row's sum, as a column."""
        return x.sum(axis=1, keepdims=True)
