"""A three-stage pipeline: preprocessing, a batchable model, post-processing (the entry).

    bundle serve examples/pipeline/service.py:Pipeline
    curl -s http://127.0.0.1:3000/classify -H 'Content-Type: application/json' \
        -d '{"measurements": [5.1, 3.5, 1.4, 0.2]}'

The three services run in one process; each keeps its own micro-batcher, so
concurrent requests to ``classify`` reach ``Classifier.predict`` merged.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel

from modelbundle import Service, Shape, api, depends

LABELS = ("setosa", "versicolor", "virginica")


class Standardizer(Service):
    """Preprocessing: centre and scale the four measurements (fixed statistics, as fitted offline)."""

    MEAN = (5.84, 3.06, 3.76, 1.20)
    STD = (0.83, 0.43, 1.76, 0.76)

    @api
    def standardize(self, measurements: list[float]) -> list[float]:
        if len(measurements) != 4:
            raise ValueError(f"expected 4 measurements, got {len(measurements)}")
        return [(x - m) / s for x, m, s in zip(measurements, self.MEAN, self.STD, strict=True)]


class Classifier(Service):
    """The model: a linear layer and a softmax, batchable, its weights drawn from a fixed seed in setup()."""

    def setup(self) -> None:
        rng = np.random.default_rng(7)
        prototypes = np.array([[-1.0, 0.9, -1.3, -1.2], [0.0, -1.5, 0.3, 0.1], [1.0, -0.1, 1.0, 1.1]])
        self.weights = prototypes.T + rng.normal(0.0, 0.05, size=(4, 3))

    @api(batchable=True, max_batch_size=64, max_latency_ms=1000)
    def predict(self, x: Annotated[NDArray[np.float64], Shape(-1, 4)]) -> NDArray[np.float64]:
        logits = x @ self.weights
        logits -= logits.max(axis=1, keepdims=True)
        odds = np.exp(logits)
        return odds / odds.sum(axis=1, keepdims=True)


class Label(BaseModel):
    label: str
    confidence: float


class Pipeline(Service):
    """The entry: standardize, classify (merged with concurrent requests), name the label."""

    name = "pipeline"
    standardizer = depends(Standardizer)
    classifier = depends(Classifier)

    @api
    async def classify(self, measurements: list[float]) -> Label:
        features = await self.standardizer.standardize(measurements)
        probabilities = (await self.classifier.predict(np.array([features])))[0]
        best = int(probabilities.argmax())
        return Label(label=LABELS[best], confidence=round(float(probabilities[best]), 4))
