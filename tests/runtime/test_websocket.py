"""WebSocket APIs end to end: the ``websockets`` client against ``bundle serve`` (one and two workers).

Round trips of text, JSON, .npy and bytes messages; close codes 1007 (bad input), 1011 (the
API raised) and 1009 (a message above --max-body-size); a client that leaves mid-stream stops
the generator (its ``finally`` shows in the service's record) and is counted in /metrics; the
handshake's refusals (404, 426, 405, 503 past --max-concurrency).
"""

from __future__ import annotations

import io
import json
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, InvalidStatus
from websockets.sync.client import connect

MAX_BODY = 64 * 1024
#: how long a test waits for what the live service records (a deadline to poll, not a measure)
WAIT_S = 30.0


@pytest.fixture(scope="module", params=["1", "2"], ids=["1-worker", "2-workers"])
def served(request, serve_in_subprocess, tmp_path_factory):
    record = tmp_path_factory.mktemp("sockets") / "record.txt"
    record.touch()
    args = ("--workers", request.param, "--max-body-size", str(MAX_BODY))
    with serve_in_subprocess("sockets.py:Sockets", *args, env={"MODELBUNDLE_TEST_RECORD": str(record)}) as server:
        yield server, record


def _ws(server, route: str, **kwargs):
    return connect(server.url.replace("http://", "ws://", 1) + route, open_timeout=WAIT_S, close_timeout=WAIT_S, **kwargs)


def _closed(ws) -> ConnectionClosed:
    """The close the server sent, waiting for it (items before it are read and dropped)."""
    with pytest.raises(ConnectionClosed) as caught:
        while True:
            ws.recv(timeout=WAIT_S)
    return caught.value


def _wait_for_line(record: Path, line: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while line not in record.read_text().splitlines():
        assert time.monotonic() < deadline, f"{line!r} never recorded; the record:\n{record.read_text()}"
        time.sleep(0.01)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


# -- round trips ---------------------------------------------------------------------------
def test_text_messages_come_back_as_text_one_answer_per_message(served):
    server, _ = served
    with _ws(server, "/shout") as ws:
        for word in ["hello", "grüße", "a b c"]:
            ws.send(word)
            answer = ws.recv(timeout=WAIT_S)
            assert isinstance(answer, str)
            assert answer == word.upper()


def test_json_items_stream_as_they_are_yielded_and_the_socket_stays_open(served):
    server, _ = served
    with _ws(server, "/count") as ws:
        ws.send("3")
        assert [json.loads(ws.recv(timeout=WAIT_S)) for _ in range(3)] == [0, 1, 2]
        ws.send("2")  # the same call of the API reads the next message
        assert [json.loads(ws.recv(timeout=WAIT_S)) for _ in range(2)] == [0, 1]


def test_numpy_arrays_in_binary_npy_messages_and_json_text_messages(served):
    server, _ = served
    rng = np.random.default_rng(7)
    array = rng.normal(size=(3, 4))
    with _ws(server, "/double") as ws:
        ws.send(_npy(array))  # binary in: .npy
        answer = ws.recv(timeout=WAIT_S)
        assert isinstance(answer, str)  # out: JSON by default, as for HTTP
        np.testing.assert_array_equal(np.array(json.loads(answer)), array * 2)
        ws.send(json.dumps(array.tolist()))  # text in: JSON
        np.testing.assert_array_equal(np.array(json.loads(ws.recv(timeout=WAIT_S))), array * 2)


def test_accept_in_the_handshake_picks_binary_npy_answers(served):
    server, _ = served
    array = np.arange(12, dtype=np.float64).reshape(4, 3)
    with _ws(server, "/double", additional_headers={"Accept": "application/x-npy"}) as ws:
        ws.send(_npy(array))
        answer = ws.recv(timeout=WAIT_S)
        assert isinstance(answer, bytes)
        loaded = np.load(io.BytesIO(answer), allow_pickle=False)
        assert loaded.dtype == np.float64
        np.testing.assert_array_equal(loaded, array * 2)


def test_bytes_go_both_ways_as_binary_messages_on_the_api_route(served):
    server, _ = served
    data = bytes(range(256)) * 3
    with _ws(server, "/reverse-bytes") as ws:
        ws.send(data)
        answer = ws.recv(timeout=WAIT_S)
        assert answer == data[::-1]
        assert ws.response.headers["x-request-id"]


# -- close codes ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("message", "reason_start"),
    [
        ("not json", "malformed JSON"),
        ('"seven"', "messages: "),  # JSON, but not an int: the adapter says so, naming the parameter
        ("13", "n: 13 is unlucky"),  # the API raised InvalidInput
    ],
)
def test_bad_input_closes_with_1007_and_a_one_line_reason(served, message, reason_start):
    server, _ = served
    with _ws(server, "/count") as ws:
        ws.send("1")
        assert json.loads(ws.recv(timeout=WAIT_S)) == 0  # what came before the bad message is answered
        ws.send(message)
        closed = _closed(ws)
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1007
    assert closed.rcvd.reason.startswith(reason_start), closed.rcvd.reason
    assert "\n" not in closed.rcvd.reason


