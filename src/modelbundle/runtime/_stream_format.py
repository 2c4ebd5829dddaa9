"""The two wire formats of a streaming answer: Server-Sent Events and NDJSON.

- ``text/event-stream`` (asked for with ``Accept: text/event-stream``): one event
  per item, ``data: <item>``. A ``str`` item goes as is, each of its lines its own
  ``data:`` line (so the client's EventSource joins them back with ``\\n``; a
  ``\\r\\n`` inside an item comes back as ``\\n``); anything else is compact JSON.
  The stream ends with ``event: end`` whose data is ``{"items": N}``, or, after a
  failure, with ``event: error`` whose data is the error JSON every other answer uses.
- ``application/x-ndjson`` (any other Accept): one JSON value per line. A failure
  after the first line ends the stream with one last line ``{"error": {...}}``
  (the same error JSON), so a reader that stops on a line with the single key
  ``error`` knows the stream failed; a clean stream just ends.

An SSE event whose data is empty is dropped by browsers' EventSource, so an
empty ``str`` item reaches curl and httpx readers but not EventSource.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from ..adapters import Adapter

SSE_MEDIA_TYPE = "text/event-stream"
NDJSON_MEDIA_TYPE = "application/x-ndjson"
_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def wants_sse(accept: bytes) -> bool:
    return SSE_MEDIA_TYPE.encode() in accept


class StreamFormat:
    """Frames the items of one API's stream for one wire format."""

    media_type: bytes

    def __init__(self, adapter: Adapter) -> None:
        self._adapter = adapter

    def item(self, value: Any) -> bytes:
        raise NotImplementedError

    def end(self, items: int) -> bytes:
        raise NotImplementedError

    def error(self, error_json: bytes) -> bytes:
        raise NotImplementedError

    def _json(self, value: Any) -> bytes:
        return orjson.dumps(self._adapter.to_json(value), option=_ORJSON_OPTIONS)


class ServerSentEvents(StreamFormat):
    media_type = b"text/event-stream; charset=utf-8"

    def __init__(self, adapter: Adapter) -> None:
        super().__init__(adapter)
        from ..adapters import Text

        self._text = isinstance(adapter, Text)

    def item(self, value: Any) -> bytes:
        if not self._text:
            return b"data: " + self._json(value) + b"\n\n"
        text: str = self._adapter.to_json(value)
        if "\n" not in text and "\r" not in text:  # the common case: one data line
            return b"data: " + text.encode("utf-8") + b"\n\n"
        return "".join(f"data: {line}\n" for line in _LINE_BREAK.split(text)).encode("utf-8") + b"\n"

    def end(self, items: int) -> bytes:
        return b'event: end\ndata: {"items":%d}\n\n' % items

    def error(self, error_json: bytes) -> bytes:
        return b"event: error\ndata: " + error_json + b"\n\n"


class NDJSON(StreamFormat):
    media_type = NDJSON_MEDIA_TYPE.encode()

    def item(self, value: Any) -> bytes:
        return self._json(value) + b"\n"

    def end(self, items: int) -> bytes:
        return b""

    def error(self, error_json: bytes) -> bytes:
        return error_json + b"\n"
