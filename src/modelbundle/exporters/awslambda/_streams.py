"""Streaming and WebSocket APIs on Lambda, which answers each event with one response.

A zip function cannot send a response in pieces through this handler, so a streaming
API is refused, at export and again at init, unless ``--buffer-streams``: then it runs
to its end and answers with the whole stream (``str`` items joined into one string,
other items as one JSON array). The Lambda image has no such flag and refuses them.
A WebSocket API cannot be served at all: the zip is still made for the other APIs
(with a warning), and an event for it gets a 501.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from ...errors import ExportError, ServeError
from ._events import HTTPResponse

#: (name, streaming, websocket) of each API
APIKinds = Sequence[tuple[str, bool, bool]]

BUFFER_HINT = (
    "a Lambda zip answers each event with one response; pass --buffer-streams to answer with the whole stream at once"
)
#: the Lambda image has no --buffer-streams: its ways out
IMAGE_HINT = (
    "a Lambda image answers each event with one response; export a zip with `bundle export lambda --buffer-streams` "
    "to answer with the whole stream at once, or build the default image, which streams"
)


def streaming_apis(apis: APIKinds) -> list[str]:
    """The APIs that stream their answer over HTTP (WebSocket APIs aside)."""
    return [name for name, streaming, websocket in apis if streaming and not websocket]


def websocket_apis(apis: APIKinds) -> list[str]:
    return [name for name, _, websocket in apis if websocket]


def check_streams(service: str, apis: APIKinds, buffer_streams: bool) -> None:
    """ServeError at the handler's init for what the export would have refused."""
    try:
        check_export(service, apis, buffer_streams)
    except ExportError as exc:
        raise ServeError(str(exc)) from None


def check_export(owner: str, apis: APIKinds, buffer_streams: bool, hint: str = BUFFER_HINT) -> list[str]:
    """The WebSocket APIs the zip leaves out; ExportError for a streaming API without ``buffer_streams``,
    or when every API is a WebSocket one (nothing would be served)."""
    streams = streaming_apis(apis)
    if streams and not buffer_streams:
        raise ExportError(f"{owner}: {streams[0]} streams its answer, and {hint}")
    websockets = websocket_apis(apis)
    if websockets and len(websockets) == len(apis):
        raise ExportError(f"{owner}: every API is a WebSocket API ({', '.join(websockets)}), which Lambda cannot serve")
    return websockets


def websocket_refusal(api: str, request_id: str) -> HTTPResponse:
    """The answer to an event for a WebSocket API: 501, in the runtime's error shape."""
    message = f"{api} is a WebSocket API, which Lambda does not serve; serve the bundle with `bundle serve` or a container"
    body = {"error": {"type": "not_implemented", "message": message, "request_id": request_id}}
    return HTTPResponse(501, [(b"content-type", b"application/json")], json.dumps(body).encode())
