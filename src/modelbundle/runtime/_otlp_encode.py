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
        self._attributes: dict[tuple[Any, ...], bytes] = {}
        self._heads: dict[tuple[str, int], bytes] = {}

    def encode(self, spans: Iterable[SpanRecord]) -> bytes:
        body = self._scope + b"".join([_length_prefixed(b"\x12", self._span(span)) for span in spans])
        return _field(1, self._resource + _field(2, body))

    def _span(self, span: SpanRecord) -> bytes:
        head = self._heads.get((span.name, span.kind))
        if head is None:  # the name and kind fields, the same for every span of a route
            if len(self._heads) > _CACHE_LIMIT:
                self._heads.clear()
            head = self._heads[span.name, span.kind] = _field(5, span.name.encode()) + b"\x30" + _varint(span.kind)
        trace_id = span.trace_id
        if span.parent_span_id:
            ids = _IDS_PARENT.pack(0x0A10, trace_id >> 64, trace_id & _LOW_64, 0x1208, span.span_id, 0x2208, span.parent_span_id)
        else:
            ids = _IDS.pack(0x0A10, trace_id >> 64, trace_id & _LOW_64, 0x1208, span.span_id)
        parts = [ids, _field(3, span.trace_state.encode()) if span.trace_state else b"", head, _TIMES.pack(0x39, span.start_ns, 0x41, span.end_ns)]
        attributes = self._attributes
        for key, value in span.attributes.items():
            kind = type(value)
            if key in UNIQUE_KEYS or kind not in _CACHED_TYPES:
                parts.append(_field(9, key_value(key, value)))
                continue
            cache_key = (key, value) if kind is str else (key, value, kind)  # True == 1: keep them apart
            encoded = attributes.get(cache_key)
            if encoded is None:
                if len(attributes) > _CACHE_LIMIT:
                    attributes.clear()
                encoded = attributes[cache_key] = _field(9, key_value(key, value))
            parts.append(encoded)
        for link in span.links:
            link_trace, link_span = (link.trace_id, link.span_id) if isinstance(link, SpanRecord) else link
            parts.append(b"\x6a\x1c" + _IDS.pack(0x0A10, link_trace >> 64, link_trace & _LOW_64, 0x1208, link_span))
        for time_ns, name, event_attributes in span.events:
            event = b"\x09" + struct.pack("<Q", time_ns) + _field(2, name.encode())
            event += b"".join(_field(3, key_value(k, v)) for k, v in event_attributes.items())
            parts.append(_field(11, event))
        if span.status:
            message = _field(2, span.status_message.encode()) if span.status_message else b""
            parts.append(_field(15, message + b"\x18" + _varint(span.status)))
        return b"".join(parts)


def _length_prefixed(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


#: attributes whose every value is new: never worth caching
UNIQUE_KEYS = frozenset({"modelbundle.request_id", "modelbundle.job_id"})
_CACHED_TYPES = (str, int, bool, float)
_LOW_64 = (1 << 64) - 1
_IDS = struct.Struct(">HQQHQ")  # trace_id (field 1, 16 bytes) and span_id (field 2, 8 bytes)
_IDS_PARENT = struct.Struct(">HQQHQHQ")  # and parent_span_id (field 4)
