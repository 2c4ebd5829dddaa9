"""Iris species from four measurements, with a scikit-learn model trained by train.py."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import joblib
import numpy as np
from numpy.typing import NDArray

from modelbundle import Service, Shape, api

MODEL_PATH = Path(os.environ.get("IRIS_MODEL_PATH", Path(__file__).with_name("model.joblib")))


class IrisClassifier(Service):
    """Rows of (sepal length, sepal width, petal length, petal width) in cm -> class ids 0, 1, 2."""

    def setup(self) -> None:
        if not MODEL_PATH.exists():
            raise FileNotFoundError(f"{MODEL_PATH} not found; run `python examples/iris/train.py` first")
        self.model = joblib.load(MODEL_PATH)

    @api(batchable=True, max_batch_size=128, max_latency_ms=500)
    def predict(self, x: Annotated[NDArray[np.float64], Shape(-1, 4)]) -> NDArray[np.int64]:
        """The predicted class id of each row."""
        return self.model.predict(x).astype(np.int64)
