"""OpenTelemetry tracing, as a collector receives it: spans exported over OTLP/HTTP to a loopback
collector this test starts (``fixtures/otlp.py``), decoded with opentelemetry-proto's classes."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from websockets.sync.client import connect

from fixtures.cli import cli, failed
from fixtures.otlp import Collector, attributes, otlp_collector
from fixtures.services import gated
from fixtures.services.jobs import Jobs
from fixtures.services.remote_peer import Peer
from fixtures.services.sockets import Sockets
from fixtures.services.streams import Streams
from modelbundle.errors import ServeError
from modelbundle.runtime import ServeConfig
from modelbundle.runtime._composition._remote import RemoteTransport
from modelbundle.runtime._span_record import SERVER, SpanRecord, new_trace_id
from modelbundle.runtime._trace_context import request_span
from modelbundle.runtime._tracing_setup import requested_exporter

from .test_jobs import finished, wait_for


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[Collector]:
    with otlp_collector() as collector:
        for name in ("OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SERVICE_NAME"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)  # the exporter adds /v1/traces
        yield collector


def _children(spans: list[Span], parent: Span) -> list[Span]:
    return [s for s in spans if s.parent_span_id == parent.span_id and s.trace_id == parent.trace_id]


def test_a_batched_request_as_the_collector_receives_it(collector: Collector, serve_in_thread: Any) -> None:
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    headers = [{"traceparent": f"00-{trace_id}-{caller_span}-01"}, {}, {}]
    # the server stops before the spans are read: its shutdown exports what is buffered
    with serve_in_thread(gated.Gated, ServeConfig(log_level="warning")) as server:
        hold, queued = server.post_while_held("predict", [[gated.HOLD]], [[[1.0]], [[2.0]], [[3.0]]], headers)
    answers = [hold, *queued]
    assert [r.status_code for r in answers] == [200] * 4
    spans = collector.received()
    assert collector.service_names == {gated.Gated.name}

    # one SERVER span per request, found by the request id its response carried
    by_request_id = {attributes(s).get("modelbundle.request_id"): s for s in spans if s.kind == Span.SPAN_KIND_SERVER}
    requests = [by_request_id[r.headers["x-request-id"]] for r in answers]
    for span in requests:
        assert span.name == "POST /predict"
        assert attributes(span) | {"modelbundle.request_id": None} == {
            "http.request.method": "POST",
            "url.path": "/predict",
            "http.route": "/predict",
            "modelbundle.api": "predict",
            "http.response.status_code": 200,
            "modelbundle.request_id": None,
        }
        assert sorted(child.name for child in _children(spans, span)) == ["decode", "encode"]

    # the incoming traceparent is the parent of its request's span; the others start traces of their own
    assert requests[1].trace_id.hex() == trace_id
    assert requests[1].parent_span_id.hex() == caller_span
    assert [span.parent_span_id for span in (requests[0], *requests[2:])] == [b"", b"", b""]
    assert len({span.trace_id for span in requests}) == 4

    # the model calls: the held request alone, then the three that queued meanwhile in one batch
    batches = [s for s in spans if "modelbundle.batch.size" in attributes(s)]
    served = {frozenset((link.trace_id, link.span_id) for link in batch.links): attributes(batch) for batch in batches}
    assert served == {
        frozenset({(requests[0].trace_id, requests[0].span_id)}): {
            "modelbundle.api": "predict", "modelbundle.batch.size": 1, "modelbundle.batch.requests": 1,
        },
        frozenset((s.trace_id, s.span_id) for s in requests[1:]): {
            "modelbundle.api": "predict", "modelbundle.batch.size": 3, "modelbundle.batch.requests": 3,
        },
    }
    assert [batch.parent_span_id for batch in batches] == [b"", b""]  # a batch belongs to all its requests alike


def test_other_routes_get_a_span_named_after_their_route(collector: Collector, serve_in_thread: Any) -> None:
    with serve_in_thread(gated.Gated, ServeConfig(log_level="warning")) as server:
        ready = server.get("/readyz")
        missing = server.get("/nowhere")
    assert (ready.status_code, missing.status_code) == (200, 404)
    by_request_id = {attributes(s).get("modelbundle.request_id"): s for s in collector.received()}
    span = by_request_id[ready.headers["x-request-id"]]
    assert (span.name, attributes(span)["http.route"], attributes(span)["http.response.status_code"]) == ("GET /readyz", "/readyz", 200)
    span = by_request_id[missing.headers["x-request-id"]]
    assert (span.name, attributes(span)["http.response.status_code"]) == ("GET", 404)
    assert "http.route" not in attributes(span)


@pytest.mark.parametrize(
    ("environ", "exporter"),
    [
        ({}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, None),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, None),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, "otlp"),
    ],
)
def test_the_otel_variables_turn_tracing_on(environ: dict[str, str], exporter: str | None) -> None:
    assert requested_exporter(environ) == exporter


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER='jaeger': modelbundle exports traces with one of otlp, console"),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, "with one of otlp, console"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "http/protobuf only"),
    ],
)
def test_what_tracing_cannot_do_is_one_clear_error(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ServeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        requested_exporter(environ)


def test_tracing_off_imports_nothing_of_opentelemetry() -> None:
    code = (
        "import sys\n"
        "from modelbundle.runtime import create_app\n"
        "sys.path.insert(0, 'tests')\n"
        "from fixtures.services.gated import Gated\n"
        "create_app(Gated)\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry') or m == 'modelbundle.runtime._tracing'))\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_job_run_joins_the_trace_of_the_request_that_submitted_it(
    collector: Collector, serve_in_thread: Any, tmp_path: Path
) -> None:
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    config = ServeConfig(log_level="warning", jobs_dir=str(tmp_path / "jobs"))
    with serve_in_thread(Jobs, config) as server:
        submitted = server.post("/double/jobs", json={"x": [1.5, 2]}, headers={"traceparent": f"00-{trace_id}-{caller_span}-01"})
        assert submitted.status_code == 202, submitted.text
        done = wait_for(server, submitted.headers["location"], finished)
        assert done["status"] == "succeeded", done
    spans = collector.received()

    by_request_id = {attributes(s).get("modelbundle.request_id"): s for s in spans if s.kind == Span.SPAN_KIND_SERVER}
    submit = by_request_id[submitted.headers["x-request-id"]]
    assert (submit.trace_id.hex(), submit.parent_span_id.hex()) == (trace_id, caller_span)
    assert attributes(submit)["http.route"] == "/double/jobs"

    (run,) = [s for s in spans if s.kind == Span.SPAN_KIND_CONSUMER]
    assert (run.trace_id, run.parent_span_id) == (submit.trace_id, submit.span_id)
    assert [(link.trace_id, link.span_id) for link in run.links] == [(submit.trace_id, submit.span_id)]
    assert attributes(run) == {
        "modelbundle.api": "double", "modelbundle.job_id": done["id"], "modelbundle.job.attempt": 1,
    }
    # the job went through the API's batcher like a request: its model call links to the run
    (batch,) = [s for s in spans if "modelbundle.batch.size" in attributes(s)]
    assert [(link.trace_id, link.span_id) for link in batch.links] == [(run.trace_id, run.span_id)]


def test_a_stream_and_a_websocket_are_one_span_each_for_their_whole_life(collector: Collector, serve_in_thread: Any) -> None:
    with (
        serve_in_thread(Streams, ServeConfig(log_level="warning")) as server,
        server.client() as client,
        client.stream("POST", "/held", json=3) as response,
    ):
        lines = response.iter_lines()
        assert next(lines) == "0"
        first_item_read = time.time_ns()  # the span must end after this: it spans the stream, not its head
        server.service.gate.set()
        assert [line for line in lines if line] == ["1", "2"]
    with serve_in_thread(Sockets, ServeConfig(log_level="warning")) as server:
        url = server.url.replace("http://", "ws://", 1) + "/shout"
        with connect(url, open_timeout=30, close_timeout=30) as socket:
            socket.send("hi")
            assert socket.recv(timeout=30) == "HI"
            answered = time.time_ns()
            socket.send("bye")
            assert socket.recv(timeout=30) == "BYE"
            request_id = socket.response.headers["x-request-id"]
    spans = [s for s in collector.received() if s.kind == Span.SPAN_KIND_SERVER]

    (stream,) = [s for s in spans if attributes(s).get("modelbundle.request_id") == response.headers["x-request-id"]]
    assert (stream.name, attributes(stream)["http.response.status_code"]) == ("POST /held", 200)
    assert stream.end_time_unix_nano > first_item_read
    (websocket,) = [s for s in spans if attributes(s).get("modelbundle.request_id") == request_id]
    assert (websocket.name, attributes(websocket)["modelbundle.api"]) == ("GET /shout", "shout")
    assert (attributes(websocket)["http.response.status_code"], attributes(websocket)["websocket.close_code"]) == (101, 1000)
    assert websocket.end_time_unix_nano > answered


def test_bundle_serve_refuses_otel_settings_it_cannot_honour_before_serving(tmp_path: Path) -> None:
    target = f"{Path(gated.__file__)}:Gated"
    result = cli("serve", target, "--port", "0", home=tmp_path, env={"OTEL_TRACES_EXPORTER": "zipkin"})
    assert failed(result) == "error: OTEL_TRACES_EXPORTER='zipkin': modelbundle exports traces with one of otlp, console (or none)"
    assert "serving" not in result.stderr  # refused before it bound a port and announced it


def test_the_access_log_line_carries_the_trace_id_of_the_request_span(collector: Collector, serve_in_subprocess: Any) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url}
    with serve_in_subprocess("echo.py:Echo", "--access-log", "--log-format", "json", env=env) as server:
        answer = server.post("/predict", json={"x": [[1.0, 2.0]]})
        assert answer.status_code == 200, answer.text
        request_id = answer.headers["x-request-id"]
        assert server.stop() == 0  # a graceful stop exports the spans and flushes the log
    (span,) = [s for s in collector.received() if attributes(s).get("modelbundle.request_id") == request_id]
    lines = [json.loads(line) for line in server.stderr.splitlines() if line.startswith("{")]
    (access,) = [line for line in lines if line.get("request_id") == request_id and line.get("status") == 200]
    assert access["trace_id"] == span.trace_id.hex()


def test_sampling_follows_the_otel_variables_and_shutdown_loses_no_span(
    collector: Collector, serve_in_thread: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no new trace sampled here; a caller's decision still wins both ways. The schedule delay is
    # longer than the test, so every span reaches the collector through the shutdown's export.
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")
    sampled, unsampled = secrets.token_hex(16), secrets.token_hex(16)
    with serve_in_thread(gated.Gated, ServeConfig(log_level="warning")) as server:
        plain = [server.post("/predict", json={"x": [[1.0]]}) for _ in range(3)]
        followed = [
            server.post("/predict", json={"x": [[float(i)]]}, headers={"traceparent": f"00-{sampled}-{secrets.token_hex(8)}-01"})
            for i in range(40)
        ]
        refused = server.post("/predict", json={"x": [[1.0]]}, headers={"traceparent": f"00-{unsampled}-{secrets.token_hex(8)}-00"})
        assert all(r.status_code == 200 for r in [*plain, *followed, refused])
        assert collector.received() == []  # nothing exported before the shutdown
    spans = collector.received()
    servers = [s for s in spans if s.kind == Span.SPAN_KIND_SERVER]
    assert sorted(attributes(s)["modelbundle.request_id"] for s in servers) == sorted(r.headers["x-request-id"] for r in followed)
    assert {s.trace_id.hex() for s in servers} == {sampled}
    assert sorted(s.name for s in spans if s.kind != Span.SPAN_KIND_SERVER and "modelbundle.batch.size" not in attributes(s)) == (
        ["decode"] * 40 + ["encode"] * 40
    )
    batches = [s for s in spans if "modelbundle.batch.size" in attributes(s)]
    assert sum(attributes(b)["modelbundle.batch.requests"] for b in batches) == 40


def test_a_dependency_call_continues_the_callers_trace(collector: Collector, serve_in_subprocess: Any) -> None:
    caller = SpanRecord(lambda span: None, "POST /entry", SERVER, new_trace_id(), 0, True)

    async def call(url: str) -> Any:
        transport = RemoteTransport(Peer.name, Peer.__apis__, url, 30.0, request_id=lambda: None)
        request_span.set(caller)  # as the tracing middleware sets it for the entry request's task
        try:
            return await transport.call("double", {"x": np.array([[1.0, 2.0]], dtype=np.float32)})
        finally:
            await transport.aclose()

    with serve_in_subprocess("remote_peer.py:Peer", env={"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url}) as server:
        np.testing.assert_array_equal(asyncio.run(call(server.url)), [[2.0, 4.0]])
        assert server.stop() == 0  # its shutdown exports the spans
    (span,) = [s for s in collector.received() if s.kind == Span.SPAN_KIND_SERVER and s.name == "POST /double"]
    assert (int.from_bytes(span.trace_id, "big"), int.from_bytes(span.parent_span_id, "big")) == (caller.trace_id, caller.span_id)
