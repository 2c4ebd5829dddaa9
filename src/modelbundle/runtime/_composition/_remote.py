"""``RemoteTransport``: a dependency served elsewhere, called over HTTP.

One pooled keep-alive client per dependency (the event loop's; made on first use), so
concurrent callers reuse connections instead of opening one per call. Failures become
errors naming the dependency (``errors.DependencyError`` and its subclasses): a dependency
down or unreachable is a 503, one slower than ``--dependency-timeout`` a 504, and the
status of an error answer (a 4xx the call caused, a row that raised) is passed on.
The entry request's ``X-Request-ID`` and ``traceparent`` go along with every call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from ...errors import DependencyError, DependencyTimeout, DependencyUnavailable
from ...service_base import APIMethod
from .._request_id import current_request_id
from .._spans import current_traceparent
from ._remote_wire import decode_result, encode_call

if TYPE_CHECKING:
    import httpx

#: connections kept open to one dependency: the benchmark's 64 concurrent callers each keep theirs
MAX_CONNECTIONS = 256
_NDJSON = "application/x-ndjson"


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
    ) -> None:
        self.dependency = name
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._apis = apis
        self._request_id = request_id
        self._client: httpx.AsyncClient | None = None

    async def call(self, api_name: str, kwargs: dict[str, Any]) -> Any:
        """Call ``api_name(**kwargs)`` on the dependency and return its answer as a Python value."""
        api = self._api(api_name)
        body = encode_call(self.dependency, api, kwargs)
        with self._mapped_errors(api_name):
            response = await self._http().post(self.base_url + api.route, content=body, headers=self._headers("application/json"))
        if response.status_code != 200:
            raise self._error_answer(api_name, response.status_code, response.content)
        return decode_result(api, response.content)

    async def stream(self, api_name: str, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        """Open a streaming API (an error answer raises here); its items, as they arrive (NDJSON on the wire)."""
        api = self._api(api_name)
        body = encode_call(self.dependency, api, kwargs)
        client = self._http()
        with self._mapped_errors(api_name):
            request = client.build_request("POST", self.base_url + api.route, content=body, headers=self._headers(_NDJSON))
            response = await client.send(request, stream=True)
        if response.status_code != 200:
            try:
                with self._mapped_errors(api_name):
                    content = await response.aread()
            finally:
                await response.aclose()
            raise self._error_answer(api_name, response.status_code, content)
        return self._items(api, api_name, response)

    async def _items(self, api: APIMethod, api_name: str, response: httpx.Response) -> AsyncIterator[Any]:
        try:
            with self._mapped_errors(api_name):
                async for line in response.aiter_lines():
                    if not line:
                        continue
                    value = orjson.loads(line)
                    if isinstance(value, dict) and set(value) == {"error"}:  # a failure after the first item
                        raise self._error_answer(api_name, 500, line.encode())
                    yield api.output.from_json(value, "item")
        finally:
            await response.aclose()

    async def ready(self) -> bool:
        """True when the dependency answers its /readyz with 200."""
        try:
            response = await self._http().get(self.base_url + "/readyz", timeout=min(self.timeout, 5.0))
        except Exception:  # down, refusing, slow: not ready, whatever the reason
            return False
        return response.status_code == 200

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- internals ------------------------------------------------------------------------
    def _api(self, api_name: str) -> APIMethod:
        api = self._apis.get(api_name)
        if api is None:
            raise DependencyError(self.dependency, f"dependency {self.dependency!r} has no API {api_name!r}; it has {', '.join(self._apis)}")
        return api

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx  # only a service with remote dependencies needs it

            limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS)
            self._client = httpx.AsyncClient(timeout=self.timeout, limits=limits, trust_env=False)
        return self._client

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": accept}
        request_id = self._request_id()
        if request_id:
            headers["X-Request-ID"] = request_id
        traceparent = current_traceparent()
        if traceparent is not None:
            headers["traceparent"] = traceparent
        return headers

    def _mapped_errors(self, api_name: str) -> _HTTPErrors:
        return _HTTPErrors(self.dependency, api_name, self.base_url, self.timeout)

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


class _HTTPErrors:
    """Translates httpx's transport errors into ours, at this one boundary."""

    def __init__(self, name: str, api_name: str, base_url: str, timeout: float) -> None:
        self._name, self._api_name, self._base_url, self._timeout = name, api_name, base_url, timeout

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        import httpx

        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.PoolTimeout | httpx.ConnectTimeout):
            raise DependencyTimeout(self._name, f"dependency {self._name!r} timed out after {self._timeout:g}s ({self._api_name})") from exc
        if isinstance(exc, httpx.TransportError):
            reason = str(exc) or type(exc).__name__
            raise DependencyUnavailable(
                self._name,
                f"dependency {self._name!r} is unavailable at {self._base_url} ({self._api_name}): {reason}"
            ) from exc


def _error_type(content: bytes) -> str | None:
    """The ``type`` of the dependency's JSON error, passed on with its status (None when it sent none)."""
    try:
        return str(orjson.loads(content)["error"]["type"])
    except Exception:
        return None
