"""The access log (``_access_log.py``) and ``--log-format``, read from a real server's stderr.

json: every line of the server's stderr parses; each answered request has exactly one
access line carrying the X-Request-ID of its response, its status, body bytes, API and
(for a batched API) the size of the model call that served it; streams and WebSockets
are logged too. text: the line uvicorn wrote, unchanged. Under a burst with a SIGTERM
in the middle, every answered request is in the log once the server has exited.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections import Counter

import httpx
import pytest
from websockets.sync.client import connect

from fixtures.servers import Scrape

ROW = {"x": [[1.0, 2.0]]}


def _json_lines(stderr: str) -> list[dict]:
    """Every line of the server's stderr as JSON (fails on the first line that is not)."""
    lines = []
    for line in stderr.splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line!r}\nstderr:\n{stderr}")
    return lines


def _access(entries: list[dict]) -> dict[str, dict]:
    """The access lines by request id (each id once)."""
    lines = [entry for entry in entries if entry["logger"] == "modelbundle.access"]
    ids = Counter(entry["request_id"] for entry in lines)
    assert all(count == 1 for count in ids.values()), ids.most_common(3)
    return {entry["request_id"]: entry for entry in lines}


def test_json_access_lines_carry_the_response_request_id_status_bytes_and_api(serve_in_subprocess):
    with serve_in_subprocess("echo.py:Echo", "--access-log", "--log-format", "json") as server:
        with server.client() as client:
            responses = [
                client.post("/predict", json=ROW),
                client.post("/predict", json=ROW, headers={"X-Request-ID": "given-id-1"}),
                client.post("/predict", json={"x": "not an array"}),
                client.get("/nowhere"),
                client.get("/readyz"),
            ]
        assert server.stop() == 0
    entries = _json_lines(server.stderr)
    assert {"time", "level", "logger", "message", "request_id", "trace_id"} <= entries[0].keys()  # the server's own lines
    assert any(e["logger"] == "modelbundle.server" and e["message"].startswith("serving ") for e in entries)
    logged = _access(entries)
    assert responses[1].headers["x-request-id"] == "given-id-1"
    for response in responses:
        entry = logged[response.headers["x-request-id"]]
        assert (entry["method"], entry["path"]) == (response.request.method, response.request.url.path)
        assert entry["status"] == response.status_code
        assert entry["bytes"] == len(response.content)
        assert entry["level"] == "info" and entry["trace_id"] == "" and entry["duration_ms"] > 0
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    ok, bad, missing, ready = (logged[r.headers["x-request-id"]] for r in responses[1:])
    assert (ok["api"], ok["batch_size"]) == ("predict", 1)
    assert (bad["api"], bad["batch_size"]) == ("predict", None)  # refused before any model call
    assert (missing["api"], ready["api"]) == (None, None)


def test_batch_sizes_in_the_log_add_up_to_the_model_calls_in_metrics(serve_in_subprocess):
    """Each one-row request logs the rows of the call that served it: a call of k rows shows
    as k lines of k, so the sum of 1/k over the lines is the number of model calls."""
    with serve_in_subprocess("echo.py:Echo", "--access-log", "--log-format", "json") as server:
        responses = server.post_concurrently("/predict", [{"x": [[float(i), 0.0]]} for i in range(60)])
        assert [r.status_code for r in responses] == [200] * 60
        calls = Scrape(server.get("/metrics").text).value("modelbundle_batch_size_count", api="predict")
        assert server.stop() == 0
    logged = _access(_json_lines(server.stderr))
    sizes = [logged[r.headers["x-request-id"]]["batch_size"] for r in responses]
    assert max(sizes) > 1, "the burst formed no batch"
    for size, count in Counter(sizes).items():
        assert count % size == 0, (size, count)
    assert sum(1 / size for size in sizes) == pytest.approx(calls)


