"""The ASGI handler of one API: read, decode, run, encode, answer; errors become JSON.

Written against raw ASGI because it is the hot path: no Request/Response
objects, one pass over the headers, metric children looked up in advance.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ..errors import ModelError, Overloaded, RequestError, RequestTimeout
from ..service_base import APIMethod
from ._body import BodyLimits, read_body
from ._codec import OFFLOAD_BYTES, decode_request, encode_result, error_body, request_head
from ._config import ServeConfig
from ._deadline import deadline
from ._disconnect import Abandoned, DisconnectWatches
from ._metrics import APIMetrics
from ._spans import child_span
from ._state import ServerState
from ._types import Invoke, Receive, Scope, Send

logger = logging.getLogger("modelbundle.server")


class APIEndpoint:
    """Serves ``POST <api.route>``."""

    def __init__(self, api: APIMethod, invoke: Invoke, metrics: APIMetrics, config: ServeConfig, state: ServerState) -> None:
        self.api = api
        self._invoke = invoke
        self._metrics = metrics
        self._state = state
        self._body_limits = BodyLimits(config.max_body_size, config.body_timeout, config.body_min_rate)
        self._timeout = config.timeout
        self._max_concurrency = config.max_concurrency
        self._watches = DisconnectWatches()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        content_type, accept, content_length, given_id = request_head(scope["headers"])
        state = self._state
        request_id = state.request_id(given_id)
        extra_headers: dict[str, str] = {}
        admitted = False
        try:
            self._check_capacity()
            body = await self._read_body(receive, content_length)
            admitted = self._admit()
            # parsing megabytes of JSON takes long enough to stall every other request: do it off the loop
            offload = len(body) > OFFLOAD_BYTES
            with child_span("decode"):
                if offload:
                    kwargs = await asyncio.to_thread(decode_request, self.api, body, content_type.decode("latin-1"))
                else:
                    kwargs = decode_request(self.api, body, content_type.decode("latin-1"))
            result = await self._call(kwargs, receive)
            with child_span("encode"):
                if offload:  # a big request usually means a big answer
                    payload, media_type = await asyncio.to_thread(self._encode, result, accept.decode("latin-1"), request_id)
                else:
                    payload, media_type = self._encode(result, accept.decode("latin-1"), request_id)
            status = 200
        except Abandoned:  # the client left while its answer was computed: no one to answer
            self._metrics.cancelled.inc()
            return
        except RequestError as exc:
            status, extra_headers = exc.status_code, exc.headers
            payload, media_type = error_body(exc.error_type, exc.message, request_id.decode()), b"application/json"
        except Exception as exc:
            logger.exception("request %s: %s raised", request_id.decode(), self.api.name)
            error = ModelError(f"{self.api.name} raised {type(exc).__name__}: {exc}")
            status, payload, media_type = 500, error_body(error.error_type, error.message, request_id.decode()), b"application/json"
        finally:
            if admitted:
                self._release()

        await self._respond(send, status, media_type, payload, request_id, extra_headers, started)

    # A request counts against --max-concurrency only once its body is read: clients still
    # sending (or stalling) hold no slot, so they cannot starve the ones whose body is here.
    def _check_capacity(self) -> None:
        """A 503 before reading the body when every slot is taken (nothing is counted yet)."""
        if self._state.in_flight >= self._max_concurrency:
            raise Overloaded(f"more than {self._max_concurrency} requests in flight", headers={"Retry-After": "1"})

    def _admit(self) -> bool:
        """Count this request in flight, or a 503 if the slots filled up while its body was read."""
        self._check_capacity()
        self._state.in_flight += 1
        self._metrics.in_flight.inc()
        return True

    def _release(self) -> None:
        self._state.in_flight -= 1
        self._metrics.in_flight.dec()

    async def _call(self, kwargs: dict[str, Any], receive: Receive | None = None) -> Any:
        """The API (through its batcher, if any) under --timeout: past it, a 504.

        Given ``receive``, a client that disconnects meanwhile cancels the call: ``Abandoned``.
        """
        limit = deadline(self._timeout)
        watch = self._watches.start(receive) if receive is not None else None
        try:
            async with limit:
                result = await self._invoke(kwargs)
        except (Exception, asyncio.CancelledError) as exc:
            # whatever the call did once its client left (cancelled, timed out, raised), no one reads it
            if watch is not None and watch.disconnected:
                watch.forget_cancel()
                raise Abandoned from None
            if not isinstance(exc, TimeoutError) or not limit.expired():  # an API's own TimeoutError is a model failure
                raise
            raise RequestTimeout(f"{self.api.name} did not answer within {self._timeout:g} s") from None
        finally:
            if watch is not None:
                self._watches.finish(watch)
        if watch is not None and watch.disconnected:  # the API swallowed the cancellation: drop its answer anyway
            watch.forget_cancel()
            raise Abandoned
        return result

    async def _respond(
        self,
        send: Send,
        status: int,
        media_type: bytes,
        payload: bytes,
        request_id: bytes,
        extra_headers: dict[str, str],
        started: float,
        *more_headers: tuple[bytes, bytes],
    ) -> None:
        headers = [
            (b"content-type", media_type),
            (b"content-length", str(len(payload)).encode()),
            (b"x-request-id", request_id),
            *more_headers,
        ]
        headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra_headers.items())
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
        self._metrics.observe_request(status, time.perf_counter() - started)

    async def _read_body(self, receive: Receive, content_length: bytes | None) -> bytes:
        return await read_body(receive, content_length, self._body_limits)

    def _encode(self, result: Any, accept: str, request_id: bytes) -> tuple[bytes, bytes]:
        try:
            return encode_result(self.api.output, result, accept)
        except Exception as exc:
            logger.exception("request %s: the result of %s could not be encoded", request_id.decode(), self.api.name)
            raise ModelError(
                f"{self.api.name} returned {type(result).__name__}, which cannot be sent as "
                f"{self.api.output.describe()}: {exc}"
            ) from exc
