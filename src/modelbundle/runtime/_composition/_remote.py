"""``RemoteTransport``: a dependency served elsewhere, called over HTTP.

One pool of keep-alive connections per dependency (``_http1_pool.py``, our own lean
HTTP/1.1 client: this is every --split request's hot path), so concurrent callers reuse
connections instead of opening one per call. Bodies are encoded and answers decoded by
the typed client's codec (``modelbundle.client``), so a call crosses as a client's would. Failures become
errors naming the dependency (``errors.DependencyError`` and its subclasses): a dependency
down or unreachable is a 503, one slower than ``--dependency-timeout`` a 504, and the
status of an error answer (a 4xx the call caused, a row that raised) is passed on.
The entry request's ``X-Request-ID`` and ``traceparent`` go along with every call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import orjson

from ...adapters import Adapter
from ...client import decode_value, encode_request
from ...errors import (
    DependencyError,
    DependencyTimeout,
    DependencyUnavailable,
    InvalidDependencyCall,
)
from ...service_base import APIMethod
from .._request_id import current_request_id
from .._spans import current_traceparent
from ._http1 import AnswerTimeout, HTTPClientError
from ._http1_pool import MAX_CONNECTIONS, ConnectionPool, Streamed

_JSON = "application/json"
_NDJSON = "application/x-ndjson"
#: /readyz is asked often and must answer fast: a dependency slower than this is not ready
READY_TIMEOUT = 5.0


class RemoteTransport:
    """Calls the APIs of the service ``name`` served at ``base_url`` (``async call`` / ``async stream``)."""

    def __init__(
        self,
        name: str,
        apis: Mapping[str, APIMethod],
        base_url: str,
        timeout: float,
        *,
        request_id: Callable[[], str | None] = current_request_id,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.dependency = name
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._apis = apis
        self._request_id = request_id
        self._pool = ConnectionPool(self.base_url, max_connections=max_connections)
        self._routes: dict[str, _Route] = {}

    async def call(self, api_name: str, kwargs: dict[str, Any]) -> Any:
        """Call ``api_name(**kwargs)`` on the dependency and return its answer as a Python value."""
        route = self._route(api_name)
        data = self._request(route.call_head, route.encode(self.dependency, kwargs))
        try:
            answer = await self._pool.request(data, self.timeout)
        except HTTPClientError as exc:
            raise self._unreachable(exc, api_name) from exc
        if answer.status != 200:
            raise self._error_answer(api_name, answer.status, answer.body())
        return decode_value(_content_type(answer.raw_headers), answer.body(), route.api.output)

    async def stream(self, api_name: str, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        """Open a streaming API (an error answer raises here); its items, as they arrive (NDJSON on the wire)."""
        route = self._route(api_name)
        data = self._request(route.stream_head, route.encode(self.dependency, kwargs))
        try:
            streamed = await self._pool.stream(data, self.timeout)
        except HTTPClientError as exc:
            raise self._unreachable(exc, api_name) from exc
        if streamed.status != 200:
            try:
                content = await streamed.read()
            except HTTPClientError as exc:
                raise self._unreachable(exc, api_name) from exc
            finally:
                await streamed.aclose()
            raise self._error_answer(api_name, streamed.status, content)
        return self._items(route.api, api_name, streamed)

    async def _items(self, api: APIMethod, api_name: str, streamed: Streamed) -> AsyncIterator[Any]:
        try:
            pending = b""
            try:
                async for chunk in streamed.chunks():
                    *lines, pending = (pending + chunk).split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield self._item(api, api_name, line)
            except HTTPClientError as exc:
                raise self._unreachable(exc, api_name) from exc
            if pending.strip():
                yield self._item(api, api_name, pending)
        finally:
            await streamed.aclose()

    def _item(self, api: APIMethod, api_name: str, line: bytes) -> Any:
        if line.startswith(b'{"error"'):
            value = orjson.loads(line)
            if isinstance(value, dict) and set(value) == {"error"}:  # a failure after the first item
                raise self._error_answer(api_name, 500, line)
        return decode_value(_JSON, line, api.output)

    async def ready(self) -> bool:
        """True when the dependency answers its /readyz with 200."""
        data = self._pool.request_head("GET", "/readyz", {}) + b"\r\n"
        try:
            answer = await self._pool.request(data, min(self.timeout, READY_TIMEOUT))
        except HTTPClientError:  # down, refusing, slow: not ready, whatever the reason
            return False
        return answer.status == 200

    async def aclose(self) -> None:
        await self._pool.aclose()

    # -- internals ------------------------------------------------------------------------
    def _route(self, api_name: str) -> _Route:
        route = self._routes.get(api_name)
        if route is None:
            api = self._apis.get(api_name)
            if api is None:
                raise DependencyError(self.dependency, f"dependency {self.dependency!r} has no API {api_name!r}; it has {', '.join(self._apis)}")
            route = self._routes[api_name] = _Route(self._pool, api)
        return route

    def _request(self, head: bytes, body: bytes) -> bytes:
        """The whole request: the route's fixed head, this request's own headers, the body."""
        extra = b""
        request_id = self._request_id()
        if request_id and "\n" not in request_id and "\r" not in request_id:
            extra = b"X-Request-ID: " + request_id.encode("latin-1", "replace") + b"\r\n"
        traceparent = current_traceparent()
        if traceparent is not None:
            extra += b"traceparent: " + traceparent.encode("ascii") + b"\r\n"
        return b"%b%bContent-Length: %d\r\n\r\n%b" % (head, extra, len(body), body)

    def _unreachable(self, exc: HTTPClientError, api_name: str) -> DependencyError:
        """The client's failure as ours, at this one boundary: slow is a 504, anything else a 503."""
        name = self.dependency
        if isinstance(exc, AnswerTimeout):
            return DependencyTimeout(name, f"dependency {name!r} timed out after {self.timeout:g}s ({api_name})")
        return DependencyUnavailable(name, f"dependency {name!r} is unavailable at {self.base_url} ({api_name}): {exc.reason}")

    def _error_answer(self, api_name: str, status: int, content: bytes) -> DependencyError:
        """The dependency's error answer as ours: its status and message, naming it."""
        try:
            message = str(orjson.loads(content)["error"]["message"])
        except Exception:  # not our JSON error (a proxy's page): its first line will do
            message = content.decode("utf-8", "replace").strip().splitlines()[0] if content.strip() else f"HTTP {status}"
        text = self._error_text(api_name, status, message)
        if status == 503:
            return DependencyUnavailable(self.dependency, text)
        if status == 504:
            return DependencyTimeout(self.dependency, text)
        error_type = _error_type(content)
        return DependencyError(self.dependency, text, status_code=status if 400 <= status < 600 else 502, error_type=error_type)

    def _error_text(self, api_name: str, status: int, message: str) -> str:
        """The message a caller gives, worded as when the dependency runs in its process (``dependency_error``),
        so that one process and --split answer alike."""
        name = self.dependency
        if message.startswith("dependency '"):  # from further down the graph: it already names the culprit
            return message
        if status == 503:
            return f"dependency '{name}' is unavailable: {message}"
        if status == 504:
            return f"dependency '{name}' timed out: {message}"
        if 400 <= status < 500:
            return f"dependency '{name}' refused {api_name}: {message}"
        raised = f"{api_name} raised "
        if status == 500 and message.startswith(raised):
            return f"dependency '{name}' failed in {api_name}: {message[len(raised):]}"
        return f"dependency '{name}' answered {api_name} with {status}: {message}"


