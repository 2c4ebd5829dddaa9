"""Streaming APIs over a real uvicorn on loopback, read with httpx's streaming client.

SSE and NDJSON framing, errors before and after the first item, the headers that
keep proxies from buffering, sync generators off the event loop, a client that
leaves (the generator's ``finally`` runs, the stream is counted as cancelled,
nothing is logged as an error), a slow reader (the generator waits for it),
--timeout, --max-concurrency, metrics, SageMaker's /invocations and the Open
Inference Protocol.
"""

from __future__ import annotations

import json
import logging
import time

import pytest

from fixtures.services.streams import Streams
from modelbundle.runtime import ServeConfig

from ._stream_readers import parse_ndjson, parse_sse, sse_lines

SSE = {"Accept": "text/event-stream"}
ITEM_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def server(serve_in_thread):
    with serve_in_thread(Streams, ServeConfig(log_level="warning")) as running:
        yield running


@pytest.fixture
def service(server):
    server.service.reset()
    return server.service


def _sse(server, api, body):
    response = server.post(f"/{api}", json=body, headers=SSE)
    assert response.status_code == 200, response.text
    return response, parse_sse(sse_lines(response.text))


def _wait_for(condition, what, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds} s"
        time.sleep(0.01)


# -- the wire formats ---------------------------------------------------------------------
def test_sse_sends_each_str_item_as_an_event_multi_line_items_included(server):
    texts = ["plain", "two\nlines", " leading space", "crlf\r\nend", "trailing newline\n", "emoji ✓"]
    response, events = _sse(server, "lines", texts)
    assert response.headers["content-type"].startswith("text/event-stream")
    messages = [e.data for e in events if e.event == "message"]
    # an EventSource reader gets each item back (CRLF arrives as LF: SSE has one kind of line break)
    assert messages == [t.replace("\r\n", "\n") for t in texts]
    assert events[-1].event == "end"
    assert len([e for e in events if e.event == "end"]) == 1


def test_sse_sends_other_items_as_compact_json_and_ends_with_an_end_event(server):
    response, events = _sse(server, "points", 3)
    raw_data_lines = [line for line in sse_lines(response.text) if line.startswith("data: {\"x\"")]
    assert raw_data_lines and all(", " not in line and '": ' not in line for line in raw_data_lines)  # compact
    items = [json.loads(e.data) for e in events if e.event == "message"]
    assert items == [{"x": i, "label": f"p{i}"} for i in range(3)]
    assert events[-1].event == "end" and json.loads(events[-1].data) == {"items": 3}


def test_without_sse_in_accept_the_answer_is_ndjson_one_value_per_line(server):
    for accept in ({}, {"Accept": "application/json"}, {"Accept": "application/x-ndjson"}):
        response = server.post("/points", json=4, headers=accept)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        assert parse_ndjson(response.text) == [{"x": i, "label": f"p{i}"} for i in range(4)]


def test_an_empty_stream_is_a_200_with_no_items(server):
    assert server.post("/empty", json=1).text == ""
    _, events = _sse(server, "empty", 1)
    assert [e.event for e in events] == ["end"]


def test_a_stream_is_chunked_unbuffered_and_carries_the_request_id(server):
    with server.client() as client, client.stream("POST", "/count", json=3, headers={"X-Request-ID": "stream-42", **SSE}) as response:
        headers = response.headers
        body = response.read()
    assert "content-length" not in headers and headers["transfer-encoding"] == "chunked"
    assert headers["cache-control"] == "no-cache" and headers["x-accel-buffering"] == "no"
    assert headers["x-request-id"] == "stream-42"
    assert body.count(b"data: ") == 4  # three items and the end event


def test_sync_generators_run_on_the_api_thread_pool(server, service):
    assert parse_ndjson(server.post("/count", json=5).text) == list(range(5))
    assert service.threads and all(name.startswith("modelbundle-api") for name in service.threads)


def test_async_generators_stream_too(server, service):
    assert parse_ndjson(server.post("/count_async", json=5).text) == list(range(5))
    assert service.closed["count_async"].is_set()


# -- errors -------------------------------------------------------------------------------
def test_a_bad_body_is_refused_with_the_usual_json_error_before_any_stream(server):
    response = server.post("/count", json="three", headers=SSE)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["type"] == "invalid_input"


def test_a_generator_that_fails_before_its_first_item_gets_a_json_500(server):
    response = server.post("/fails_at", json=0, headers=SSE)
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["type"] == "model_error" and "broken after 0 items" in error["message"]
    assert error["request_id"] == response.headers["x-request-id"]


def test_a_request_error_raised_by_the_generator_keeps_its_status(server):
    response = server.post("/refuses", json=-1)
    assert response.status_code == 422
    assert "must not be negative" in response.json()["error"]["message"]


def test_a_failure_after_the_first_item_ends_an_sse_stream_with_an_error_event(server):
    response, events = _sse(server, "fails_at", 2)
    assert [e.event for e in events] == ["message", "message", "error"]
    error = json.loads(events[-1].data)["error"]
    assert error["type"] == "model_error" and "broken after 2 items" in error["message"]
    assert error["request_id"] == response.headers["x-request-id"]


