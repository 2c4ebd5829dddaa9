"""The access log, kept off the event loop: one line per request and per WebSocket.

uvicorn's access log formats and writes each line on the event loop, through
``logging`` (a record, a lock, a formatter, a write and a flush per request):
44% of the throughput of a 0 ms model. Here the loop only fills a
``RequestRecord`` (``_log_context.py``) and appends it to a deque; a writer
thread wakes every ``FLUSH_INTERVAL_S``, formats what has gathered and writes it
in one call. Lines appear at most that late; ``close()`` (at shutdown, and at
interpreter exit as a fallback) writes every line still waiting, so none is lost.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from ._log_context import RequestRecord, begin_request, end_request
from ._log_format import LogFormat, access_json, access_text
from ._types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from ..service_base import Service
    from ._app import ServiceApp
    from ._config import ServeConfig

#: how often the writer wakes to write what gathered (the lines' lag, never the requests')
FLUSH_INTERVAL_S = 0.05
#: lines formatted between writes, so one wake-up never holds the GIL for long
CHUNK = 128

#: the status logged for a request whose client left before it was answered (nginx's convention)
CLIENT_CLOSED = 499

ApiNamer = Callable[[Scope], "str | None"]


class AccessLogWriter:
    """Formats and writes queued records on its own thread."""

    def __init__(self, log_format: LogFormat, stream: IO[str] | None = None, api_name: ApiNamer | None = None) -> None:
        self._format = access_json if log_format == "json" else access_text
        self._stream = stream
        self._api_name = api_name
        self._records: deque[RequestRecord] = deque()
        self._wake = threading.Event()
        self._closed = False
        self._pid = os.getpid()
        self._lock = threading.Lock()  # close() and the thread must not write the same records twice
        self._thread = threading.Thread(target=self._run, name="modelbundle-access-log", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def put(self, record: RequestRecord) -> None:
        """Called on the event loop: an append (atomic under the GIL), nothing else."""
        self._records.append(record)

    def close(self) -> None:
        """Write every waiting line and stop the thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        self._write_pending()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(FLUSH_INTERVAL_S)
            self._write_pending()

    def _write_pending(self) -> None:
        with self._lock:
            records, stream = self._records, self._stream or sys.stderr
            while records:
                lines = []
                for _ in range(min(len(records), CHUNK)):
                    record = records.popleft()
                    if self._api_name is not None and record.api is None:
                        record.api = self._api_name(record.scope)
                    lines.append(self._format(record, self._pid))
                try:
                    stream.write("".join(lines))
                    stream.flush()
                except (OSError, ValueError):  # stderr closed or gone: nowhere left to write
                    records.clear()
                    return


class AccessLog:
    """ASGI middleware: a ``RequestRecord`` per HTTP request and WebSocket, handed to the writer once answered."""

    def __init__(self, app: ASGIApp, writer: AccessLogWriter) -> None:
        self.app = app
        self.writer = writer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        record = RequestRecord(scope, time.time())
        token = begin_request(record)

        async def send_logged(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.body":
                record.bytes += len(message.get("body", b""))
            elif kind == "http.response.start" or kind == "websocket.http.response.start":
                record.status = message["status"]
                for key, value in message.get("headers", ()):
                    if key == b"x-request-id":
                        record.request_id = value.decode("latin-1")
                        break
            elif kind == "websocket.send":
                record.bytes += len(message.get("bytes") or b"") + len((message.get("text") or "").encode())
            elif kind == "websocket.accept":
                record.status = 101
                for key, value in message.get("headers", ()):
                    if key == b"x-request-id":
                        record.request_id = value.decode("latin-1")
                        break
            elif kind == "websocket.close" and not record.status:
                record.status = 403  # closed before the handshake was accepted: uvicorn answers 403
            elif kind == "websocket.http.response.body":
                record.bytes += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            record.duration = time.perf_counter() - started
            if not record.status and kind == "http":
                record.status = CLIENT_CLOSED  # the client left before its answer: nothing was sent
            end_request(token)
            self.writer.put(record)


def api_namer(service_cls: type[Service]) -> ApiNamer:
    """Which API a request went to, from its path (run on the writer's thread).

    Covers each API's route, its jobs routes and its Open Inference Protocol infer paths;
    other paths (health, metrics, /v1, /invocations) name no API.
    """
    by_path: dict[str, str] = {}
    for api in service_cls.__apis__.values():
        by_path[api.route] = api.name
    jobs_prefixes = [(api.route.rstrip("/") + "/jobs", api.name) for api in service_cls.__apis__.values()]

    def name(scope: Scope) -> str | None:
        path: str = scope.get("path", "")
        found = by_path.get(path)
        if found is not None:
            return found
        for prefix, api_name in jobs_prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                return api_name
        if path.startswith("/v2/models/") and path.endswith("/infer"):
            model = path.split("/")[3]
            return model if model in service_cls.__apis__ else None
        return None

    return name


def with_access_log(app: ServiceApp, config: ServeConfig) -> tuple[ASGIApp, AccessLogWriter | None]:
    """``app`` wrapped in the access log when ``config.access_log`` is on, and its writer to close at exit."""
    if not config.access_log:
        return app, None
    writer = AccessLogWriter(config.log_format, api_name=api_namer(app.service_cls))
    return AccessLog(app, writer), writer
