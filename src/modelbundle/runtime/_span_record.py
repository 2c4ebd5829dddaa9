"""The runtime's own span record: what the hot path fills, instead of an OpenTelemetry SDK span.

A span is a few slots (random ids, ``time.time_ns`` start and end, attributes in a dict); ending
it appends it to the exporter's queue (``_span_export.py``), whose thread encodes and sends it.
The SDK's spans cost tens of microseconds each (locks, a context object, attribute checks) on
the event loop; these cost about one.
"""

from __future__ import annotations

import random
import time
from typing import Any, Protocol

#: OTLP's span kinds (``opentelemetry.proto.trace.v1.Span.SpanKind``)
INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER = 1, 2, 3, 4, 5
#: OTLP's status codes
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2

# ids need to be unique, not secret: a private Mersenne Twister, seeded from os.urandom
_random = random.Random()
_bits = _random.getrandbits


class Sink(Protocol):
    """Where ended spans go (the exporter's queue)."""

    def __call__(self, span: SpanRecord) -> None: ...


class SpanRecord:
    """One span; ``sampled`` False makes a span that carries its ids for propagation but is never exported."""

    __slots__ = (
        "attributes", "end_ns", "events", "kind", "links", "name", "parent_span_id", "sampled", "sink", "span_id",
        "start_ns", "status", "status_message", "trace_id", "trace_state",
    )

    def __init__(
        self,
        sink: Sink,
        name: str,
        kind: int,
        trace_id: int,
        parent_span_id: int,
        sampled: bool,
        attributes: dict[str, Any] | None = None,
        links: tuple[SpanRecord | tuple[int, int], ...] = (),
        trace_state: str = "",
    ) -> None:
        self.sink = sink
        self.name = name
        self.kind = kind
        self.trace_id = trace_id
        self.span_id = _bits(64) or 1  # 0 is the invalid span id
        self.parent_span_id = parent_span_id
        self.sampled = sampled
        self.attributes = attributes if attributes is not None else {}
        self.links = links
        self.trace_state = trace_state
        self.status = STATUS_UNSET
        self.status_message = ""
        self.events: tuple[tuple[int, str, dict[str, Any]], ...] = ()
        self.end_ns = 0
        self.start_ns = time.time_ns()

    def is_recording(self) -> bool:
        return self.sampled

    def set_error(self, message: str = "") -> None:
        self.status = STATUS_ERROR
        self.status_message = message

    def record_exception(self, exc: BaseException) -> None:
        """Mark the span as an error, with an ``exception`` event as OpenTelemetry's conventions name it."""
        message = f"{type(exc).__name__}: {exc}"
        self.set_error(message)
        attributes = {"exception.type": type(exc).__qualname__, "exception.message": str(exc)}
        self.events += ((time.time_ns(), "exception", attributes),)

    def child(self, name: str) -> SpanRecord:
        """An INTERNAL span under this one (a request's ``decode``, ``encode``), sampled as this one is."""
        return SpanRecord(self.sink, name, INTERNAL, self.trace_id, self.span_id, self.sampled, None, (), self.trace_state)

    def __enter__(self) -> SpanRecord:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        """Ends the span on leaving a ``with`` block, marked as an error if the block raised."""
        if exc is not None:
            self.record_exception(exc)
        self.end()

    def end(self) -> None:
        if self.end_ns:  # ended already
            return
        self.end_ns = time.time_ns()
        if self.sampled:
            self.sink(self)

    @property
    def traceparent(self) -> str:
        """This span as a W3C ``traceparent`` header."""
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-{'01' if self.sampled else '00'}"


def new_trace_id() -> int:
    return _bits(128) or 1  # 0 is the invalid trace id
