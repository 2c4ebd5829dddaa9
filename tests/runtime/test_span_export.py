"""The runtime's span records, their hand-written OTLP encoding (decoded here with
opentelemetry-proto's own classes), the exporter's queue, W3C ``traceparent`` parsing and sampling."""

from __future__ import annotations

import io
import json
import secrets
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from fixtures.otlp import attributes, otlp_collector
from modelbundle.errors import ServeError
from modelbundle.runtime._otlp_encode import Encoder
from modelbundle.runtime._sampler import sampler_from
from modelbundle.runtime._span_export import OtlpHttpSender, SpanExporter, console_send, otlp_send
from modelbundle.runtime._span_record import CONSUMER, INTERNAL, SERVER, SpanRecord, new_trace_id
from modelbundle.runtime._trace_parent import parse_traceparent
from modelbundle.runtime._tracing_setup import check_tracing


def _ended(spans: list[SpanRecord], *args: Any, **kwargs: Any) -> SpanRecord:
    span = SpanRecord(spans.append, *args, **kwargs)
    span.end()
    return span


def test_spans_encode_to_what_opentelemetry_proto_decodes() -> None:
    ended: list[SpanRecord] = []
    caller = parse_traceparent(f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01", "vendor=x")
    assert caller is not None
    attrs = {"s": "é", "yes": True, "n": 200, "big": -(2**40), "f": 0.25, "list": ["a", "b"]}
    request = _ended(ended, "POST /predict", SERVER, caller.trace_id, caller.span_id, True, attrs, (), caller.trace_state)
    with pytest.raises(ValueError), SpanRecord(ended.append, "decode", INTERNAL, request.trace_id, request.span_id, True):
        raise ValueError("no")
    _ended(ended, "predict batch", INTERNAL, new_trace_id(), 0, True, {"n": 200}, (request, (7, 9)))
    _ended(ended, "job", CONSUMER, request.trace_id, request.span_id, True)
    # twice: the second batch comes from the encoder's caches
    encoder = Encoder({"service.name": "svc", "pid": 12}, "modelbundle", "1.2")
    for _ in range(2):
        (resource,) = ExportTraceServiceRequest.FromString(encoder.encode(ended)).resource_spans
        assert {kv.key: kv.value.WhichOneof("value") for kv in resource.resource.attributes} == {"service.name": "string_value", "pid": "int_value"}
        (scope,) = resource.scope_spans
        assert (scope.scope.name, scope.scope.version) == ("modelbundle", "1.2")
        got = list(scope.spans)
        assert [s.name for s in got] == ["POST /predict", "decode", "predict batch", "job"]
        assert [s.kind for s in got] == [Span.SPAN_KIND_SERVER, Span.SPAN_KIND_INTERNAL, Span.SPAN_KIND_INTERNAL, Span.SPAN_KIND_CONSUMER]
        for record, span in zip(ended, got, strict=True):
            assert (int.from_bytes(span.trace_id, "big"), int.from_bytes(span.span_id, "big")) == (record.trace_id, record.span_id)
            assert (span.start_time_unix_nano, span.end_time_unix_nano) == (record.start_ns, record.end_ns)
            assert 0 < span.start_time_unix_nano <= span.end_time_unix_nano
        assert got[0].parent_span_id == caller.span_id.to_bytes(8, "big")
        assert got[0].trace_state == "vendor=x"
        found = attributes(got[0])
        assert {k: v for k, v in found.items() if k != "list"} == {k: v for k, v in attrs.items() if k != "list"}
        assert [v.string_value for v in got[0].attributes[-1].value.array_value.values] == ["a", "b"]
        assert (got[1].parent_span_id, got[1].status.code, got[1].status.message) == (
            got[0].span_id, Status.STATUS_CODE_ERROR, "ValueError: no",
        )
        (event,) = got[1].events
        assert (event.name, attributes(event)) == ("exception", {"exception.type": "ValueError", "exception.message": "no"})
        assert got[1].start_time_unix_nano <= event.time_unix_nano <= got[1].end_time_unix_nano
        assert got[2].parent_span_id == b""
        assert [(link.trace_id, link.span_id) for link in got[2].links] == [
            (got[0].trace_id, got[0].span_id), ((7).to_bytes(16, "big"), (9).to_bytes(8, "big")),
        ]
        assert got[0].status.code == Status.STATUS_CODE_UNSET


def test_an_unsampled_span_is_never_exported_but_still_propagates() -> None:
    ended: list[SpanRecord] = []
    span = _ended(ended, "GET", SERVER, new_trace_id(), 0, False)
    assert ended == [] and not span.is_recording()
    assert span.traceparent == f"00-{span.trace_id:032x}-{span.span_id:016x}-00"
    assert parse_traceparent(span.traceparent) == (span.trace_id, span.span_id, False, "")


@pytest.mark.parametrize(
    "value",
    [
        "", "00-abc", f"00-{'0' * 32}-{'1' * 16}-01", f"00-{'1' * 32}-{'0' * 16}-01", f"ff-{'1' * 32}-{'1' * 16}-01",
        f"00-{'A' * 32}-{'1' * 16}-01", f"00-{'1' * 32}-{'1' * 16}-01-extra", f"00-0x{'1' * 30}-{'1' * 16}-01",
        f"00-{'g' * 32}-{'1' * 16}-01",
    ],
)
def test_an_invalid_traceparent_is_ignored(value: str) -> None:
    assert parse_traceparent(value) is None


def test_a_later_version_of_traceparent_is_read_for_what_version_00_holds() -> None:
    parsed = parse_traceparent(f"01-{'1' * 32}-{'2' * 16}-03-more")
    assert parsed is not None and (parsed.sampled, parsed.span_id) == (True, int("2" * 16, 16))


def test_the_sampler_honours_otel_traces_sampler() -> None:
    ids = [new_trace_id() for _ in range(2000)]
    default = sampler_from({})
    assert all(default(None, t) for t in ids) and not default(False, ids[0]) and default(True, ids[0])
    never = sampler_from({"OTEL_TRACES_SAMPLER": "always_off"})
    assert not any(never(True, t) for t in ids)
    ratio = sampler_from({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"})
    share = sum(ratio(None, t) for t in ids) / len(ids)
    assert 0.15 < share < 0.35  # 2000 draws: 0.25 give or take far less than 0.1
    assert ratio(True, ids[0]) and not ratio(False, ids[0])  # the caller's decision wins
    plain = sampler_from({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"})
    assert not plain(True, ids[0])  # not parent-based: the caller's flag does not count


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"OTEL_TRACES_SAMPLER": "jaeger_remote"}, "OTEL_TRACES_SAMPLER='jaeger_remote': modelbundle samples with one of always_on"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"}, "a trace id ratio is a number from 0 to 1"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "a trace id ratio is a number from 0 to 1"),
    ],
)
def test_a_sampler_it_cannot_honour_is_one_clear_error(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ServeError, match=message):
        sampler_from(environ)


def test_shutdown_exports_every_queued_span_in_batches_and_drops_past_the_queue() -> None:
    batches: list[list[SpanRecord]] = []
    # a schedule delay far longer than the test: only full batches and shutdown export
    exporter = SpanExporter(lambda batch, deadline: batches.append(batch), {
        "OTEL_BSP_SCHEDULE_DELAY": "600000", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4", "OTEL_BSP_MAX_QUEUE_SIZE": "1000",
    })
    spans = [SpanRecord(exporter.add, f"s{i}", INTERNAL, new_trace_id(), 0, True) for i in range(10)]
    for span in spans:
        span.end()
    exporter.shutdown()
    assert [s.name for batch in batches for s in batch] == [s.name for s in spans]
    assert max(len(batch) for batch in batches) == 4
    late = SpanRecord(exporter.add, "late", INTERNAL, new_trace_id(), 0, True)
    late.end()
    assert exporter.dropped == 1  # after shutdown: counted, not queued for a thread that is gone

    full = SpanExporter(lambda batch, deadline: None, {"OTEL_BSP_SCHEDULE_DELAY": "600000", "OTEL_BSP_MAX_QUEUE_SIZE": "3"})
    for i in range(5):
        SpanRecord(full.add, f"s{i}", INTERNAL, new_trace_id(), 0, True).end()
    full.shutdown()
    assert full.dropped == 2


def test_the_console_exporter_writes_a_json_line_per_span() -> None:
    out = io.StringIO()
    ended: list[SpanRecord] = []
    parent = _ended(ended, "GET /livez", SERVER, new_trace_id(), 0, True, {"http.response.status_code": 200})
    child = _ended(ended, "encode", INTERNAL, parent.trace_id, parent.span_id, True)
    console_send("svc", out)(ended, 0.0)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(line["name"], line["service"], line["parent_id"]) for line in lines] == [
        ("GET /livez", "svc", None), ("encode", "svc", f"{parent.span_id:016x}"),
    ]
    assert lines[1]["trace_id"] == f"{child.trace_id:032x}" == f"{parent.trace_id:032x}"


def test_the_sender_posts_gzip_with_the_configured_headers_to_the_traces_endpoint() -> None:
    with otlp_collector() as collector:
        environ = {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{collector.url}/v1/traces",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9/ignored",  # the TRACES_ one wins
            "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=a%20b,authorization=Bearer k",
            "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        }
        exporter = SpanExporter(otlp_send(Encoder({"service.name": "svc"}, "modelbundle", "0"), OtlpHttpSender(environ)), {})
        spans = [SpanRecord(exporter.add, f"s{i}", INTERNAL, new_trace_id(), 0, True, {"i": i}) for i in range(3)]
        for span in spans:
            span.end()
        exporter.shutdown()
        assert [(s.name, attributes(s)) for s in collector.received()] == [(f"s{i}", {"i": i}) for i in range(3)]
        (headers,) = collector.headers
        assert (headers["Content-Encoding"], headers["x-tenant"], headers["authorization"]) == ("gzip", "a b", "Bearer k")
        assert collector.service_names == {"svc"}


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"OTEL_EXPORTER_OTLP_COMPRESSION": "brotli"}, "OTEL_EXPORTER_OTLP_COMPRESSION='brotli': modelbundle sends gzip or none"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "collector:4318"}, "OTLP traces endpoint 'collector:4318': expected an http:// or https:// URL"),
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "lots"}, "OTEL_BSP_MAX_QUEUE_SIZE='lots': expected a positive number"),
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER='sometimes'"),
    ],
)
def test_tracing_settings_it_cannot_honour_are_refused_before_serving(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ServeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", **environ})
    check_tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})  # and the defaults are fine
