"""A composed service beyond one server's own loop: request ids across hops, and calls from other loops.

The first test serves ``fixtures/services/pipeline.py`` with ``bundle serve``
and reads its JSON log; the others set the graph up as ``modelbundle.load``
does (dependencies on a loop in a thread of their own) and call it the ways a
notebook does.
"""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from fixtures.services.pipeline import Pipeline
from modelbundle.runtime import start_in_background


def test_the_entry_requests_id_reaches_the_dependencys_log_lines(serve_in_subprocess):
    with serve_in_subprocess("pipeline.py:Pipeline", "--access-log", "--log-format", "json") as server:
        for path in ("/run", "/run_sync"):
            response = server.post(path, json={"values": [1.0, 2.0]}, headers={"X-Request-ID": f"hop-{path[1:]}"})
            assert response.status_code == 200, response.text
            assert response.headers["x-request-id"] == f"hop-{path[1:]}"
        assert server.stop() == 0
    lines = [json.loads(line) for line in server.stderr.splitlines() if line.startswith("{")]
    # Tokens.scale logs with its own logger from its own worker thread: each line carries its entry request's id
    # (request ids reach log lines through the access log's record, so it is on, as it is by default)
    scaled = [line["request_id"] for line in lines if line["logger"] == "pipeline.tokens"]
    assert scaled == ["hop-run", "hop-run_sync"], server.stderr


@pytest.fixture(scope="module")
def loaded() -> Pipeline:
    """The graph set up as ``modelbundle.load`` sets it up: dependencies on a background loop."""
    instance = Pipeline()
    start_in_background(Pipeline, instance, {})
    instance.setup()
    return instance


def test_a_sync_api_answers_on_a_plain_thread_and_on_a_thread_running_a_loop(loaded: Pipeline) -> None:
    expected = (1.5 + 2.0) * 3
    assert loaded.run_sync([1.5, 2.0]) == expected
    assert loaded.count_sync(3) == [0, 1, 2, 2, 1, 0]

    async def notebook_cell() -> tuple[float, list[int]]:
        # a sync API called from code on a running loop (a Jupyter cell): it must get answers, not coroutines
        return loaded.run_sync([1.5, 2.0]), loaded.count_sync(3)

    assert asyncio.run(notebook_cell()) == (expected, [0, 1, 2, 2, 1, 0])


def test_async_apis_awaited_on_another_loop_use_the_dependencies_batchers(loaded: Pipeline) -> None:
    async def notebook_cell() -> list[float]:
        return list(await asyncio.gather(*(loaded.run([float(i), 1.0]) for i in range(8))))

    assert asyncio.run(notebook_cell()) == [(i + 1.0) * 2 for i in range(8)]
    assert asyncio.run(loaded.count_async(3)) == [0, 1, 2, 2, 1, 0]

    # and from a second thread with a loop of its own, at the same time as this one's
    answers: list[float] = []
    thread = threading.Thread(target=lambda: answers.append(asyncio.run(loaded.run([4.0, 4.0]))))
    thread.start()
    here = asyncio.run(loaded.run([1.0, 1.0]))
    thread.join()
    assert (here, answers) == (4.0, [16.0])
