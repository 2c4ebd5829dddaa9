"""A streaming API's answer, read line by line as the runtime writes it (``runtime/_stream_format.py``).

The client asks for NDJSON: one JSON item per line, and on a failure after the first item one
last line ``{"error": {...}}``, raised here as the server's exception.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..adapters import JSON, Adapter
from ._wire import build_error, decode_value

NDJSON = "application/x-ndjson"


def decode_line(line: str | bytes, output: Adapter) -> tuple[bool, Any]:
    """(True, item) for a line holding an item, (False, None) for a blank one; raises a failure line's error."""
    if not line.strip():
        return False, None
    raw = line.encode("utf-8") if isinstance(line, str) else line
    if raw.startswith(b'{"error"'):
        document = orjson.loads(raw)
        if isinstance(document, dict) and list(document) == ["error"] and isinstance(document["error"], dict):
            error = document["error"]
            raise build_error(str(error.get("type", "")), str(error.get("message", "")), None, str(error.get("request_id", "")))
    return True, decode_value(JSON, raw, output)
