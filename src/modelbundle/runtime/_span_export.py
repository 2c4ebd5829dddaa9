"""The exporter of ended spans: a queue the hot path appends to, and a thread that sends batches.

The event loop's whole share is a ``deque.append`` (and, once a batch's worth has queued, waking
the thread). The thread wakes every ``OTEL_BSP_SCHEDULE_DELAY`` ms or when a batch is full,
encodes up to ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` spans per POST (``_otlp_encode.py``) and sends
them over one kept-alive connection. Past ``OTEL_BSP_MAX_QUEUE_SIZE`` queued spans, new ones are
dropped and counted (a warning says how many), rather than growing without bound when the
collector is slow or gone. ``shutdown`` sends everything still queued.
"""

from __future__ import annotations

import gzip
import http.client
import json
import logging
import ssl
import sys
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Mapping
from typing import IO

from ..errors import ServeError
from ._otlp_encode import Encoder
from ._span_record import SpanRecord

logger = logging.getLogger("modelbundle.tracing")

_RETRY_STATUSES = (429, 502, 503, 504)


def _setting(environ: Mapping[str, str], name: str, default: str = "") -> str:
    """``OTEL_EXPORTER_OTLP_TRACES_<name>``, else ``OTEL_EXPORTER_OTLP_<name>``."""
    for variable in (f"OTEL_EXPORTER_OTLP_TRACES_{name}", f"OTEL_EXPORTER_OTLP_{name}"):
        value = environ.get(variable, "").strip()
        if value:
            return value
    return default


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ServeError(f"{name}={text!r}: expected a positive number")
    return value


class OtlpHttpSender:
    """POSTs encoded batches to the OTLP/HTTP traces endpoint the ``OTEL_EXPORTER_OTLP_*`` variables name."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        if not endpoint:
            base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or "http://localhost:4318"
            endpoint = base.rstrip("/") + "/v1/traces"
        url = urllib.parse.urlsplit(endpoint)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ServeError(f"OTLP traces endpoint {endpoint!r}: expected an http:// or https:// URL")
        self.endpoint = endpoint
        self._https = url.scheme == "https"
        self._host, self._port = url.hostname, url.port
        self._path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self._timeout = _number(environ, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", 0) or _number(environ, "OTEL_EXPORTER_OTLP_TIMEOUT", 10)
        compression = _setting(environ, "COMPRESSION", "none").lower()
        if compression not in ("gzip", "none"):
            raise ServeError(f"OTEL_EXPORTER_OTLP_COMPRESSION={compression!r}: modelbundle sends gzip or none")
        self._gzip = compression == "gzip"
        self._headers = {"Content-Type": "application/x-protobuf", **_headers(_setting(environ, "HEADERS"))}
        if self._gzip:
            self._headers["Content-Encoding"] = "gzip"
        self._context: ssl.SSLContext | None = None
        if self._https:
            self._context = ssl.create_default_context(cafile=_setting(environ, "CERTIFICATE") or None)
            certificate = _setting(environ, "CLIENT_CERTIFICATE")
            if certificate:
                self._context.load_cert_chain(certificate, _setting(environ, "CLIENT_KEY") or None)
        self._connection: http.client.HTTPConnection | None = None

    def send(self, body: bytes, deadline: float) -> None:
        """POST one batch, retrying what a collector says is passing (429, 5xx gateways, a dropped connection)."""
        if self._gzip:
            body = gzip.compress(body, compresslevel=1)
        delay = 0.5
        while True:
            try:
                status = self._post(body)
            except OSError as exc:  # refused, reset, timed out: try a fresh connection
                self.close()
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if 200 <= status < 300:
                    return
                problem = f"HTTP {status}"
                if status not in _RETRY_STATUSES:
                    raise ExportError(problem)
            if time.monotonic() + delay > deadline:
                raise ExportError(problem)
            time.sleep(delay)
            delay *= 2

    def _post(self, body: bytes) -> int:
        if self._connection is None:
            if self._https:
                self._connection = http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout, context=self._context)
            else:
                self._connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        self._connection.request("POST", self._path, body, self._headers)
        response = self._connection.getresponse()
        response.read()
        if response.will_close:
            self.close()
        return response.status

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _headers(text: str) -> dict[str, str]:
    """``OTEL_EXPORTER_OTLP_HEADERS``: ``key=value`` pairs, comma-separated, URL-encoded."""
    headers = {}
    for pair in text.split(","):
        key, equals, value = pair.partition("=")
        if key.strip() and equals:
            headers[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip())
    return headers


class ExportError(Exception):
    """A batch the collector did not take."""


class SpanSettings:
    """The queue's ``OTEL_BSP_*`` settings (the SDK's batch span processor's names and defaults)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.delay = _number(environ, "OTEL_BSP_SCHEDULE_DELAY", 5000) / 1000
        self.max_queue = int(_number(environ, "OTEL_BSP_MAX_QUEUE_SIZE", 2048))
        self.batch = min(int(_number(environ, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)), self.max_queue)
        self.export_timeout = _number(environ, "OTEL_BSP_EXPORT_TIMEOUT", 30000) / 1000


