"""Readers of the two streaming wire formats, written from their specs (not from the server's code)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass
class Event:
    event: str
    data: str


def parse_sse(lines: Iterable[str]) -> list[Event]:
    """Events as the WHATWG EventSource parser builds them (``event``, ``data``; comments skipped)."""
    events: list[Event] = []
    kind, data = "", []
    for line in lines:
        if line == "":
            if data:
                events.append(Event(kind or "message", "\n".join(data)))
            kind, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            kind = value
        elif field == "data":
            data.append(value)
    return events


def sse_lines(text: str) -> list[str]:
    """A whole SSE body split into lines at CRLF, LF or CR (what the spec allows)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def parse_ndjson(text: str) -> list[Any]:
    assert text == "" or text.endswith("\n"), f"an NDJSON body ends with a newline: {text[-80:]!r}"
    return [json.loads(line) for line in text.splitlines()]
