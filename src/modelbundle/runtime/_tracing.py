"""OpenTelemetry tracing of one server process (imported only when ``_tracing_setup`` turns it on).

Spans:

- one SERVER span per HTTP request or WebSocket, from the first byte to the last (a stream's or
  a socket's whole life), child of an incoming W3C ``traceparent``; attributes: method, path,
  route, status, API, request id;
- ``decode`` and ``encode`` children of an API request's span (``_spans.py``);
- one span per model call of a micro-batcher: a new root linked to every request (or job run)
  it served, with the batch's rows and requests as attributes. A root, not a child of one of
  them, because a batch belongs to all its requests alike;
- one CONSUMER span per job run, child of (and linked to) the span of the request that
  submitted it, whose ``traceparent`` the job keeps.

Spans go out through the SDK's ``BatchSpanProcessor``: the request's task only records them;
a background thread exports.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import (
    Link,
    Span,
    SpanKind,
    Status,
    StatusCode,
    Tracer,
    get_current_span,
    set_span_in_context,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from . import _trace_context
from ._log_context import set_trace_id
from ._types import ASGIApp, Message, Receive, Scope, Send

#: the instrumentation scope of every span this runtime makes
TRACER_NAME = "modelbundle"
_W3C = TraceContextTextMapPropagator()


class _HeaderGetter(Getter[list[tuple[bytes, bytes]]]):
    """Reads ``traceparent``/``tracestate`` from ASGI's raw header list without building a dict."""

    def get(self, carrier: list[tuple[bytes, bytes]], key: str) -> list[str] | None:
        name = key.encode("latin-1")
        values = [value.decode("latin-1") for header, value in carrier if header == name]
        return values or None

    def keys(self, carrier: list[tuple[bytes, bytes]]) -> list[str]:
        return [header.decode("latin-1") for header, _ in carrier]


_HEADERS = _HeaderGetter()


class Tracing:
    """The tracer provider of this process, and the ASGI middleware that opens a span per request."""

    def __init__(self, service_name: str, exporter: str, environ: Mapping[str, str]) -> None:
        # OTEL_SERVICE_NAME (read by Resource.create) wins over the service's own name
        attributes = {} if environ.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
        self.provider = TracerProvider(resource=Resource.create(attributes), shutdown_on_exit=False)
        self.provider.add_span_processor(BatchSpanProcessor(_exporter(exporter)))
        self.tracer: Tracer = self.provider.get_tracer(TRACER_NAME)

    def bind(self) -> None:
        """Make the tracer reachable from this task and the tasks it starts (the job runner's slots)."""
        _trace_context.tracer.set(self.tracer)

    def middleware(self, app: ASGIApp, api_routes: Mapping[str, str]) -> ASGIApp:
        """``app`` with a SERVER span around every HTTP request and WebSocket; ``api_routes``: route -> API name."""
        return _TracingMiddleware(app, self.tracer, dict(api_routes))

    def shutdown(self) -> None:
        """Export what is still buffered, then stop the exporter's thread."""
        self.provider.shutdown()


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, timeout and compression from the OTEL_* variables