def test_streams_and_websockets_are_logged_with_their_bytes(serve_in_subprocess):
    with serve_in_subprocess("streams.py:Streams", "--access-log", "--log-format", "json") as server:
        with server.client() as client:
            stream = client.post("/count", json=5, headers={"Accept": "application/x-ndjson"})
        assert stream.status_code == 200
        assert server.stop() == 0
    entry = _access(_json_lines(server.stderr))[stream.headers["x-request-id"]]
    assert (entry["api"], entry["status"], entry["bytes"]) == ("count", 200, len(stream.content))

    with serve_in_subprocess("sockets.py:Sockets", "--access-log", "--log-format", "json") as server:
        with connect(server.url.replace("http://", "ws://") + "/shout", open_timeout=30) as ws:
            ws.send("hello")
            answer = ws.recv(timeout=30)
            request_id = ws.response.headers["x-request-id"]
        assert server.stop() == 0
    entry = _access(_json_lines(server.stderr))[request_id]
    assert (entry["method"], entry["path"], entry["status"], entry["api"]) == ("WebSocket", "/shout", 101, "shout")
    assert entry["bytes"] >= len(answer.encode() if isinstance(answer, str) else answer)


def test_text_access_line_is_the_one_uvicorn_wrote(serve_in_subprocess):
    with serve_in_subprocess("echo.py:Echo", "--access-log") as server:
        host, port = server.address
        with socket.create_connection((host, port)) as sock:
            client_port = sock.getsockname()[1]
            body = json.dumps(ROW).encode()
            sock.sendall(
                b"POST /predict?a=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
            )
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert server.stop() == 0
    pid = server.proc.pid
    line = f' INFO    uvicorn.access [{pid}] 127.0.0.1:{client_port} - "POST /predict?a=1 HTTP/1.1" 200'
    matching = [entry for entry in server.stderr.splitlines() if entry.endswith(line)]
    assert len(matching) == 1, server.stderr
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}", matching[0].removesuffix(line))
    assert re.search(rf"^\S+ \S+ INFO    modelbundle\.server \[{pid}\] serving ", server.stderr, re.MULTILINE)


def test_no_access_log_writes_no_access_lines(serve_in_subprocess):
    with serve_in_subprocess("echo.py:Echo", "--log-format", "json") as server:  # the fixture adds --no-access-log
        assert server.post("/predict", json=ROW).status_code == 200
        assert server.stop() == 0
    entries = _json_lines(server.stderr)
    assert entries and not [e for e in entries if "access" in e["logger"]]


def test_every_answered_request_is_logged_when_sigterm_arrives_under_load(serve_in_subprocess):
    with serve_in_subprocess("echo.py:Echo", "--access-log", "--log-format", "json") as server:

        async def burst() -> list[httpx.Response | BaseException]:
            async with server.async_client(200) as client:
                requests = [asyncio.ensure_future(client.post("/predict", json={"x": [[float(i), 1.0]]})) for i in range(400)]
                await asyncio.wait(requests, return_when=asyncio.FIRST_COMPLETED)
                server.proc.send_signal(signal.SIGTERM)  # the rest arrive while the server stops
                return list(await asyncio.gather(*requests, return_exceptions=True))

        results = asyncio.run(burst())
        assert server.wait() == 0
    answered = [r for r in results if isinstance(r, httpx.Response)]
    assert len(answered) > 1
    logged = _access(_json_lines(server.stderr))
    for response in answered:
        assert logged[response.headers["x-request-id"]]["status"] == response.status_code


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--log-format", "xml"], {}, "'xml' is not one of 'text', 'json'"),
        ([], {"MODELBUNDLE_LOG_FORMAT": "xml"}, "MODELBUNDLE_LOG_FORMAT: Input should be 'text' or 'json'"),
    ],
)
def test_a_bad_log_format_is_one_line_naming_the_choices(args, env, message, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "modelbundle", "serve", "nowhere.py:Nothing", *args],
        capture_output=True, text=True, env={**os.environ, **env}, cwd=tmp_path, timeout=60,
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
