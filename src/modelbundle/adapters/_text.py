"""``str`` as text/plain and ``bytes`` as application/octet-stream (base64 inside JSON)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ..errors import BadRequest
from ._base import JSON, Adapter, invalid

TEXT = "text/plain"
OCTET = "application/octet-stream"


class Text(Adapter):
    """A string: a text/plain body, or a JSON string."""

    media_types = (TEXT, JSON)
    json_object = False

    def describe(self) -> str:
        return "a string"

    def from_json(self, value: Any, field: str) -> Any:
        if not isinstance(value, str):
            raise invalid(field, f"expected a string, got {type(value).__name__}")
        return value

    def from_body(self, body: bytes, media_type: str, field: str) -> Any:
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(f"{field}: body is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None

    def to_json(self, value: Any) -> Any:
        return str(value)

    def to_body(self, value: Any, media_type: str) -> bytes:
        return str(value).encode("utf-8")

    def response_media_type(self, accept: str) -> str:
        return JSON if accept.startswith(JSON) else TEXT

    def json_schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        return {"type": "string"}


class Bytes(Adapter):
    """Raw bytes: an application/octet-stream body, or a base64 string inside JSON."""

    media_types = (OCTET, JSON)
    json_object = False

    def describe(self) -> str:
        return "bytes"

    def from_python(self, value: Any, field: str) -> Any:
        if not isinstance(value, bytes | bytearray):
            raise invalid(field, f"expected bytes, got {type(value).__name__}")
        return value

    def from_json(self, value: Any, field: str) -> Any:
        if not isinstance(value, str):
            raise invalid(field, "expected a base64 string")
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            raise invalid(field, "expected a base64 string") from None

    def from_body(self, body: bytes, media_type: str, field: str) -> Any:
        return body

    def to_json(self, value: Any) -> Any:
        return base64.b64encode(bytes(value)).decode("ascii")

    def to_body(self, value: Any, media_type: str) -> bytes:
        return bytes(value)

    def response_media_type(self, accept: str) -> str:
        return JSON if accept.startswith(JSON) else OCTET

    def json_schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        return {"type": "string", "contentEncoding": "base64"}
