"""The baseline of pipeline_bench.py: examples/pipeline's three stages as plain function calls in one service.

The same arithmetic (the Standardizer's statistics, the Classifier's seeded weights,
the label, the model's per-call cost), with no ``depends``, no handles and no batcher between the stages: what
composition is measured against.
"""

from __future__ import annotations

import os
import time

import numpy as np
from pydantic import BaseModel

from modelbundle import Service, api

LABELS = ("setosa", "versicolor", "virginica")
MEAN = (5.84, 3.06, 3.76, 1.20)
STD = (0.83, 0.43, 1.76, 0.76)
PROTOTYPES = [[-1.0, 0.9, -1.3, -1.2], [0.0, -1.5, 0.3, 0.1], [1.0, -0.1, 1.0, 1.1]]


class Label(BaseModel):
    label: str
    confidence: float


def standardize(measurements: list[float]) -> list[float]:
    if len(measurements) != 4:
        raise ValueError(f"expected 4 measurements, got {len(measurements)}")
    return [(x - m) / s for x, m, s in zip(measurements, MEAN, STD, strict=True)]


def predict(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    logits = x @ weights
    logits -= logits.max(axis=1, keepdims=True)
    odds = np.exp(logits)
    return odds / odds.sum(axis=1, keepdims=True)


class PlainPipeline(Service):
    """One service, one API: standardize, predict and label in one call."""

    name = "pipeline-plain"

    def setup(self) -> None:
        rng = np.random.default_rng(7)
        self.weights = np.array(PROTOTYPES).T + rng.normal(0.0, 0.05, size=(4, 3))
        self.call_seconds = float(os.environ.get("PIPELINE_MODEL_CALL_MS", "2")) / 1000

    @api
    def classify(self, measurements: list[float]) -> Label:
        time.sleep(self.call_seconds)  # the model's fixed cost per call, as in examples/pipeline; one row a call here
        probabilities = predict(np.array([standardize(measurements)]), self.weights)[0]
        best = int(probabilities.argmax())
        return Label(label=LABELS[best], confidence=round(float(probabilities[best]), 4))