class _TracingMiddleware:
    # Spans are started with an explicit parent and never attached to OpenTelemetry's own
    # context: the request's task carries its span in ``_trace_context`` instead, which saves
    # an attach and a detach per span on the hot path.
    def __init__(self, app: ASGIApp, tracer: Tracer, api_routes: dict[str, str]) -> None:
        self.app = app
        self.tracer = tracer
        self.api_routes = api_routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope.get("method", "GET")
        api = self.api_routes.get(path)
        attributes: dict[str, Any] = {"http.request.method": method, "url.path": path}
        if api is not None:
            attributes["http.route"] = path
            attributes["modelbundle.api"] = api
        if kind == "websocket":
            attributes["url.scheme"] = "ws"
        headers = scope["headers"]
        # most requests carry no trace context: skip the propagator's parsing for them
        parent = _W3C.extract(headers, getter=_HEADERS) if any(name == b"traceparent" for name, _ in headers) else _ROOT
        span = self.tracer.start_span(
            f"{method} {path}" if api is not None else method, context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        trace_id = format(span.get_span_context().trace_id, "032x")
        _trace_context.trace_id.set(trace_id)
        set_trace_id(trace_id)  # the request's access log line carries it
        _trace_context.request_span.set(span)
        _trace_context.tracer.set(self.tracer)
        response = _Response(send)
        if scope["type"] == "websocket":  # the client may be the one that closes: note its code too
            receive = response.noting_close(receive)
        try:
            await self.app(scope, receive, response.send)
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            if api is None:  # Starlette's router leaves the matched route in the scope
                route = getattr(scope.get("route"), "path", None)
                if isinstance(route, str):
                    response.attributes["http.route"] = route
                    span.update_name(f"{method} {route}")
            span.set_attributes(response.attributes)
            if response.attributes.get("http.response.status_code", 0) >= 500:
                span.set_status(Status(StatusCode.ERROR))
            span.end()


_ROOT = Context()


class _Response:
    """Wraps ``send`` to note what the span reports of the answer (set once, when the span ends)."""

    __slots__ = ("_send", "attributes")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.attributes: dict[str, Any] = {}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start" or kind == "websocket.accept":
            self.attributes["http.response.status_code"] = message.get("status", 101)
            for header, value in message.get("headers", ()):
                if header == b"x-request-id":
                    self.attributes["modelbundle.request_id"] = value.decode("latin-1")
                    break
        elif kind == "websocket.close":
            self.attributes["websocket.close_code"] = message.get("code", 1000)
        elif kind == "websocket.http.response.start":  # a refused handshake
            self.attributes["http.response.status_code"] = message["status"]
        await self._send(message)

    def noting_close(self, receive: Receive) -> Receive:
        async def receive_noting_close() -> Message:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.attributes.setdefault("websocket.close_code", message.get("code", 1000))
            return message

        return receive_noting_close


class EndingSpan:
    """A started span, ended on leaving the ``with`` (marked as an error if the block raised)."""

    __slots__ = ("span",)

    def __init__(self, span: Span) -> None:
        self.span = span

    def __enter__(self) -> Span:
        return self.span

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None:
            self.span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        self.span.end()


def child_span(tracer: Tracer, name: str, parent: Span) -> EndingSpan:
    """A span under ``parent`` (a request's ``decode``, ``encode``)."""
    return EndingSpan(tracer.start_span(name, context=set_span_in_context(parent)))


def model_call_span(tracer: Tracer, api: str, served: Iterable[Span], rows: int, requests: int) -> EndingSpan:
    """The span of one model call of ``api``'s batcher: a root linked to each request it served."""
    links = [Link(span.get_span_context()) for span in served]
    attributes: dict[str, Any] = {"modelbundle.api": api, "modelbundle.batch.size": rows, "modelbundle.batch.requests": requests}
    return EndingSpan(tracer.start_span(f"{api} batch", context=_ROOT, kind=SpanKind.INTERNAL, links=links, attributes=attributes))


@contextlib.contextmanager
def job_run_span(tracer: Tracer, api: str, job_id: str, attempt: int, traceparent: str | None) -> Iterator[Span]:
    """A job run's span, child of (and linked to) its submit's span when the job kept a ``traceparent``."""
    parent = _W3C.extract({"traceparent": traceparent}) if traceparent else _ROOT
    submitted = get_current_span(parent).get_span_context()
    links = [Link(submitted)] if submitted.is_valid else []
    attributes: dict[str, Any] = {"modelbundle.api": api, "modelbundle.job_id": job_id, "modelbundle.job.attempt": attempt}
    span = tracer.start_span(f"{api} job", context=parent, kind=SpanKind.CONSUMER, links=links, attributes=attributes)
    _trace_context.trace_id.set(format(span.get_span_context().trace_id, "032x"))
    _trace_context.request_span.set(span)
    try:
        yield span
    except BaseException as exc:
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        span.end()
