"""What a dependency attribute is on a live service: one method per API of the dependency.

Each method has the dependency's signature (``inspect.signature`` and editors see
it) and checks a call before anything runs: unknown or missing arguments, and
each value against the API's adapter. Then, where the call is made decides how
it answers (the API kind of the caller is not known here, but its thread is):

- on a thread running an event loop (``async def`` APIs): an awaitable, or for a
  streaming API an async iterator;
- elsewhere (sync APIs run on worker threads): the answer itself, or a plain
  iterator; the work runs on the server's loop and this thread waits for it.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ...errors import InvalidDependencyCall, InvalidInput
from ...service_base import APIMethod, Service
from ._transport import Transport


class ServiceHandle:
    """The handle of one dependency (``self.embedder``): its APIs as methods."""

    def __init__(self, where: str, service_cls: type[Service], transport: Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._where = where
        self._service = service_cls.name
        for api in service_cls.__apis__.values():
            if api.websocket:  # a socket is a conversation with a client, not a call
                continue
            method = DependencyMethod(f"{where}.{api.name}", service_cls, api, transport, loop)
            setattr(self, api.name, method)

    def __repr__(self) -> str:
        return f"<dependency {self._service!r} at {self._where}>"


class DependencyMethod:
    """One API of a dependency, called like the method it is."""

    def __init__(
        self, where: str, service_cls: type[Service], api: APIMethod, transport: Transport, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._where = where
        self._api = api
        self._transport = transport
        self._loop = loop
        self._dependency = service_cls.name
        try:  # the hints as types, not strings (modules with `from __future__ import annotations`)
            signature = inspect.signature(getattr(service_cls, api.name), eval_str=True)
        except Exception:
            signature = inspect.signature(getattr(service_cls, api.name))
        self.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])
        self.__doc__ = api.doc or None
        self.__name__ = api.name

    def __repr__(self) -> str:
        return f"<{self._where}{self.__signature__}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        checked = self._check(args, kwargs)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            on_loop = False
        else:
            on_loop = True
        if self._api.streaming:
            items = self._stream(checked)
            return items if on_loop else _blocking_items(items, self._loop)
        answer = self._transport.call(self._api.name, checked)
        if on_loop:
            return answer
        if self._loop.is_closed() or not self._loop.is_running():
            answer.close()
            raise RuntimeError(f"{self._where}: the server's event loop is not running, so a dependency cannot be called")
        return asyncio.run_coroutine_threadsafe(answer, self._loop).result()

    async def _stream(self, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        items = await self._transport.stream(self._api.name, kwargs)
        try:
            async for item in items:
                yield item
        finally:
            close = getattr(items, "aclose", None)
            if close is not None:
                await close()

    def _check(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments for the dependency, each checked by its adapter; the caller's mistake in one line."""
        try:
            bound = self.__signature__.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidDependencyCall(
                self._dependency, f"{self._where}{self.__signature__}: {exc}"
            ) from None
        checked: dict[str, Any] = {}
        for param in self._api.params:
            if param.name not in bound.arguments:
                continue  # left to its default, as over HTTP
            try:
                checked[param.name] = param.adapter.from_python(bound.arguments[param.name], param.name)
            except InvalidInput as exc:
                raise InvalidDependencyCall(
                    self._dependency, f"{self._where}: {exc.message} (it takes {param.adapter.describe()})"
                ) from None
        return checked


def _blocking_items(items: AsyncIterator[Any], loop: asyncio.AbstractEventLoop) -> Iterator[Any]:
    """A sync caller's view of a stream: each item is fetched on the server's loop while this thread waits."""
    try:
        while True:
            try:
                yield asyncio.run_coroutine_threadsafe(_next(items), loop).result()
            except StopAsyncIteration:
                return
    finally:  # the caller stopped early (break, or an error): close the dependency's generator too
        close = getattr(items, "aclose", None)
        if close is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(close(), loop).result()


async def _next(items: AsyncIterator[Any]) -> Any:
    return await items.__anext__()
