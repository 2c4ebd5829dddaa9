"""``Client`` and ``AsyncClient``: a served bundle's APIs as Python methods, over httpx.

Both share everything but the transport: the APIs they know (``_apis.py``), the body of a call and
the reading of its answer (``_wire.py``), streams (``_streams.py``) and the 503 policy (``_retry.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from .._install_hints import needs_client_library
from ..errors import JobNotFinished, ModelbundleError, ModelError
from ._apis import RemoteAPI, apis_from_openapi, apis_from_service
from ._retry import RetryPolicy
from ._streams import NDJSON, decode_line
from ._wire import (
    ACCEPT,
    ERROR_TYPES,
    build_error,
    decode_response,
    encode_request,
    error_from_response,
)

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger("modelbundle.client")

#: a job's status is asked again after this pause, doubled each time up to the next
_POLL_FIRST, _POLL_MAX = 0.05, 1.0
_FINISHED = frozenset({"succeeded", "failed", "cancelled"})


async def _pause(seconds: float) -> None:
    import asyncio  # here, not at the top: `import modelbundle` loads no asyncio (tests/test_imports.py)

    await asyncio.sleep(seconds)


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:
        raise ModelbundleError(needs_client_library()) from None
    return httpx


class _Common:
    """What both clients hold: the server's URL, its APIs, the headers every call sends."""

    def __init__(self, url: str, service: type | None, api_key: str | None, retry: RetryPolicy | None) -> None:
        self.url = url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._apis: dict[str, RemoteAPI] | None = apis_from_service(service) if service is not None else None

    @property
    def apis(self) -> dict[str, RemoteAPI]:
        """The served APIs by name (an ``AsyncClient`` knows them once connected)."""
        if self._apis is None:
            raise RuntimeError("the APIs are not read yet: `await client.connect()` or `async with AsyncClient(...)` first")
        return dict(self._apis)

    def _found(self, name: str) -> RemoteAPI:
        assert self._apis is not None
        api = self._apis.get(name)
        if api is None:
            raise AttributeError(f"{self.url} serves no API {name!r}; its APIs are {', '.join(sorted(self._apis)) or 'none'}")
        return api

    def _request(self, api: RemoteAPI, args: tuple[Any, ...], kwargs: Mapping[str, Any], accept: str) -> tuple[bytes, dict[str, str]]:
        body, content_type = encode_request(api.inputs, api.arguments(args, kwargs))
        return body, {"content-type": content_type, "accept": accept}

    def _retrying(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before trying again after ``response``; None: it is the answer."""
        if response.status_code != 503 or attempt >= self.retry.retries:
            return None
        wait = self.retry.delay(attempt, response.headers.get("retry-after"))
        logger.info("%s answered 503 (%s); retrying in %.1f s", response.request.url, _message(response), wait)
        return wait


def _message(response: httpx.Response) -> str:
    try:
        return str(orjson.loads(response.content)["error"]["message"])
    except Exception:
        return response.reason_phrase


def _decode(response: httpx.Response, api: RemoteAPI) -> Any:
    return decode_response(
        response.status_code, response.headers.get("content-type", ""), response.content, api.output, response.headers
    )


def _raise_for(response: httpx.Response) -> None:
    if not 200 <= response.status_code < 300:
        raise error_from_response(response.status_code, response.headers.get("content-type", ""), response.content, response.headers)


def _job_error(job_id: str, document: Mapping[str, Any]) -> Exception:
    if document["status"] == "cancelled":
        return JobNotFinished(f"job {job_id} was cancelled")
    # the runner writes "<type>: <message>" for an error of the tree (the API refused its input),
    # and "<api> raised <Exception>: ..." for anything else the API raised: a ModelError
    text = str(document.get("error") or f"job {job_id} failed")
    error_type, _, message = text.partition(": ")
    if error_type in ERROR_TYPES and message:
        return build_error(error_type, message)
    return ModelError(text)


# -- the synchronous client -----------------------------------------------------------------
class Client(_Common):
    """A served bundle's APIs as methods: ``Client(url).predict(x=rows)``.

    The APIs and their adapters come from the server's ``/openapi.json``, or from ``service``, the
    Service class, when given (then each method has the service's own signature and types).
    A streaming API's method yields its items; ``submit`` runs an API as a job.
    """

    def __init__(
        self,
        url: str,
        *,
        service: type | None = None,
        api_key: str | None = None,
        timeout: float | None = 60.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(url, service, api_key, retry)
        self._http: httpx.Client = _httpx().Client(base_url=self.url, timeout=timeout, headers=self._headers)
        if self._apis is None:
            try:
                self._apis = apis_from_openapi(self._get("/openapi.json").json())
            except BaseException:
                self._http.close()
                raise

    # -- calling ----------------------------------------------------------------------
    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        api = self._found(name)

        def method(*args: Any, **kwargs: Any) -> Any:
            return self.call(api.name, *args, **kwargs)

        method.__name__ = method.__qualname__ = api.name
        method.__doc__ = api.doc
        method.__signature__ = api.signature  # type: ignore[attr-defined]
        return method

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *(self._apis or {})})

    def call(self, api_name: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``api_name``; a streaming API's items as an iterator."""
        api = self._found(api_name)
        if api.streaming:
            return self._stream(api, args, kwargs)
        body, headers = self._request(api, args, kwargs, ACCEPT)
        return _decode(self._send("POST", api.route, body, headers), api)

    def _stream(self, api: RemoteAPI, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Iterator[Any]:
        body, headers = self._request(api, args, kwargs, NDJSON)  # encoded now: a bad argument raises at the call
        return self._items(api, body, headers)

    def _items(self, api: RemoteAPI, body: bytes, headers: dict[str, str]) -> Generator[Any, None, None]:
        attempt = 0
        while True:
            with self._http.stream("POST", api.route, content=body, headers=headers) as response:
                wait = self._retrying(response, attempt)
                if wait is None:
                    if not 200 <= response.status_code < 300:
                        response.read()
                        _raise_for(response)
                    for line in response.iter_lines():
                        has_item, item = decode_line(line, api.output)
                        if has_item:
                            yield item
                    return
            time.sleep(wait)
            attempt += 1

    def _send(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        attempt = 0
        while True:
            response = self._http.request(method, path, content=body, headers=headers)
            wait = self._retrying(response, attempt)
            if wait is None:
                return response
            time.sleep(wait)
            attempt += 1

    def _get(self, path: str) -> httpx.Response:
        response = self._send("GET", path)
        _raise_for(response)
        return response

    # -- jobs -------------------------------------------------------------------------
    def submit(self, api_name: str, *args: Any, **kwargs: Any) -> Job:
        """Run ``api_name`` as a job (``POST <route>/jobs``, the server started with jobs on); its handle."""
        api = self._found(api_name)
        body, headers = self._request(api, args, kwargs, ACCEPT)
        response = self._send("POST", _jobs(api), body, headers)
        _raise_for(response)
        return Job(self, api, response.json()["id"])

    def job(self, api_name: str, job_id: str) -> Job:
        """The handle of a job submitted earlier (by this client or another)."""
        return Job(self, self._found(api_name), job_id)

    # -- lifetime ---------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Job:
    """A job submitted with ``Client.submit``: its status, and its result once it has one."""

    def __init__(self, client: Client, api: RemoteAPI, job_id: str) -> None:
        self.client, self.api, self.id = client, api, job_id

    def __repr__(self) -> str:
        return f"<Job {self.id} of {self.api.name}>"

    def status(self) -> dict[str, Any]:
        """The status document: ``status`` (queued, running, succeeded, failed, cancelled), progress, error..."""
        return dict(self.client._get(f"{_jobs(self.api)}/{self.id}").json())

    def result(self) -> Any:
        """The API's return value; JobNotFinished before the job has succeeded."""
        return _decode(self.client._send("GET", f"{_jobs(self.api)}/{self.id}/result", headers={"accept": ACCEPT}), self.api)

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the job finishes: its result, or the error it failed with. TimeoutError after ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = _POLL_FIRST
        while True:
            document = self.status()
            if document["status"] in _FINISHED:
                if document["status"] != "succeeded":
                    raise _job_error(self.id, document)
                return self.result()
            if deadline is not None and time.monotonic() + pause > deadline:
                raise TimeoutError(f"job {self.id} is still {document['status']} after {timeout} s")
            time.sleep(pause)
            pause = min(pause * 2, _POLL_MAX)

    def cancel(self) -> dict[str, Any]:
        """Ask the server to cancel the job; its status document after."""
        response = self.client._send("DELETE", f"{_jobs(self.api)}/{self.id}")
        _raise_for(response)
        return dict(response.json())


def _jobs(api: RemoteAPI) -> str:
    return api.route.rstrip("/") + "/jobs"


# -- the asynchronous client ----------------------------------------------------------------
class AsyncClient(_Common):
    """``Client`` for asyncio: ``await client.predict(x=rows)``; ``async for item in client.count(n=3)``.

    Without ``service``, the APIs are read from ``/openapi.json`` on first use (or ``async with``).
    """

    def __init__(
        self,
        url: str,
        *,
        service: type | None = None,
        api_key: str | None = None,
        timeout: float | None = 60.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(url, service, api_key, retry)
        self._http: httpx.AsyncClient = _httpx().AsyncClient(base_url=self.url, timeout=timeout, headers=self._headers)

    async def connect(self) -> AsyncClient:
        """Read the server's APIs now (each call does it the first time otherwise)."""
        if self._apis is None:
            self._apis = apis_from_openapi((await self._get("/openapi.json")).json())
        return self

    async def api(self, name: str) -> RemoteAPI:
        await self.connect()
        return self._found(name)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._apis is not None:
            self._found(name)  # a wrong name fails here when the APIs are known

        def method(*args: Any, **kwargs: Any) -> _AsyncCall:
            return self.call(name, *args, **kwargs)

        method.__name__ = method.__qualname__ = name
        if self._apis is not None:
            method.__doc__ = self._apis[name].doc
            method.__signature__ = self._apis[name].signature  # type: ignore[attr-defined]
        return method

    def call(self, api_name: str, *args: Any, **kwargs: Any) -> _AsyncCall:
        """A call to ``api_name``: await it for the answer, or ``async for`` a streaming API's items."""
        return _AsyncCall(self, api_name, args, kwargs)

    async def _answer(self, api_name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        api = await self.api(api_name)
        if api.streaming:
            raise TypeError(f"{api_name} streams its answer: read it with `async for item in client.{api_name}(...)`")
        body, headers = self._request(api, args, kwargs, ACCEPT)
        return _decode(await self._send("POST", api.route, body, headers), api)

    async def _items(self, api_name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> AsyncIterator[Any]:
        api = await self.api(api_name)
        body, headers = self._request(api, args, kwargs, NDJSON)
        attempt = 0
        while True:
            async with self._http.stream("POST", api.route, content=body, headers=headers) as response:
                wait = self._retrying(response, attempt)
                if wait is None:
                    if not 200 <= response.status_code < 300:
                        await response.aread()
                        _raise_for(response)
                    async for line in response.aiter_lines():
                        has_item, item = decode_line(line, api.output)
                        if has_item:
                            yield item
                    return
            await _pause(wait)
            attempt += 1

    async def _send(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        attempt = 0
        while True:
            response = await self._http.request(method, path, content=body, headers=headers)
            wait = self._retrying(response, attempt)
            if wait is None:
                return response
            await _pause(wait)
            attempt += 1

    async def _get(self, path: str) -> httpx.Response:
        response = await self._send("GET", path)
        _raise_for(response)
        return response

    async def submit(self, api_name: str, *args: Any, **kwargs: Any) -> AsyncJob:
        """Run ``api_name`` as a job; its handle."""
        api = await self.api(api_name)
        body, headers = self._request(api, args, kwargs, ACCEPT)
        response = await self._send("POST", _jobs(api), body, headers)
        _raise_for(response)
        return AsyncJob(self, api, response.json()["id"])

    async def job(self, api_name: str, job_id: str) -> AsyncJob:
        return AsyncJob(self, await self.api(api_name), job_id)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        try:
            return await self.connect()
        except BaseException:
            await self.close()
            raise

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _AsyncCall:
    """One call of an ``AsyncClient`` API: awaitable (its answer) and async-iterable (a stream's items)."""

    def __init__(self, client: AsyncClient, api_name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        self._client, self._api_name, self._args, self._kwargs = client, api_name, args, kwargs

    def __await__(self) -> Generator[Any, None, Any]:
        return self._client._answer(self._api_name, self._args, self._kwargs).__await__()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._client._items(self._api_name, self._args, self._kwargs)


class AsyncJob:
    """``Job`` for ``AsyncClient``."""

    def __init__(self, client: AsyncClient, api: RemoteAPI, job_id: str) -> None:
        self.client, self.api, self.id = client, api, job_id

    def __repr__(self) -> str:
        return f"<AsyncJob {self.id} of {self.api.name}>"

    async def status(self) -> dict[str, Any]:
        return dict((await self.client._get(f"{_jobs(self.api)}/{self.id}")).json())

    async def result(self) -> Any:
        response = await self.client._send("GET", f"{_jobs(self.api)}/{self.id}/result", headers={"accept": ACCEPT})
        return _decode(response, self.api)

    async def wait(self, timeout: float | None = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = _POLL_FIRST
        while True:
            document = await self.status()
            if document["status"] in _FINISHED:
                if document["status"] != "succeeded":
                    raise _job_error(self.id, document)
                return await self.result()
            if deadline is not None and time.monotonic() + pause > deadline:
                raise TimeoutError(f"job {self.id} is still {document['status']} after {timeout} s")
            await _pause(pause)
            pause = min(pause * 2, _POLL_MAX)

    async def cancel(self) -> dict[str, Any]:
        response = await self.client._send("DELETE", f"{_jobs(self.api)}/{self.id}")
        _raise_for(response)
        return dict(response.json())
