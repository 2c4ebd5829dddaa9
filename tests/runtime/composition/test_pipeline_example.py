"""examples/pipeline served in one process and with ``--split``: the same answers, and merged batches at the model.

In ``--split`` the batchable stage (``Classifier``) runs in its own process, so its
batch sizes are in that process's own ``/metrics`` (under its own API name,
``predict``), at the loopback URL the supervisor logs for it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

from fixtures.docker import REPO
from fixtures.servers import ProcessServer, RunningServer, Scrape

PIPELINE = f"{REPO / 'examples' / 'pipeline' / 'service.py'}:Pipeline"
CONCURRENCY = 64
#: the model's fixed cost per call (inside its 5 s admission budget): the batcher never waits on purpose,
#: rows merge while a call runs, and a busy 2-core machine spreads 64 arrivals over a second or more
MODEL_CALL = {"PIPELINE_MODEL_CALL_MS": "1000"}


def _requests() -> list[Any]:
    """Rows around each class's typical measurements, and two a stage refuses."""
    rng = random.Random(18)
    centres = [(5.0, 3.4, 1.5, 0.2), (5.9, 2.8, 4.3, 1.3), (6.6, 3.0, 5.6, 2.0)]
    rows: list[Any] = [[round(c + rng.gauss(0, 0.4), 2) for c in centre] for centre in centres for _ in range(6)]
    return [*({"measurements": row} for row in rows), {"measurements": [5.0, 3.4, 1.5]}, {"measurements": "five"}]


def _answers(server: ProcessServer, bodies: list[Any]) -> list[tuple[int, Any]]:
    answers = []
    for response in server.post_concurrently("/classify", bodies):
        body = response.json()
        # an error names the request's own id, which differs from run to run
        answers.append((response.status_code, body["error"]["message"] if response.status_code != 200 else body))
    return answers


class _SplitService(RunningServer):
    """One service of a --split server, at the loopback URL its supervisor logged."""

    def __init__(self, server: ProcessServer, name: str) -> None:
        match = re.search(rf"service {name} serves on (http://127\.0\.0\.1:\d+)", server.stderr)
        assert match, server.stderr
        self.url = match.group(1)


def _batches(scrape: Scrape) -> tuple[float, float]:
    return scrape.value("modelbundle_batch_size_sum", api="predict"), scrape.value("modelbundle_batch_size_count", api="predict")


def test_split_answers_as_one_process_and_merges_the_models_batches(serve_in_subprocess: Callable[..., Any]) -> None:
    bodies = _requests()
    with serve_in_subprocess(PIPELINE) as one_process:
        expected = _answers(one_process, bodies)
    assert [status for status, _ in expected].count(200) == len(bodies) - 2
    assert {answer["label"] for status, answer in expected if status == 200} == {"setosa", "versicolor", "virginica"}

    with serve_in_subprocess(PIPELINE, "--split", env=MODEL_CALL) as split:
        assert _answers(split, bodies) == expected
        classifier = _SplitService(split, "Classifier")
        rows_before, batches_before = _batches(classifier.scrape())
        burst = split.post_concurrently("/classify", [bodies[i % 18] for i in range(CONCURRENCY)])
        assert [r.status_code for r in burst] == [200] * CONCURRENCY
        rows, batches = _batches(classifier.scrape())
    assert rows - rows_before == CONCURRENCY
    assert CONCURRENCY / (batches - batches_before) >= 16