def test_an_api_that_raises_closes_with_1011_and_the_error_is_logged_with_the_request_id(served):
    server, _ = served
    with _ws(server, "/count", additional_headers={"X-Request-ID": "ws-raises-1"}) as ws:
        assert ws.response.headers["x-request-id"] == "ws-raises-1"
        ws.send("-1")
        closed = _closed(ws)
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1011
    assert closed.rcvd.reason == "count raised ValueError: n must not be negative"
    deadline = time.monotonic() + WAIT_S
    while "request ws-raises-1: count raised" not in server.stderr:
        assert time.monotonic() < deadline, server.stderr
        time.sleep(0.01)
    with _ws(server, "/shout") as ws:  # the server is fine
        ws.send("ok")
        assert ws.recv(timeout=WAIT_S) == "OK"


def test_an_item_the_return_type_cannot_carry_closes_with_1011(served):
    server, _ = served
    with _ws(server, "/broken") as ws:
        ws.send("go")
        closed = _closed(ws)
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1011
    assert closed.rcvd.reason.startswith("broken yielded float, which cannot be sent as bytes"), closed.rcvd.reason


def test_a_message_above_max_body_size_closes_with_1009(served):
    server, _ = served
    with _ws(server, "/shout") as ws:
        ws.send("x" * MAX_BODY)  # at the limit: answered
        assert ws.recv(timeout=WAIT_S) == "X" * MAX_BODY
        ws.send("x" * (MAX_BODY + 1))
        closed = _closed(ws)
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1009


# -- the client goes away ---------------------------------------------------------------------
@pytest.mark.parametrize("how", ["close", "drop"])
def test_a_client_that_leaves_mid_stream_stops_the_generator_and_is_counted(served, how, request):
    server, record = served
    n = 100_000 + (1 if how == "close" else 2) + (10 if "2-workers" in request.node.name else 0)
    before = server.scrape().value("modelbundle_cancelled_requests_total", api="count")
    with _ws(server, "/count") as ws:
        ws.send(str(n))  # 100,000 items, one every 10 ms: the stream would last about 17 minutes
        assert [json.loads(ws.recv(timeout=WAIT_S)) for _ in range(3)] == [0, 1, 2]
        _wait_for_line(record, f"start {n}")
        if how == "close":
            ws.close()  # the closing handshake
        else:
            ws.socket.shutdown(socket.SHUT_RDWR)  # the connection drops, with no close frame
    _wait_for_line(record, f"finally {n}")
    deadline = time.monotonic() + WAIT_S
    while server.scrape().value("modelbundle_cancelled_requests_total", api="count") < before + 1:
        assert time.monotonic() < deadline, "the abandoned stream was not counted"
        time.sleep(0.02)


