"""Iris with two APIs, for the SageMaker image tests: ``predict`` (the default) and ``proba``."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from numpy.typing import NDArray

from modelbundle import Artifact, Service, Shape, api


class IrisPair(Service):
    name = "iris-pair"
    model = Artifact("sklearn", path="model.joblib")

    @api(batchable=True, max_batch_size=128, max_latency_ms=500)
    def predict(self, x: Annotated[NDArray[np.float64], Shape(-1, 4)]) -> NDArray[np.int64]:
        """The class of each row."""
        return self.model.predict(x).astype(np.int64)

    @api
    def proba(self, x: Annotated[NDArray[np.float64], Shape(-1, 4)]) -> NDArray[np.float64]:
        """The probability of each class, per row."""
        return self.model.predict_proba(x)
