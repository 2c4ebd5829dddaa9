"""Tracing of one server process (imported only when ``_tracing_setup`` turns it on).

Spans:

- one SERVER span per HTTP request or WebSocket, from the first byte to the last (a stream's or
  a socket's whole life), child of an incoming W3C ``traceparent``; attributes: method, path,
  route, status, API, request id;
- ``decode`` and ``encode`` children of an API request's span (``_spans.py``);
- one span per model call (``_spans.py``) of a micro-batcher: a new root linked to every request (or job run)
  it served, with the batch's rows and requests as attributes. A root, not a child of one of
  them, because a batch belongs to all its requests alike;
- one CONSUMER span per job run, child of (and linked to) the span of the request that
  submitted it, whose ``traceparent`` the job keeps.

The spans are the runtime's own records (``_span_record.py``), not the OpenTelemetry SDK's:
the request's task fills a few slots and queues the ended span; a thread encodes OTLP and
exports (``_span_export.py``). The SDK is used once, at start-up, for the resource
(``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``). Sampling: ``_sampler.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from . import _trace_context
from ._log_context import set_trace_id
from ._otlp_encode import Encoder
from ._sampler import Sampler, sampler_from
from ._span_export import OtlpHttpSender, SpanExporter, console_send, otlp_send
from ._span_record import CONSUMER, SERVER, SpanRecord, new_trace_id
from ._trace_context import request_span
from ._trace_context import trace_id as trace_id_var
from ._trace_parent import from_headers, parse_traceparent
from ._types import ASGIApp, Message, Receive, Scope, Send

#: the instrumentation scope of every span this runtime makes
TRACER_NAME = "modelbundle"


class Tracer:
    """Starts spans: sampling decided here, ended spans handed to the exporter."""

    def __init__(self, sampler: Sampler, exporter: SpanExporter) -> None:
        self.sampler = sampler
        self.sink = exporter.add

    def root_span(self, name: str, kind: int, attributes: dict[str, Any], traceparent: Any = None, links: tuple[Any, ...] = ()) -> SpanRecord:
        """A span whose parent is remote (a parsed ``traceparent``), or none: sampled as the sampler says."""
        if traceparent is None:
            trace_id = new_trace_id()
            return SpanRecord(self.sink, name, kind, trace_id, 0, self.sampler(None, trace_id), attributes, links)
        return SpanRecord(
            self.sink, name, kind, traceparent.trace_id, traceparent.span_id,
            self.sampler(traceparent.sampled, traceparent.trace_id), attributes, links, traceparent.trace_state,
        )


class Tracing:
    """The tracer of this process, its exporter, and the ASGI middleware that opens a span per request."""

    def __init__(self, service_name: str, exporter: str, environ: Mapping[str, str]) -> None:
        from opentelemetry.sdk.resources import Resource  # once: the standard resource attributes

        # OTEL_SERVICE_NAME (read by Resource.create) wins over the service's own name
        attributes = {} if environ.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
        resource = dict(Resource.create(attributes).attributes)
        sampler = sampler_from(environ)
        if exporter == "console":
            send = console_send(str(resource.get("service.name", service_name)))
        else:
            send = otlp_send(Encoder(resource, TRACER_NAME, _version()), OtlpHttpSender(environ))
        self.exporter = SpanExporter(send, environ)
        self.tracer = Tracer(sampler, self.exporter)

    def bind(self) -> None:
        """Make the tracer reachable from this task and the tasks it starts (the job runner's slots)."""
        _trace_context.tracer.set(self.tracer)

    def middleware(self, app: ASGIApp, api_routes: Mapping[str, str]) -> ASGIApp:
        """``app`` with a SERVER span around every HTTP request and WebSocket; ``api_routes``: route -> API name."""
        return _TracingMiddleware(app, self.tracer, dict(api_routes))

    def shutdown(self) -> None:
        """Export what is still queued, then stop the exporter's thread."""
        self.exporter.shutdown()


def _version() -> str:
    try:
        return version("modelbundle")
    except PackageNotFoundError:
        return ""


class _TracingMiddleware:
    def __init__(self, app: ASGIApp, tracer: Tracer, api_routes: dict[str, str]) -> None:
        self.app = app
        self.tracer = tracer
        self.api_routes = api_routes
        self._names: dict[tuple[str, str], str] = {}

    def _name(self, method: str, route: str) -> str:
        """``METHOD /route``, made once per API route (only known routes get here: the cache is bounded)."""
        name = self._names.get((method, route))
        if name is None:
            name = self._names[method, route] = f"{method} {route}"
        return name

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
        parent = None
        for name, _ in headers:  # most requests carry no trace context: parse only those that do
            if name == b"traceparent":
                parent = from_headers(headers)
                break
        span = self.tracer.root_span(self._name(method, path) if api is not None else method, SERVER, attributes, parent)
        trace_id = f"{span.trace_id:032x}"
        trace_id_var.set(trace_id)
        set_trace_id(trace_id)  # the request's access log line carries it
        request_span.set(span)  # the decode, encode and model-call spans start from it (``_spans.py``)
        response = _Response(send, attributes)
        if kind == "websocket":  # the client may be the one that closes: note its code too
            receive = response.noting_close(receive)
        try:
            await self.app(scope, receive, response.send)
        except BaseException as exc:
            span.record_exception(exc)
            raise
        finally:
            if api is None:  # Starlette's router leaves the matched route in the scope
                route = getattr(scope.get("route"), "path", None)
                if isinstance(route, str):
                    attributes["http.route"] = route
                    span.name = f"{method} {route}"
            if attributes.get("http.response.status_code", 0) >= 500:
                span.set_error()
            span.end()


class _Response:
    """Wraps ``send`` to note what the span reports of the answer, straight into its attributes."""

    __slots__ = ("_send", "attributes")

    def __init__(self, send: Send, attributes: dict[str, Any]) -> None:
        self._send = send
        self.attributes = attributes

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


@contextlib.contextmanager
def job_run_span(tracer: Tracer, api: str, job_id: str, attempt: int, traceparent: str | None) -> Iterator[SpanRecord]:
    """A job run's span, child of (and linked to) its submit's span when the job kept a ``traceparent``."""
    parent = parse_traceparent(traceparent) if traceparent else None
    links = ((parent.trace_id, parent.span_id),) if parent is not None else ()
    attributes: dict[str, Any] = {"modelbundle.api": api, "modelbundle.job_id": job_id, "modelbundle.job.attempt": attempt}
    span = tracer.root_span(f"{api} job", CONSUMER, attributes, parent, links)
    trace_id_var.set(f"{span.trace_id:032x}")
    request_span.set(span)
    try:
        yield span
    except BaseException as exc:
        span.record_exception(exc)
        raise
    finally:
        span.end()