def test_a_client_that_closes_while_the_api_waits_for_a_message_ends_it_without_a_cancel(served, request):
    server, record = served
    n = 7 + (10 if "2-workers" in request.node.name else 0)
    with _ws(server, "/count") as ws:
        ws.send(str(n))
        assert [json.loads(ws.recv(timeout=WAIT_S)) for _ in range(n)] == list(range(n))
        before = server.scrape().value("modelbundle_cancelled_requests_total", api="count")
    # the API was waiting for the next message: ``messages`` ended and the generator returned
    _wait_for_line(record, f"finally {n}")
    assert server.scrape().value("modelbundle_cancelled_requests_total", api="count") == before


# -- the handshake ----------------------------------------------------------------------------
def test_a_handshake_to_a_path_with_no_websocket_api_gets_a_404_naming_the_websocket_apis(served):
    server, _ = served
    for path in ["/nope", "/echo"]:
        with pytest.raises(InvalidStatus) as caught:
            _ws(server, path)
        response = caught.value.response
        assert response.status_code == 404
        error = json.loads(response.body)["error"]
        assert error["type"] == "not_found"
        assert "/shout" in error["message"] and "/reverse-bytes" in error["message"]
        assert "/echo" not in error["message"].partition("the WebSocket APIs are")[2]


def test_plain_http_on_a_websocket_route_says_to_upgrade(served):
    server, _ = served
    response = server.get("/shout")
    assert response.status_code == 426
    assert response.headers["upgrade"] == "websocket"
    assert "WebSocket" in response.json()["error"]["message"]
    post = server.post("/shout", json="hi")
    assert post.status_code == 405
    assert server.post("/echo", json=3).json() == 3


def test_an_open_socket_is_one_request_in_flight_against_max_concurrency(serve_in_subprocess):
    with serve_in_subprocess("sockets.py:Sockets", "--max-concurrency", "1") as server:
        with _ws(server, "/shout") as ws:
            ws.send("one")
            assert ws.recv(timeout=WAIT_S) == "ONE"
            assert server.scrape().value("modelbundle_in_flight_requests", api="shout") == 1
            with pytest.raises(InvalidStatus) as caught:
                _ws(server, "/shout")
            assert caught.value.response.status_code == 503
            assert caught.value.response.headers["retry-after"] == "1"
            assert server.post("/echo", json=1).status_code == 503
        deadline = time.monotonic() + WAIT_S
        while server.scrape().value("modelbundle_in_flight_requests", api="shout") != 0:
            assert time.monotonic() < deadline, "the closed socket still counts as in flight"
            time.sleep(0.02)
        with _ws(server, "/shout") as ws:  # its slot is free again
            ws.send("two")
            assert ws.recv(timeout=WAIT_S) == "TWO"


def test_an_api_that_returns_closes_with_1000(served):
    server, _ = served
    with _ws(server, "/shout") as ws:
        ws.send("bye")
        assert ws.recv(timeout=WAIT_S) == "BYE"
        with pytest.raises(ConnectionClosedOK) as caught:
            ws.recv(timeout=WAIT_S)
    assert caught.value.rcvd is not None
    assert caught.value.rcvd.code == 1000


def test_a_handshake_before_setup_is_done_gets_a_503_then_works(serve_in_subprocess, tmp_path):
    # with --sagemaker the server answers while setup() runs (elsewhere connections wait in the backlog)
    gate = tmp_path / "setup-may-finish"
    env = {"MODELBUNDLE_TEST_SETUP_GATE": str(gate)}
    with serve_in_subprocess("sockets.py:Sockets", "--sagemaker", env=env, ready=False) as server:
        server.wait_for_port()
        with pytest.raises(InvalidStatus) as caught:
            _ws(server, "/shout")
        assert caught.value.response.status_code == 503
        assert caught.value.response.headers["retry-after"] == "1"
        assert json.loads(caught.value.response.body)["error"]["message"] == "the service is not ready"
        gate.touch()
        server.wait_ready()
        with _ws(server, "/shout") as ws:
            ws.send("ready")
            assert ws.recv(timeout=WAIT_S) == "READY"
        # /invocations calls the first HTTP API, never a WebSocket one
        assert server.post("/invocations", json=5).json() == 5


def test_the_server_answers_pings(served):
    server, _ = served
    with _ws(server, "/shout") as ws:
        assert ws.ping(b"are you there").wait(WAIT_S)
