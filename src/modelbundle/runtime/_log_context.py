"""What the logs know about the request being served: one ``RequestRecord`` per request.

The access log (``_access_log.py``) makes the record when a request arrives and
puts it in a context variable, so code running for that request, in its task or
in a thread that copied its context, can add to it cheaply; the record is
formatted later, off the event loop. Hooks for other parts of the runtime:

- ``note_batch_size(rows)``: the batcher, once the model call that served the request ends;
- ``set_trace_id(trace_id)``: tracing, when it starts the request's span (the hex trace id;
  empty until then). Log lines of the server written while the request runs carry it too.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

__all__ = ["RequestRecord", "begin_request", "current_request", "end_request", "note_batch_size", "set_trace_id"]


class RequestRecord:
    """One request (or WebSocket) as the access log writes it; filled while it is served.

    It keeps the ASGI scope and reads method, path and client from it only when the
    line is formatted, on the writer's thread: the event loop does no more than fill slots.
    """

    __slots__ = ("api", "batch_size", "bytes", "duration", "request_id", "scope", "status", "time", "trace_id")

    def __init__(self, scope: Any, wall_time: float) -> None:
        self.scope = scope
        #: seconds since the epoch when the request arrived
        self.time = wall_time
        #: 101 for an accepted WebSocket; 0 if no answer started (the client left first)
        self.status = 0
        #: body bytes sent (WebSocket: message bytes sent)
        self.bytes = 0
        #: seconds from arrival to the last byte sent (WebSocket: until it closed)
        self.duration = 0.0
        self.request_id = ""
        self.trace_id = ""
        #: the API that served it, when the access log knows the route; else None
        self.api: str | None = None
        #: rows in the model call that served it, for a batched API; else None
        self.batch_size: int | None = None

    def known_request_id(self) -> str:
        """The answer's X-Request-ID, or before the answer the client's (which the runtime echoes when valid)."""
        if self.request_id:
            return self.request_id
        for key, value in self.scope.get("headers", ()):
            if key == b"x-request-id":
                return value.decode("latin-1")  # type: ignore[no-any-return]
        return ""


_current: ContextVar[RequestRecord | None] = ContextVar("modelbundle_request_record", default=None)


def begin_request(record: RequestRecord) -> Token[RequestRecord | None]:
    """Make ``record`` the current request's (the access log does, as a request arrives)."""
    return _current.set(record)


def end_request(token: Token[RequestRecord | None]) -> None:
    _current.reset(token)


def current_request() -> RequestRecord | None:
    """The record of the request this code runs for, or None (outside a request, or access log off)."""
    return _current.get()


def note_batch_size(rows: int) -> None:
    """Rows in the model call that served the current request (called by the batcher)."""
    record = _current.get()
    if record is not None:
        record.batch_size = rows


def set_trace_id(trace_id: str) -> None:
    """The current request's trace id (hex), for its access log line and the server's lines meanwhile."""
    record = _current.get()
    if record is not None:
        record.trace_id = trace_id
