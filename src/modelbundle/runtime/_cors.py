"""``Cors``: ``--cors-origin ORIGIN`` (repeatable; ``*`` for any), an ASGI layer; off when no origin is given.

A preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered here,
204 with the allowed origin, methods, headers and max-age, before any API key is asked
for: browsers send preflights without credentials. Every other request from an allowed
origin gets Access-Control-Allow-Origin and Vary: Origin on its response, errors
included, so a page can read a 401 or a 429 too.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import RequestError
from ._codec import error_body
from ._types import ASGIApp, Message, Receive, Scope, Send

ALLOW_METHODS = b"GET, POST, DELETE, OPTIONS"
#: headers a page may send when its preflight names none
DEFAULT_ALLOW_HEADERS = b"Authorization, Content-Type, Accept, X-API-Key, X-Request-ID"
#: response headers a page may read beyond the CORS-safelisted ones
EXPOSE_HEADERS = b"X-Request-ID, Retry-After, WWW-Authenticate"
#: seconds a browser may cache a preflight's answer
MAX_AGE = b"600"


class Cors:
    """Answers preflights and marks responses to allowed origins; wraps ``app``."""

    def __init__(self, app: ASGIApp, origins: Iterable[str]) -> None:
        self.app = app
        self._origins = {origin.rstrip("/").encode("latin-1") for origin in origins}
        self._any = b"*" in self._origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = request_method = None
        for key, value in scope["headers"]:
            if key == b"origin":
                origin = value
            elif key == b"access-control-request-method":
                request_method = value
        if origin is None:  # not a cross-origin request from a browser
            await self.app(scope, receive, send)
            return
        allowed = self._any or origin in self._origins
        if scope["method"] == "OPTIONS" and request_method is not None:
            await self._preflight(scope, send, origin if allowed else None)
            return
        if not allowed:  # the browser hides the answer from the page; the server still answers
            await self.app(scope, receive, send)
            return
        marks = [(b"access-control-allow-origin", b"*" if self._any else origin), (b"access-control-expose-headers", EXPOSE_HEADERS)]
        if not self._any:
            marks.append((b"vary", b"Origin"))

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *marks]
            await send(message)

        await self.app(scope, receive, send_marked)

    async def _preflight(self, scope: Scope, send: Send, origin: bytes | None) -> None:
        if origin is None:
            allowed = ", ".join(sorted(o.decode("latin-1") for o in self._origins))
            error = RequestError(f"this origin may not call the service; --cors-origin allows {allowed}")
            error.status_code, error.error_type = 403, "cors_origin_not_allowed"
            body = error_body(error.error_type, error.message, "")
            await send({
                "type": "http.response.start", "status": 403,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"vary", b"Origin")],
            })
            await send({"type": "http.response.body", "body": body})
            return
        requested = next((v for k, v in scope["headers"] if k == b"access-control-request-headers"), None)
        headers = [
            (b"access-control-allow-origin", b"*" if self._any else origin),
            (b"access-control-allow-methods", ALLOW_METHODS),
            (b"access-control-allow-headers", requested or DEFAULT_ALLOW_HEADERS),
            (b"access-control-max-age", MAX_AGE),
            (b"vary", b"Origin, Access-Control-Request-Headers"),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