class _Route:
    """What every call of one API reuses: its parameters' adapters and the fixed part of its request head."""

    def __init__(self, pool: ConnectionPool, api: APIMethod) -> None:
        self.api = api
        self.inputs: dict[str, Adapter] = {p.name: p.adapter for p in api.params}
        self.call_head = pool.request_head("POST", api.route, {"Content-Type": _JSON, "Accept": _JSON})
        self.stream_head = pool.request_head("POST", api.route, {"Content-Type": _JSON, "Accept": _NDJSON})

    def encode(self, dependency: str, kwargs: dict[str, Any]) -> bytes:
        """The body of a call (the typed client's encoding); a wrong argument fails before any I/O."""
        try:
            body, _ = encode_request(self.inputs, kwargs)
        except TypeError as exc:  # the handle checks arguments first; this guards direct callers
            raise InvalidDependencyCall(dependency, f"{dependency}.{self.api.name}(): {exc}") from None
        return body


def _content_type(raw_headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in raw_headers:
        if len(name) == 12 and name.lower() == b"content-type":
            return value.decode("latin-1")
    return _JSON


def _error_type(content: bytes) -> str | None:
    """The ``type`` of the dependency's JSON error, passed on with its status (None when it sent none)."""
    try:
        return str(orjson.loads(content)["error"]["type"])
    except Exception:
        return None
