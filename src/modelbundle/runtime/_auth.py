"""``guard``: who may call. API keys, then rate limits, then the app; CORS in front of both.

One ASGI layer before the app's own dispatch, so every route is covered the same way:
the APIs (streaming ones too), WebSocket handshakes (refused with an HTTP 401 before
they are accepted), the Open Inference Protocol /v2 routes, SageMaker's /invocations,
the OpenAI /v1 routes (answered in OpenAI's error shape, which its client maps to
AuthenticationError and RateLimitError) and the job routes. The probes (/livez,
/readyz, SageMaker's /ping) are always open; /metrics and the docs are open unless
--protect-metrics / --protect-docs. Open routes are not rate limited either.

With no key, no rate limit and no CORS origin configured, ``guard`` returns the app
itself: nothing is added to the hot path.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import RequestError, TooManyRequests, Unauthorized
from ._api_keys import KeyRing, load_keys
from ._codec import error_body
from ._config import ServeConfig
from ._cors import Cors
from ._docs import STATIC_PREFIX
from ._openai import PREFIX as OPENAI_PREFIX
from ._openai import OpenAIError, error_json
from ._rate_limit import RateLimiter, retry_after
from ._sagemaker import PING_PATH
from ._types import ASGIApp, Receive, Scope, Send
from ._websocket import refuse_handshake

PROBES = frozenset({"/livez", "/readyz", PING_PATH})
DOCS = frozenset({"/docs", "/openapi.json"})
METRICS = "/metrics"
_BEARER = b"bearer "


def guard(
    app: ASGIApp,
    config: ServeConfig,
    request_id: Callable[[bytes | None], bytes],
    on_refused: Callable[[str], None] = lambda reason: None,
) -> ASGIApp:
    """``app`` behind the API keys, rate limit and CORS policy of ``config`` (``app`` itself when none is set).

    ``on_refused`` hears the error type of each refusal (``unauthorized``, ``rate_limited``), for the metrics.
    """
    keys = load_keys(config.api_key_file, config.api_keys)
    limiter = RateLimiter(config.rate_limit) if config.rate_limit is not None else None
    if keys is not None or limiter is not None:
        app = Gate(app, keys, limiter, request_id, on_refused, protect_docs=config.protect_docs, protect_metrics=config.protect_metrics)
    if config.cors_origin:
        app = Cors(app, config.cors_origin)
    return app


class Gate:
    """Lets a request through when it carries a known key (if keys are set) and its caller is under the rate limit."""

    def __init__(
        self,
        app: ASGIApp,
        keys: KeyRing | None,
        limiter: RateLimiter | None,
        request_id: Callable[[bytes | None], bytes],
        on_refused: Callable[[str], None],
        *,
        protect_docs: bool,
        protect_metrics: bool,
    ) -> None:
        self.app = app
        self._keys = keys
        self._limiter = limiter
        self._request_id = request_id
        self._on_refused = on_refused
        self._open = set(PROBES)
        self._open_docs = not protect_docs
        if self._open_docs:
            self._open |= DOCS
        if not protect_metrics:
            self._open.add(METRICS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in self._open or (self._open_docs and path.startswith(STATIC_PREFIX)):
            await self.app(scope, receive, send)
            return
        caller = None
        if self._keys is not None:
            given = _given_key(scope)
            caller = self._keys.match(given) if given else None
            if caller is None:
                await self._refuse(scope, receive, send, _unauthorized(given))
                return
        if self._limiter is not None:
            if caller is None:
                client = scope.get("client")
                caller = client[0] if client else "-"
            wait = self._limiter.take(caller)
            if wait > 0:
                error = TooManyRequests(
                    f"over the rate limit of this server; retry in {retry_after(wait)} s",
                    headers={"Retry-After": retry_after(wait)},
                )
                await self._refuse(scope, receive, send, error)
                return
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, error: RequestError) -> None:
        self._on_refused(error.error_type)
        request_id = self._request_id(_header(scope, b"x-request-id"))
        if scope["type"] == "websocket":
            await receive()  # websocket.connect: then the handshake is refused with an HTTP answer
            await refuse_handshake(scope, send, error, request_id)
            return
        if scope["path"] == OPENAI_PREFIX or scope["path"].startswith(OPENAI_PREFIX + "/"):
            code = "invalid_api_key" if error.status_code == 401 else "rate_limit_exceeded"
            body = error_json(OpenAIError(error.status_code, error.message, code=code))
        else:
            body = error_body(error.error_type, error.message, request_id.decode())
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id),
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()),
        ]
        await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _unauthorized(given: bytes | None) -> Unauthorized:
    if not given:
        return Unauthorized(
            "this service needs an API key: send Authorization: Bearer KEY (or X-API-Key: KEY)",
            headers={"WWW-Authenticate": 'Bearer realm="modelbundle"'},
        )
    return Unauthorized(
        "the API key is not valid for this service",
        headers={"WWW-Authenticate": 'Bearer realm="modelbundle", error="invalid_token"'},
    )


def _given_key(scope: Scope) -> bytes | None:
    """The key of ``Authorization: Bearer KEY``, else of ``X-API-Key``."""
    api_key = None
    for key, value in scope["headers"]:
        if key == b"authorization" and value[:7].lower() == _BEARER:
            return value[7:].strip()  # type: ignore[no-any-return]
        if key == b"x-api-key":
            api_key = value.strip()
    return api_key


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None
