"""A streaming API answered in one response, for hosts that cannot stream (``bundle export lambda --buffer-streams``).

The API runs to its end and its items are collected: ``str`` items are joined into one
string, answered as that API's ``str`` answer would be (``text/plain``, or a JSON string
for ``Accept: application/json``); any other items become one JSON array, each item as
its adapter writes it in JSON. Everything else (decoding, limits, errors, metrics) is
``APIEndpoint``'s.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from ..adapters import Text
from ..errors import ModelError
from ._codec import JSON_BYTES
from ._endpoint import APIEndpoint
from ._types import Invoke

if TYPE_CHECKING:
    from ._app import ServiceApp

logger = logging.getLogger("modelbundle.server")


def collect_stream(method: Callable[..., Any], is_async: bool) -> Invoke:
    """An invoke callable that runs a streaming API method to its end and returns its items as a list."""
    if is_async:

        async def collect_async(kwargs: dict[str, Any]) -> list[Any]:
            stream = method(**kwargs)
            if inspect.isawaitable(stream):  # an ``async def`` that returns an async iterator
                stream = await stream
            if hasattr(stream, "__aiter__"):
                return [item async for item in stream]
            return list(stream)

        return collect_async

    async def collect_in_thread(kwargs: dict[str, Any]) -> list[Any]:
        # the call itself may do the work (a function returning an iterator), so it runs on the thread too
        return await asyncio.to_thread(lambda: list(method(**kwargs)))

    return collect_in_thread


class BufferedStreamEndpoint(APIEndpoint):
    """Serves ``POST <api.route>`` of a streaming API with the whole stream as one body."""

    def _encode(self, result: Any, accept: str, request_id: bytes) -> tuple[bytes, bytes]:
        adapter = self.api.output
        if isinstance(adapter, Text):
            return super()._encode("".join(str(item) for item in result), accept, request_id)
        try:
            return orjson.dumps([adapter.to_json(item) for item in result], option=orjson.OPT_SERIALIZE_NUMPY), JSON_BYTES
        except Exception as exc:
            logger.exception("request %s: the items of %s could not be encoded", request_id.decode(), self.api.name)
            raise ModelError(f"{self.api.name} yielded items that cannot be sent as {adapter.describe()} in JSON: {exc}") from exc


def buffered_endpoints(app: ServiceApp) -> dict[str, BufferedStreamEndpoint]:
    """An endpoint per streaming (non-WebSocket) API of ``app``'s set-up service, by route."""
    service = app.service
    if service is None:
        raise RuntimeError("the app's service is not set up yet")
    endpoints = {}
    for api in service.__apis__.values():
        if api.streaming and not api.websocket:
            invoke = collect_stream(getattr(service, api.name), api.is_async)
            endpoints[api.route] = BufferedStreamEndpoint(api, invoke, app.metrics.for_api(api.name), app.config, app.state)
    return endpoints

