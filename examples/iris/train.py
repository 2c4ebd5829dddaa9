"""Train a logistic regression on the iris data set (bundled with scikit-learn) and save it."""

from __future__ import annotations

import sys
from pathlib import Path

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

MODEL_PATH = Path(__file__).with_name("model.joblib")


def train(path: Path = MODEL_PATH) -> Path:
    data = load_iris()
    model = LogisticRegression(max_iter=1000).fit(data.data, data.target)
    joblib.dump(model, path)
    return path


if __name__ == "__main__":
    out = train(Path(sys.argv[1]) if len(sys.argv) > 1 else MODEL_PATH)
    print(f"saved {out}")
