"""Iris species from four measurements, with a scikit-learn model trained by train.py."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from numpy.typing import NDArray

from modelbundle import Artifact, Service, Shape, api


class IrisClassifier(Service):
    """Rows of (sepal length, sepal width, petal length, petal width) in cm -> class ids 0, 1, 2."""

    name = "iris"
    #: written by train.py; `bundle build` copies it into the bundle and records the scikit-learn version
    model = Artifact("sklearn", path="model.joblib")

    @api(batchable=True, max_batch_size=128, max_latency_ms=500)
    def predict(self, x: Annotated[NDArray[np.float64], Shape(-1, 4)]) -> NDArray[np.int64]:
        """The predicted class id of each row."""
        return self.model.predict(x).astype(np.int64)
