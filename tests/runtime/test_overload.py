"""Overload, timeouts and the concurrency cap: refuse with 503/504 fast, stay bounded, recover."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from fixtures.services import gated
from fixtures.services.cold_start import ColdStart
from fixtures.services.overload import MAX_BATCH_SIZE
from fixtures.services.slow import Slow
from modelbundle.runtime import ServeConfig
from modelbundle.runtime._batcher import MAX_QUEUED_BATCHES

FLOOD = 200


def _assert_error(response, status: int, error_type: str, fragment: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == error_type
    assert fragment in error["message"]
    assert error["request_id"] == response.headers["x-request-id"]


def _assert_overloaded(response) -> None:
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    error = response.json()["error"]
    assert error["type"] == "overloaded"
    assert "predict" in error["message"]
    assert error["request_id"] == response.headers["x-request-id"]


def _until_ok(server, path: str, body, timeout: float = 10.0):
    """The first 200 for ``body``: a worker thread may still be busy with a timed-out call."""
    deadline = time.monotonic() + timeout
    while True:
        response = server.post(path, json=body)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


def test_a_flood_gets_503s_with_retry_after_and_the_queue_stays_bounded(serve_in_subprocess):
    # a separate process, so that the flooding client and the server do not share a GIL
    with serve_in_subprocess("overload.py:Overload") as server:
        with server.client() as client:  # a few calls first, so the latency model has data
            for i in range(5):
                assert client.post("/predict", json=[[i]]).json() == [[i + 1]]
        depths: list[float] = []
        stop = threading.Event()

        def sample_queue_depth() -> None:
            with server.client() as client:
                while not stop.is_set():
                    depths.append(server.scrape(client).value("modelbundle_queue_depth", api="predict"))
                    time.sleep(0.005)

        sampler = threading.Thread(target=sample_queue_depth)
        sampler.start()
        try:
            waves = [server.post_concurrently("/predict", [[[i]] for i in range(FLOOD)]) for _ in range(2)]
        finally:
            stop.set()
            sampler.join()

        for responses in waves:
            statuses = Counter(r.status_code for r in responses)
            assert set(statuses) == {200, 503}, statuses
            for i, response in enumerate(responses):
                if response.status_code == 200:
                    assert response.json() == [[i + 1]]
                else:
                    _assert_overloaded(response)
        assert 0 < max(depths) <= MAX_QUEUED_BATCHES * MAX_BATCH_SIZE

        response = server.post("/predict", json=[[41]])
        assert response.status_code == 200
        assert response.json() == [[42]]
        assert server.scrape().value("modelbundle_queue_depth", api="predict") == 0


def test_the_queue_is_capped_even_before_latency_is_known(serve_in_thread):
    # the model is held on its very first call, so no latency estimate exists yet: only the
    # hard cap of MAX_QUEUED_BATCHES batches of rows stands between the flood and memory
    cap = MAX_QUEUED_BATCHES * gated.MAX_BATCH_SIZE
    extra = 12
    with serve_in_thread(gated.Gated, ServeConfig(log_level="critical")) as server:
        hold, responses = server.post_while_held("predict", [[gated.HOLD]], [[[i]] for i in range(cap + extra)])

        assert hold.json() == [[gated.HOLD + 1]]
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {200: cap, 503: extra}
        for i, response in enumerate(responses):
            if response.status_code == 200:
                assert response.json() == [[i + 1]]
            else:
                _assert_overloaded(response)
                assert f"the queue of predict is full ({cap} rows waiting)" in response.json()["error"]["message"]
        assert server.scrape().value("modelbundle_queue_depth", api="predict") == 0


def test_an_idle_api_serves_again_after_one_slow_call(serve_in_thread):
    with serve_in_thread(ColdStart, ServeConfig(log_level="critical")) as server, server.client() as client:
        assert client.post("/predict", json=[[1]]).json() == [[2]]  # the slow warm-up call

        # one at a time: the model is idle each time, so there is nothing to wait behind
        statuses = [client.post("/predict", json=[[i]]).status_code for i in range(5)]
        assert statuses == [200] * 5


@pytest.fixture(scope="module")
def timeout_server(serve_in_thread):
    with serve_in_thread(Slow, ServeConfig(timeout=0.3, log_level="critical")) as server:
        yield server


@pytest.mark.parametrize(
    ("path", "slow", "fast", "answer"),
    [
        pytest.param("/sleep", {"seconds": 1.0}, {"seconds": 0}, 0, id="sync"),
        pytest.param("/asleep", {"seconds": 1.0}, {"seconds": 0}, 0, id="async"),
        pytest.param("/bsleep", [1.0], [0], [0], id="batched"),
    ],
)
def test_a_request_past_the_timeout_gets_504_and_the_server_stays_up(timeout_server, path, slow, fast, answer):
    api = path.lstrip("/")
    _assert_error(timeout_server.post(path, json=slow), 504, "timeout", f"{api} did not answer within 0.3 s")

    response = _until_ok(timeout_server, path, fast)
    assert response.status_code == 200
    assert response.json() == answer
    assert timeout_server.get("/livez").status_code == 200


def test_requests_past_max_concurrency_get_503(serve_in_thread):
    with serve_in_thread(Slow, ServeConfig(max_concurrency=2, log_level="critical")) as server:
        responses = server.post_concurrently("/asleep", [{"seconds": 0.5}] * 6)

        statuses = Counter(r.status_code for r in responses)
        assert statuses[503] >= 1 and statuses[200] >= 1 and statuses[200] + statuses[503] == 6, statuses
        for response in responses:
            if response.status_code == 503:
                _assert_error(response, 503, "overloaded", "more than 2 requests in flight")
                assert response.headers["retry-after"] == "1"
        assert server.post("/asleep", json={"seconds": 0}).status_code == 200
