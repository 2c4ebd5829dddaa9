"""The ASGI handler of a streaming API: each yielded item goes out as it is yielded.

The request is read and decoded like any other API's (same limits, same 4xx
JSON errors). The answer's status waits for the first item, so an API that
fails before yielding anything gets the usual JSON error (500, or its
RequestError's status). After that the answer is a chunked 200 in one of the
formats of ``_stream_format.py``; a failure ends it with an error event/line.

- No buffering: each item is its own ``http.response.body`` message, and the
  headers tell proxies not to buffer either (``Cache-Control: no-cache``,
  ``X-Accel-Buffering: no``).
- Backpressure: the next item is asked for only once the previous one was handed
  to the server, and the server's ``send`` waits while its write buffer is full;
  so a stream holds at most one item in our hands, plus what fits in the
  server's and the kernel's socket buffers, however slowly its client reads.
- Client gone: a second task waits for ``http.disconnect``; the stream is then
  cancelled, its generator closed (its ``finally`` runs), and
  ``modelbundle_cancelled_requests_total`` counted; it is not an error.
- ``--timeout`` bounds the wait for each item (the first, and each one after),
  not the whole stream, nor the time a slow client takes to read: a stream may
  run as long as its items keep coming. Past it: a 504 before the first item,
  an error event (type ``timeout``) after.
- An open stream counts against ``--max-concurrency`` like a request; its
  status and duration are observed when it ends (a stream abandoned before its
  first item is counted only as cancelled).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from ..errors import ModelError, Overloaded, RequestError, RequestTimeout
from ..service_base import APIMethod
from ._body import BodyLimits, read_body
from ._codec import decode_request_off_loop, error_body, request_head
from ._config import ServeConfig
from ._disconnect import wait_for_disconnect
from ._metrics import APIMetrics
from ._request_id import set_request_id
from ._state import ServerState
from ._stream_format import NDJSON, ServerSentEvents, StreamFormat, wants_sse
from ._types import Invoke, Receive, Scope, Send

logger = logging.getLogger("modelbundle.server")

_END = object()
_STREAM_HEADERS = [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]


class StreamEndpoint:
    """Serves ``POST <api.route>`` for a streaming API."""

    def __init__(self, api: APIMethod, invoke: Invoke, metrics: APIMetrics, config: ServeConfig, state: ServerState) -> None:
        self.api = api
        self.open_items = invoke
        self._metrics = metrics
        self._state = state
        self._body_limits = BodyLimits(config.max_body_size, config.body_timeout, config.body_min_rate)
        self.timeout = config.timeout
        self._max_concurrency = config.max_concurrency
        self._formats = (NDJSON(api.output), ServerSentEvents(api.output))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        content_type, accept, content_length, given_id = request_head(scope["headers"])
        request_id = self._state.request_id(given_id)
        set_request_id(request_id)  # a call to a dependency hands it on
        stream = _Stream(self, self._formats[wants_sse(accept)], send, request_id)
        admitted = False
        try:
            self._check_capacity()
            body = await read_body(receive, content_length, self._body_limits)
            self._check_capacity()
            admitted = True
            self._state.in_flight += 1
            self._metrics.in_flight.inc()
            kwargs = await decode_request_off_loop(self.api, body, content_type.decode("latin-1"))
            await stream.run(kwargs, receive)
        except RequestError as exc:  # before the first byte: the answer is a JSON error
            await self._respond_error(send, exc, request_id, started)
            return
        finally:
            if admitted:
                self._state.in_flight -= 1
                self._metrics.in_flight.dec()
        if stream.cancelled:
            self._metrics.cancelled.inc()
        if stream.answered:
            self._metrics.observe_request(200, time.perf_counter() - started)

    def _check_capacity(self) -> None:
        # checked before the body is read (a slot is only taken once it is here) and again after
        if self._state.in_flight >= self._max_concurrency:
            raise Overloaded(f"more than {self._max_concurrency} requests in flight", headers={"Retry-After": "1"})

    async def _respond_error(self, send: Send, error: RequestError, request_id: bytes, started: float) -> None:
        payload = error_body(error.error_type, error.message, request_id.decode())
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"x-request-id", request_id),
        ]
        headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items())
        await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
        self._metrics.observe_request(error.status_code, time.perf_counter() - started)

    def model_error(self, exc: BaseException, request_id: bytes) -> ModelError:
        logger.error("request %s: %s raised", request_id.decode(), self.api.name, exc_info=exc)
        return ModelError(f"{self.api.name} raised {type(exc).__name__}: {exc}")


class _Stream:
    """One streaming answer: the pump that moves items to the client, and the watch for its leaving."""

    def __init__(self, endpoint: StreamEndpoint, wire: StreamFormat, send: Send, request_id: bytes) -> None:
        self._endpoint = endpoint
        self._wire = wire
        self._send = send
        self._request_id = request_id
        #: the 200 and its headers went out: errors now go into the stream
        self.answered = False
        #: the last bytes are being sent: a disconnect from here on is the normal end
        self._finishing = False
        self.cancelled = False
        #: loop time since which the pump waits for the API's next item (None: it is sending)
        self._waiting_since: float | None = None
        self._timed_out = False

    async def run(self, kwargs: dict[str, Any], receive: Receive) -> None:
        """Stream the answer; RequestError when it fails before the first item."""
        loop = asyncio.get_running_loop()
        pump = loop.create_task(self._pump(kwargs))
        watch = loop.create_task(wait_for_disconnect(receive))
        self._watchdog = loop.call_later(self._endpoint.timeout, self._check_timeout, pump)
        try:
            await asyncio.wait((pump, watch), return_when=asyncio.FIRST_COMPLETED)
            if not pump.done() and not self._finishing:  # the client left mid-stream
                self.cancelled = True
                pump.cancel()
            # the pump closes the generator whichever way it ends: wait for that
            await asyncio.wait((pump,))
        except asyncio.CancelledError:  # the server is stopping this request
            pump.cancel()
            await asyncio.wait((pump,))
            raise
        finally:
            self._watchdog.cancel()
            watch.cancel()
        if not pump.cancelled():
            pump.result()  # a RequestError before the first item, or a bug

    def _check_timeout(self, pump: asyncio.Task[None]) -> None:
        # one timer per stream, re-armed from the time the current wait began: no timer per item
        loop = asyncio.get_running_loop()
        timeout = self._endpoint.timeout
        since = self._waiting_since
        if since is not None and loop.time() - since >= timeout:
            self._timed_out = True
            pump.cancel()
            return
        self._watchdog = loop.call_at((since if since is not None else loop.time()) + timeout, self._check_timeout, pump)

    async def _pump(self, kwargs: dict[str, Any]) -> None:
        wire, send = self._wire, self._send
        items: AsyncIterator[Any] | None = None
        try:
            items = await self._call(self._endpoint.open_items(kwargs))
            chunk = await self._next(items)  # the first item, encoded: it decides the status
            headers = [(b"content-type", wire.media_type), (b"x-request-id", self._request_id), *_STREAM_HEADERS]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            self.answered = True
            count = 0
            try:
                while chunk is not None:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    count += 1
                    chunk = await self._next(items)
                tail = wire.end(count)
            except RequestError as exc:  # after the first item: the error goes into the stream
                tail = wire.error(error_body(exc.error_type, exc.message, self._request_id.decode()))
            self._finishing = True
            await send({"type": "http.response.body", "body": tail, "more_body": False})
        finally:
            if items is not None:
                await self._close(items)

    async def _next(self, items: AsyncIterator[Any]) -> bytes | None:
        """The next item on the wire, or None at the end."""
        item = await self._call(items.__anext__())
        return None if item is _END else self._encode(item)

    async def _call(self, step: Any) -> Any:
        """Await one step of the API under the timeout: its end is _END, its failure a RequestError."""
        self._waiting_since = asyncio.get_running_loop().time()
        try:
            return await step
        except StopAsyncIteration:
            return _END
        except asyncio.CancelledError:
            if not self._timed_out:
                raise
            self._timed_out = False
            uncancel = getattr(asyncio.current_task(), "uncancel", None)  # Python 3.11+
            if uncancel is not None:
                uncancel()
            raise RequestTimeout(f"{self._endpoint.api.name} sent no item within {self._endpoint.timeout:g} s") from None
        except RequestError:
            raise
        except Exception as exc:
            raise self._endpoint.model_error(exc, self._request_id) from exc
        finally:
            self._waiting_since = None

    def _encode(self, item: Any) -> bytes:
        try:
            return self._wire.item(item)
        except Exception as exc:
            api = self._endpoint.api
            logger.exception("request %s: an item of %s could not be encoded", self._request_id.decode(), api.name)
            raise ModelError(
                f"{api.name} yielded {type(item).__name__}, which cannot be sent as {api.output.describe()}: {exc}"
            ) from exc

    async def _close(self, items: AsyncIterator[Any]) -> None:
        aclose = getattr(items, "aclose", None)
        if aclose is None:
            return
        try:
            await aclose()
        except Exception:
            logger.exception("request %s: closing the stream of %s raised", self._request_id.decode(), self._endpoint.api.name)
