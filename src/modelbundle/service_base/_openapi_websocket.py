"""The OpenAPI path item of a WebSocket API.

OpenAPI has no WebSocket operation: the handshake is documented as the ``GET`` it is
(101 on success, the HTTP errors the runtime answers it with), and the messages'
schemas go in an ``x-websocket`` extension: ``incoming`` is one message the client sends,
``outgoing`` one message the API sends back.
"""

from __future__ import annotations

from typing import Any

from ..adapters import JSON
from ._method import APIMethod

_ERROR_REF = {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}
_HANDSHAKE_ERRORS = {
    "426": "A plain GET, without the WebSocket upgrade.",
    "503": "Not ready, shutting down, or past --max-concurrency; retry after the Retry-After header's seconds.",
}


def websocket_path_item(api: APIMethod, defs: dict[str, Any]) -> dict[str, Any]:
    """``{"get": ...}`` for ``api`` (``api.websocket`` is True); shared schemas go into ``defs``."""
    incoming = api.params[0].adapter
    # the rules of runtime/_ws_messages.py, in words
    text = "the string itself" if "text/plain" in incoming.media_types else "JSON"
    binary = next((m for m in incoming.media_types if m != JSON and not m.startswith("text/")), "UTF-8 JSON")
    description = (
        f"{api.doc}\n\nA WebSocket: each message the client sends carries {incoming.describe()} "
        f"(a text message: {text}; a binary one: {binary}); each message sent back carries "
        f"{api.output.describe()}. Close codes: 1000 done, 1007 bad input, 1009 message too big, "
        "1011 the API raised, 1001 the server is shutting down."
    )
    responses: dict[str, Any] = {"101": {"description": "Switching Protocols: the conversation begins."}}
    for status, text in _HANDSHAKE_ERRORS.items():
        responses[status] = {"description": text, "content": _ERROR_REF}
    return {
        "get": {
            "operationId": api.name,
            "summary": (api.doc.splitlines() or [api.name])[0],
            "description": description.strip(),
            "responses": responses,
            "x-websocket": {
                "incoming": incoming.json_schema(defs),
                "outgoing": api.output.json_schema(defs),
            },
        }
    }
