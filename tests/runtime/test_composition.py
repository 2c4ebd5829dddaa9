"""A composed service served in one process: dependencies called in-process, each with its own batcher."""

from __future__ import annotations

import pytest

from fixtures.services import pipeline
from fixtures.services.pipeline import POISON, Pipeline
from modelbundle.runtime import ServeConfig

CONCURRENT = 64


@pytest.fixture(scope="module")
def server(serve_in_thread):
    pipeline.EVENTS.clear()
    with serve_in_thread(Pipeline, ServeConfig(log_level="critical")) as server:
        yield server
    # after the server stopped: torn down in the reverse order, each service once
    assert pipeline.EVENTS == [
        "setup Tokens", "setup Scorer", "setup Pipeline", "teardown Pipeline", "teardown Scorer", "teardown Tokens",
    ]


def test_dependencies_are_set_up_once_first_and_the_service_is_ready(server):
    assert pipeline.EVENTS == ["setup Tokens", "setup Scorer", "setup Pipeline"]
    assert server.get("/readyz").status_code == 200


def test_async_and_sync_callers_get_the_dependencies_answers(server):
    assert server.post("/run", json={"values": [1.5, 2.0]}).json() == (1.5 + 2.0) * 2
    assert server.post("/run_sync", json={"values": [1.5, 2.0]}).json() == (1.5 + 2.0) * 3


def test_concurrent_callers_merge_in_the_dependencys_batcher(server):
    before = server.scrape()
    bodies = [{"values": [float(i), 1.0]} for i in range(CONCURRENT)]
    responses = server.post_concurrently("/run", bodies)
    assert [r.json() for r in responses] == [(i + 1.0) * 2 for i in range(CONCURRENT)]
    after = server.scrape()

    rows = after.value("modelbundle_batch_size_sum", api="Scorer.score") - before.value("modelbundle_batch_size_sum", api="Scorer.score")
    calls = after.value("modelbundle_batch_size_count", api="Scorer.score") - before.value("modelbundle_batch_size_count", api="Scorer.score")
    assert rows == CONCURRENT
    assert rows / calls >= 16, f"{calls:g} model calls for {rows:g} rows"
    # each dependency's calls are counted under its own name, apart from the entry's
    answered = after.value("modelbundle_requests_total", api="Scorer.score", status="200")
    answered -= before.value("modelbundle_requests_total", api="Scorer.score", status="200")
    assert answered == CONCURRENT
    assert after.value("modelbundle_requests_total", api="Tokens.scale", status="200") >= CONCURRENT
    assert after.value("modelbundle_requests_total", api="run", status="200") >= CONCURRENT


def test_a_row_the_dependency_fails_on_fails_only_its_request(server):
    bodies = [{"values": [float(i), 0.0]} for i in range(8)]
    bodies[3] = {"values": [POISON / 2, 0.0]}  # scaled by 2 on the way: the scorer sees POISON
    responses = server.post_concurrently("/run", bodies, headers={"X-Request-ID": "poisoned-batch"})

    bad = responses[3]
    assert bad.status_code == 500
    error = bad.json()["error"]
    assert error["type"] == "dependency_error"
    assert error["message"] == "dependency 'Scorer' failed in score: ValueError: poisoned row"
    for i, response in enumerate(responses):
        if i != 3:
            assert response.status_code == 200, response.text
            assert response.json() == i * 2.0


@pytest.mark.parametrize(
    ("mistake", "fragment"),
    [
        ("unknown", "Pipeline.tokens.scale(values: list[float], factor: float = 2.0) -> list[float]: got an unexpected keyword argument 'valuez'"),
        ("missing", "Pipeline.tokens.scale(values: list[float], factor: float = 2.0) -> list[float]: missing a required argument: 'values'"),
        ("type", "Pipeline.tokens.scale: values: "),
    ],
)
def test_a_wrong_argument_to_a_dependency_fails_at_the_call(server, mistake, fragment):
    response = server.post("/call_wrongly", json={"mistake": mistake})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "invalid_input"
    assert error["message"].startswith(fragment), error["message"]
    if mistake == "type":
        assert "list" in error["message"]


def test_a_dependencys_streams_are_iterators_for_sync_and_async_callers(server):
    expected = [0, 1, 2, 3, 3, 2, 1, 0]
    assert server.post("/count_async", json={"n": 4}).json() == expected
    assert server.post("/count_sync", json={"n": 4}).json() == expected
