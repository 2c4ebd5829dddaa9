"""WebSocket messages <-> values, through the same adapters as HTTP bodies.

Incoming, one message is one value of the API's parameter:

- a **text** message is the value's text/plain form when the adapter takes one (a ``str``),
  else JSON;
- a **binary** message is the adapter's binary form (``bytes`` as is, a numpy array as .npy,
  an image as PNG/JPEG...), else UTF-8 JSON.

Outgoing, each yielded item goes out in the media type the handshake's ``Accept`` header picks
(as for an HTTP answer; the adapter's default without one): JSON and text/* as text messages,
anything else as binary ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ..adapters import JSON, Adapter
from ..errors import BadRequest
from ._codec import refuse_non_finite_literal

TEXT = "text/plain"
#: the longest close reason a close frame carries (RFC 6455: 125 bytes of payload, 2 of them the code)
MAX_REASON_BYTES = 123


def decode_message(adapter: Adapter, field: str, message: Mapping[str, Any]) -> Any:
    """The value carried by one ``websocket.receive`` message; RequestError for bad input."""
    text = message.get("text")
    if text is not None:
        if TEXT in adapter.media_types:
            return adapter.from_body(text.encode("utf-8"), TEXT, field)
        return adapter.from_json(_parse_json(text.encode("utf-8")), field)
    data = message.get("bytes") or b""
    media_type = binary_media_type(adapter)
    if media_type is not None:
        return adapter.from_body(data, media_type, field)
    return adapter.from_json(_parse_json(data), field)


def binary_media_type(adapter: Adapter) -> str | None:
    """The media type a binary message is decoded as: the adapter's first that is neither JSON nor text."""
    for media_type in adapter.media_types:
        if media_type != JSON and not media_type.startswith("text/"):
            return media_type
    return None


def message_size(message: Mapping[str, Any]) -> int:
    text = message.get("text")
    return len(text) if text is not None else len(message.get("bytes") or b"")


class MessageEncoder:
    """Encodes the items of one socket in the media type its handshake asked for."""

    def __init__(self, adapter: Adapter, accept: str) -> None:
        self._adapter = adapter
        self.media_type = adapter.response_media_type(accept)
        self._as_text = self.media_type == JSON or self.media_type.startswith("text/")

    def encode(self, item: Any) -> dict[str, Any]:
        """The ``websocket.send`` message for ``item``."""
        adapter = self._adapter
        if self.media_type == JSON:
            return {"type": "websocket.send", "text": orjson.dumps(adapter.to_json(item), option=orjson.OPT_SERIALIZE_NUMPY).decode()}
        body = adapter.to_body(item, self.media_type)
        if self._as_text:
            return {"type": "websocket.send", "text": body.decode("utf-8")}
        return {"type": "websocket.send", "bytes": body}


def close_reason(message: str) -> str:
    """``message``'s first line, cut to what a close frame can carry (whole UTF-8 characters)."""
    line = message.splitlines()[0] if message else ""
    encoded = line.encode("utf-8")
    if len(encoded) <= MAX_REASON_BYTES:
        return line
    return encoded[: MAX_REASON_BYTES - 3].decode("utf-8", "ignore") + "..."


def _parse_json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        refuse_non_finite_literal(data, exc)
        raise BadRequest(f"malformed JSON: {exc}") from None
