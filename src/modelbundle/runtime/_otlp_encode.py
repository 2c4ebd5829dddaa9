"""OTLP's protobuf wire format for a batch of spans (``ExportTraceServiceRequest``), written by hand.

Only what the runtime's spans hold: ids, names, kinds, times, attributes (str, bool, int, float),
links, status. Attribute pairs, names and the resource repeat from span to span, so their
encoded bytes are cached; what is left per span is a few ``bytes`` joins on the exporter's thread.
Field numbers are those of ``opentelemetry/proto/trace/v1/trace.proto``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any

from ._span_record import SpanRecord

_TIMES = struct.Struct("<BQBQ")  # start (field 7) and end (field 8), both fixed64
_DOUBLE = struct.Struct("<d")
_CACHE_LIMIT = 4096


def _varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _any_value(value: Any) -> bytes:
    if isinstance(value, bool):  # before int: a bool is an int
        return b"\x10" + (b"\x01" if value else b"\x00")
    if isinstance(value, int):
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)  # int64, two's complement
    if isinstance(value, float):
        return b"\x21" + _DOUBLE.pack(value)
    if isinstance(value, (list, tuple)):
        return _field(5, b"".join(_field(1, _any_value(item)) for item in value))
    return _field(1, str(value).encode())


def key_value(key: str, value: Any) -> bytes:
    """A ``KeyValue`` message."""
    return _field(1, key.encode()) + _field(2, _any_value(value))


class Encoder:
    """Encodes batches of spans of one resource and instrumentation scope."""

    def __init__(self, resource: Mapping[str, Any], scope_name: str, scope_version: str) -> None:
        self._resource = _field(1, b"".join(_field(1, key_value(k, v)) for k, v in resource.items()))
        self._scope = _field(1, _field(1, scope_name.encode()) + _field(2, scope_version.encode()))
        self._attributes: dict[tuple[str, type, Any], bytes] = {}
        self._names: dict[str, bytes] = {}

    def encode(self, spans: Iterable[SpanRecord]) -> bytes:
        body = self._scope + b"".join([_field(2, self._span(span)) for span in spans])
        return _field(1, self._resource + _field(2, body))

    def _span(self, span: SpanRecord) -> bytes:
        name = self._names.get(span.name)
        if name is None:
            if len(self._names) > _CACHE_LIMIT:
                self._names.clear()
            name = self._names[span.name] = _field(5, span.name.encode())
        parts = [
            b"\x0a\x10", span.trace_id.to_bytes(16, "big"), b"\x12\x08", span.span_id.to_bytes(8, "big"),
        ]
        if span.trace_state:
            parts.append(_field(3, span.trace_state.encode()))
        if span.parent_span_id:
            parts += (b"\x22\x08", span.parent_span_id.to_bytes(8, "big"))
        parts += (name, b"\x30", _varint(span.kind), _TIMES.pack(0x39, span.start_ns, 0x41, span.end_ns))
        parts += [self._attribute(key, value) for key, value in span.attributes.items()]
        for link in span.links:
            trace_id, span_id = (link.trace_id, link.span_id) if isinstance(link, SpanRecord) else link
            parts.append(_field(13, b"\x0a\x10" + trace_id.to_bytes(16, "big") + b"\x12\x08" + span_id.to_bytes(8, "big")))
        if span.status:
            message = _field(2, span.status_message.encode()) if span.status_message else b""
            parts.append(_field(15, message + b"\x18" + _varint(span.status)))
        return b"".join(parts)

    def _attribute(self, key: str, value: Any) -> bytes:
        cache_key = (key, type(value), value) if not isinstance(value, (list, dict)) else None
        if cache_key is None:
            return _field(9, key_value(key, value))
        encoded = self._attributes.get(cache_key)
        if encoded is None:
            if len(self._attributes) > _CACHE_LIMIT:  # request ids never repeat: start over now and then
                self._attributes.clear()
            encoded = self._attributes[cache_key] = _field(9, key_value(key, value))
        return encoded
