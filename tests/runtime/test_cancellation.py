"""A client that disconnects while its (non-streaming) request is computed or queued.

Each test sends its request over a raw socket, waits until the request is where it
wants it (running, queued, in a running batch), then half-closes the socket, and
reads what the server sent back: nothing, once the connection is closed. The model's
own records on the live instance say what it computed.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from fixtures.services.abandoned import HOLD, Abandoned
from modelbundle.runtime import ServeConfig

WAIT_S = 30.0


@pytest.fixture(scope="module")
def server(serve_in_thread: Any) -> Iterator[Any]:
    with serve_in_thread(Abandoned, ServeConfig(log_level="warning")) as running:
        yield running


@pytest.fixture(autouse=True)
def _nothing_entered_yet(server: Any) -> None:
    """Each test reads only the calls it made: earlier ones that did not wait for a release are forgotten."""
    entered = server.service.entered
    while not entered.empty():
        entered.get_nowait()


@pytest.fixture(autouse=True)
def _no_warnings_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """A client going away is no error of the server's: nothing is logged for it."""
    caplog.set_level(logging.WARNING)
    yield
    logged = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING]
    assert not logged


def _send(address: tuple[str, int], api: str, body: Any) -> socket.socket:
    """A whole POST of ``body`` as JSON, on a fresh connection that waits for its answer."""
    payload = json.dumps(body).encode()
    sock = socket.create_connection(address, timeout=WAIT_S)
    head = f"POST /{api} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    sock.sendall(head.encode() + payload)
    return sock


def _leave(sock: socket.socket) -> bytes:
    """Half-close (the client is gone as far as the server can tell), then all the server sent before closing."""
    sock.shutdown(socket.SHUT_WR)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    sock.close()
    return received


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.01)


def _metric(server: Any, name: str, api: str) -> float:
    return float(server.scrape().value(name, api=api))


def _cancelled(server: Any, api: str) -> float:
    return _metric(server, "modelbundle_cancelled_requests_total", api)


def _rows_since(service: Any, seen: int) -> list[list[float]]:
    return [sorted(batch) for batch in service.batches[seen:]]


def test_a_queued_request_whose_client_left_leaves_the_queue_and_is_never_computed(server: Any) -> None:
    service, cancelled = server.service, _cancelled(server, "predict")
    seen = len(service.batches)
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(server.post, "/predict", json={"x": [[HOLD]]})
        assert service.entered.get(timeout=WAIT_S) == "predict"
        gone = _send(server.address, "predict", {"x": [[7.0]]})
        _until(lambda: _metric(server, "modelbundle_queue_depth", "predict") == 1, "the request is queued")
        assert _leave(gone) == b""
        _until(lambda: _cancelled(server, "predict") == cancelled + 1, "the request is counted as cancelled")
        # out of the queue at once, not when the running batch ends
        assert _metric(server, "modelbundle_queue_depth", "predict") == 0
        service.release()
        assert held.result().json() == [[HOLD * 10]]
    assert server.post("/predict", json={"x": [[2.0]]}).json() == [[20.0]]
    assert _rows_since(service, seen) == [[HOLD], [2.0]]


def test_a_request_whose_client_left_during_its_batch_is_dropped_and_the_others_are_answered(server: Any) -> None:
    service, cancelled = server.service, _cancelled(server, "predict")
    seen = len(service.batches)
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(server.post, "/predict", json={"x": [[HOLD]]})
        assert service.entered.get(timeout=WAIT_S) == "predict"
        others = [pool.submit(server.post, "/predict", json={"x": [[value]]}) for value in (1.0, 3.0)]
        gone = _send(server.address, "predict", {"x": [[HOLD], [HOLD]]})  # holds its batch too
        _until(lambda: _metric(server, "modelbundle_queue_depth", "predict") == 3, "three requests are queued")
        service.release()
        assert first.result().json() == [[HOLD * 10]]
        assert service.entered.get(timeout=WAIT_S) == "predict"  # the batch of the three is running
        assert _leave(gone) == b""
        _until(lambda: _cancelled(server, "predict") == cancelled + 1, "the request is counted as cancelled")
        service.release()
        assert [answer.result().json() for answer in others] == [[[10.0]], [[30.0]]]
    assert _rows_since(service, seen) == [[HOLD], sorted([1.0, 3.0, HOLD, HOLD])]


def test_an_async_api_whose_client_left_is_cancelled(server: Any) -> None:
    service, cancelled = server.service, _cancelled(server, "wait")
    service.cancelled.clear()
    gone = _send(server.address, "wait", {"n": 1})
    assert service.entered.get(timeout=WAIT_S) == "wait"
    assert _leave(gone) == b""
    assert service.cancelled.wait(WAIT_S), "wait() never saw CancelledError"
    _until(lambda: _cancelled(server, "wait") == cancelled + 1, "the request is counted as cancelled")


def test_a_sync_api_whose_client_left_runs_on_and_its_answer_is_dropped(server: Any) -> None:
    service, cancelled = server.service, _cancelled(server, "block")
    service.block_returned.clear()
    gone = _send(server.address, "block", {"n": 1})
    assert service.entered.get(timeout=WAIT_S) == "block"
    assert _leave(gone) == b""
    _until(lambda: _cancelled(server, "block") == cancelled + 1, "the request is counted as cancelled")
    assert not service.block_returned.is_set()  # a thread cannot be stopped: it is still running
    service.release()
    assert service.block_returned.wait(WAIT_S)
    service.release()  # the next call goes straight through
    assert server.post("/block", json={"n": 4}).json() == 5
    assert _cancelled(server, "block") == cancelled + 1


def test_a_client_that_waits_is_answered_and_nothing_counts_as_cancelled(server: Any) -> None:
    before = {api: _cancelled(server, api) for api in ("predict", "block")}
    server.service.release()
    assert server.post("/block", json={"n": 1}).json() == 2
    assert server.post("/predict", json={"x": [[1.0], [2.0]]}).json() == [[10.0], [20.0]]
    assert {api: _cancelled(server, api) for api in before} == before


def test_an_open_inference_protocol_request_whose_client_left_is_dropped_too(server: Any) -> None:
    service, cancelled = server.service, _cancelled(server, "predict")
    seen = len(service.batches)
    tensor = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [8.0]}]}
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(server.post, "/predict", json={"x": [[HOLD]]})
        assert service.entered.get(timeout=WAIT_S) == "predict"
        gone = _send(server.address, "v2/models/predict/infer", tensor)
        _until(lambda: _metric(server, "modelbundle_queue_depth", "predict") == 1, "the request is queued")
        assert _leave(gone) == b""
        _until(lambda: _cancelled(server, "predict") == cancelled + 1, "the request is counted as cancelled")
        service.release()
        assert held.result().status_code == 200
    answered = server.post("/v2/models/predict/infer", json=tensor)
    assert answered.json()["outputs"][0]["data"] == [80.0]  # the same request, waited for, is computed
    assert _rows_since(service, seen) == [[HOLD], [8.0]]