def test_a_failure_after_the_first_item_ends_ndjson_with_an_error_line(server):
    lines = parse_ndjson(server.post("/fails_at", json=2).text)
    assert lines[:2] == [0, 1]
    assert list(lines[2]) == ["error"] and lines[2]["error"]["type"] == "model_error"
    assert len(lines) == 3


def test_a_stream_that_stops_yielding_past_the_timeout_ends_with_a_timeout_error(serve_in_thread):
    with serve_in_thread(Streams, ServeConfig(log_level="warning", timeout=0.5)) as running:
        before_first = running.post("/stalls_after", json=0)
        assert before_first.status_code == 504 and before_first.json()["error"]["type"] == "timeout"
        _, events = _sse(running, "stalls_after", 2)
        assert [e.event for e in events] == ["message", "message", "error"]
        assert json.loads(events[-1].data)["error"]["type"] == "timeout"


# -- the client goes away -------------------------------------------------------------------
@pytest.mark.parametrize("api", ["count", "count_async"])
def test_a_client_that_leaves_after_the_first_item_stops_the_generator(server, service, api, caplog):
    cancelled_before = server.scrape().value("modelbundle_cancelled_requests_total", api=api)
    with caplog.at_level(logging.INFO), server.client() as client:
        with client.stream("POST", f"/{api}", json=10**9, headers=SSE) as response:
            first = next(response.iter_lines())
            assert first == "data: 0"
        # leaving the block unread closes the connection
        assert service.closed[api].wait(30), "the generator's finally never ran"
        produced = service.produced[api]
        _wait_for(lambda: server.scrape().value("modelbundle_cancelled_requests_total", api=api) == cancelled_before + 1, "counting the cancel")
    assert produced < 10**9
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == [], "a client leaving is not an error"


def test_a_slow_reader_pauses_the_generator(server, service):
    total = 2000  # 125 MiB if the server ran ahead of its reader
    with server.client() as client, client.stream("POST", "/big", json=total) as response:
        lines = response.iter_lines()
        assert next(lines).startswith('"00000000')  # NDJSON: a JSON string
        # the reader stops reading: the generator must stop once the socket buffers are full
        last, stable_since = -1, time.monotonic()
        while time.monotonic() - stable_since < 1.0:
            now = service.produced["big"]
            if now != last:
                last, stable_since = now, time.monotonic()
            time.sleep(0.05)
        held_bytes = last * ITEM_BYTES
        assert last < total and held_bytes < 64 * 1024 * 1024, f"the generator ran {last} items ahead of its reader"
        # reading on lets it go on to the end
        rest = sum(1 for line in lines if line)
    assert rest == total - 1
    assert service.closed["big"].is_set()


# -- limits and metrics ---------------------------------------------------------------------
def test_an_open_stream_counts_against_max_concurrency(serve_in_thread):
    with serve_in_thread(Streams, ServeConfig(log_level="warning", max_concurrency=1)) as running:
        with running.client() as client, client.stream("POST", "/held", json=3) as response:
            lines = response.iter_lines()
            assert next(lines) == "0"
            refused = running.post("/count", json=1)
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            running.service.gate.set()
            assert [line for line in lines if line] == ["1", "2"]
        assert running.post("/count", json=1).status_code == 200


def test_a_finished_stream_is_counted_with_its_status(server):
    before = server.scrape().value("modelbundle_requests_total", api="points", status="200")
    server.post("/points", json=2)
    _sse(server, "points", 2)
    after = server.scrape()
    assert after.value("modelbundle_requests_total", api="points", status="200") == before + 2
    assert after.value("modelbundle_in_flight_requests", api="points") == 0


# -- other front-ends -------------------------------------------------------------------------
def test_sagemaker_invocations_streams_when_its_api_streams(serve_in_thread):
    with serve_in_thread(Streams, ServeConfig(log_level="warning", sagemaker=True, default_api="points")) as running:
        with running.client() as client, client.stream("POST", "/invocations", json=3, headers=SSE) as response:
            assert response.status_code == 200 and "content-length" not in response.headers
            events = parse_sse(sse_lines(response.read().decode()))
        assert [e.event for e in events] == ["message"] * 3 + ["end"]
        attributes = {"X-Amzn-SageMaker-Custom-Attributes": "api=count"}
        response = running.post("/invocations", json=4, headers=attributes)
        assert parse_ndjson(response.text) == list(range(4))
        assert response.headers["x-amzn-sagemaker-custom-attributes"] == "api=count"


def test_streaming_apis_are_not_open_inference_protocol_models(server):
    response = server.post("/v2/models/count/infer", json={"inputs": []})
    assert response.status_code == 404
    message = response.json()["error"]  # the protocol's error shape: a string
    assert "not served over the Open Inference Protocol" in message and "streams" in message and "POST /count" in message


def test_a_generator_blocked_in_next_is_closed_once_that_next_returns(server, service):
    cancelled_before = server.scrape().value("modelbundle_cancelled_requests_total", api="held")
    with server.client() as client, client.stream("POST", "/held", json=3) as response:
        assert next(response.iter_lines()) == "0"
    # the client left while the generator waits for the gate inside next(): Python cannot
    # interrupt it there, so it is closed (its finally runs) right after that next() returns
    service.gate.set()
    assert service.closed["held"].wait(30)
    _wait_for(lambda: server.scrape().value("modelbundle_cancelled_requests_total", api="held") == cancelled_before + 1, "counting the cancel")
