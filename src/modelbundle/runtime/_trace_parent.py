"""W3C trace context: the ``traceparent`` header, parsed into what a span needs of its parent."""

from __future__ import annotations

from typing import NamedTuple

_HEX = frozenset("0123456789abcdef")


class Parent(NamedTuple):
    """The remote span a request continues: its trace, its id, whether it was sampled, its ``tracestate``."""

    trace_id: int
    span_id: int
    sampled: bool
    trace_state: str = ""


def parse_traceparent(value: str, trace_state: str = "") -> Parent | None:
    """``version-traceid-spanid-flags`` as W3C Trace Context level 1 reads it; None when invalid (a new trace starts)."""
    parts = value.strip().split("-")
    if len(parts) < 4:
        return None
    version, trace_hex, span_hex, flags_hex = parts[:4]
    if len(version) != 2 or version == "ff" or (version == "00" and len(parts) != 4):
        return None
    if len(trace_hex) != 32 or len(span_hex) != 16 or len(flags_hex) != 2:
        return None
    if not _HEX.issuperset(version + trace_hex + span_hex + flags_hex):
        return None
    trace_id, span_id, flags = int(trace_hex, 16), int(span_hex, 16), int(flags_hex, 16)
    if not trace_id or not span_id:
        return None
    return Parent(trace_id, span_id, bool(flags & 1), trace_state.strip())


def from_headers(headers: list[tuple[bytes, bytes]]) -> Parent | None:
    """The parent an ASGI request's raw headers name, if any."""
    traceparent = trace_state = None
    for name, value in headers:
        if name == b"traceparent":
            if traceparent is not None:  # two of them: the spec says to ignore both
                return None
            traceparent = value.decode("latin-1")
        elif name == b"tracestate":
            trace_state = value.decode("latin-1") if trace_state is None else f"{trace_state},{value.decode('latin-1')}"
    return parse_traceparent(traceparent, trace_state or "") if traceparent is not None else None