class SpanExporter:
    """The queue and the thread; ``add`` is the hot path's hook (``SpanRecord``'s sink)."""

    def __init__(self, send: Callable[[list[SpanRecord], float], None], environ: Mapping[str, str]) -> None:
        self._send = send
        settings = SpanSettings(environ)
        self._delay, self._max_queue, self._batch = settings.delay, settings.max_queue, settings.batch
        self._export_timeout = settings.export_timeout
        self._queue: deque[SpanRecord] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self.dropped = 0
        self._dropped_reported = 0
        self._thread = threading.Thread(target=self._run, name="modelbundle-span-export", daemon=True)
        self._thread.start()

    def add(self, span: SpanRecord) -> None:
        queued = len(self._queue)
        if queued >= self._max_queue or self._stopping:
            self.dropped += 1
            return
        self._queue.append(span)
        if queued + 1 >= self._batch and not self._wake.is_set():
            self._wake.set()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._delay)
            self._wake.clear()
            self._export_queued()
        self._export_queued()

    def _export_queued(self) -> None:
        queue = self._queue
        while queue:
            batch = [queue.popleft() for _ in range(min(self._batch, len(queue)))]
            try:
                self._send(batch, time.monotonic() + self._export_timeout)
            except Exception as exc:  # a collector's trouble must not end the thread (nor the server)
                logger.warning("tracing: %d spans not exported: %s", len(batch), exc)
        if self.dropped > self._dropped_reported:
            logger.warning("tracing: %d spans dropped, the export queue was full", self.dropped - self._dropped_reported)
            self._dropped_reported = self.dropped

    def shutdown(self) -> None:
        """Send what is queued, then stop the thread (spans ended after this are dropped)."""
        self._stopping = True
        self._wake.set()
        self._thread.join(self._export_timeout + 1)


def otlp_send(encoder: Encoder, sender: OtlpHttpSender) -> Callable[[list[SpanRecord], float], None]:
    def send(batch: list[SpanRecord], deadline: float) -> None:
        sender.send(encoder.encode(batch), deadline)

    return send


def console_send(service_name: str, stream: IO[str] | None = None) -> Callable[[list[SpanRecord], float], None]:
    """Spans as JSON lines on stdout (``OTEL_TRACES_EXPORTER=console``), for a quick look."""

    def send(batch: list[SpanRecord], deadline: float) -> None:
        out = stream or sys.stdout
        for span in batch:
            record = {
                "name": span.name, "service": service_name, "trace_id": f"{span.trace_id:032x}",
                "span_id": f"{span.span_id:016x}", "parent_id": f"{span.parent_span_id:016x}" if span.parent_span_id else None,
                "kind": span.kind, "start_ns": span.start_ns, "end_ns": span.end_ns, "attributes": span.attributes,
                "links": [f"{_link_ids(link)[0]:032x}-{_link_ids(link)[1]:016x}" for link in span.links],
                "status": span.status, "status_message": span.status_message or None,
                "events": [{"time_ns": when, "name": name, "attributes": attrs} for when, name, attrs in span.events],
            }
            out.write(json.dumps(record, default=str) + "\n")
        out.flush()

    return send


def _link_ids(link: SpanRecord | tuple[int, int]) -> tuple[int, int]:
    return (link.trace_id, link.span_id) if isinstance(link, SpanRecord) else link
