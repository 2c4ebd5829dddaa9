"""What a dependency attribute is on a live service: one method per API of the dependency.

Each method has the dependency's signature (``inspect.signature`` and editors see
it) and checks a call before anything runs: unknown or missing arguments, and
each value against the API's adapter. Then, where the call is made decides how
it answers (the API kind of the caller is not known here, but its thread is):

- on the dependencies' own loop (``async def`` APIs of a server): an awaitable,
  or for a streaming API an async iterator;
- on a thread with no loop (sync APIs run on worker threads): the answer itself,
  or a plain iterator; the work runs on the dependencies' loop and this thread
  waits for it;
- on another loop (a notebook's, or ``asyncio.run`` inside an API), where both
  kinds of caller run: the caller's own code decides. A coroutine gets an
  awaitable, anything else the answer; either way the work runs on the
  dependencies' loop, whose batchers belong to it, never on the caller's.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
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
        where = _where_called(self._loop)
        if self._api.streaming:
            items = self._stream(checked)
            if where is _OWN_LOOP:
                return items
            return _relayed_items(items, self._loop) if where is _OTHER_LOOP_ASYNC else _blocking_items(items, self._loop)
        answer = self._transport.call(self._api.name, checked)
        if where is _OWN_LOOP:
            return answer
        if self._loop.is_closed() or not self._loop.is_running():
            answer.close()
            raise RuntimeError(f"{self._where}: the server's event loop is not running, so a dependency cannot be called")
        if where is _OTHER_LOOP_ASYNC:
            return _relayed(answer, self._loop)
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


_OWN_LOOP = "own loop"
_NO_LOOP = "no loop"
_OTHER_LOOP_ASYNC = "another loop, from a coroutine"
_OTHER_LOOP_SYNC = "another loop, from plain code"
#: frames of their own that run their enclosing function's code (comprehensions before 3.12, lambdas)
_INNER_CODE = ("<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>", "<lambda>")
_ASYNC_CODE = inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR | inspect.CO_ITERABLE_COROUTINE


def _where_called(own_loop: asyncio.AbstractEventLoop) -> str:
    """Which of the module docstring's cases a call is in (two frames up: the caller of ``__call__``)."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        return _NO_LOOP
    if running is own_loop:
        return _OWN_LOOP
    frame = sys._getframe(2)
    while frame.f_back is not None and frame.f_code.co_name in _INNER_CODE:
        frame = frame.f_back
    return _OTHER_LOOP_ASYNC if frame.f_code.co_flags & _ASYNC_CODE else _OTHER_LOOP_SYNC


async def _relayed(answer: Any, loop: asyncio.AbstractEventLoop) -> Any:
    """Await, on the caller's loop, a call running on the dependencies' loop."""
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(answer, loop))


async def _relayed_items(items: AsyncIterator[Any], loop: asyncio.AbstractEventLoop) -> AsyncIterator[Any]:
    """A stream on the dependencies' loop, iterated from another loop."""
    try:
        while True:
            try:
                yield await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_next(items), loop))
            except StopAsyncIteration:
                return
    finally:
        close = getattr(items, "aclose", None)
        if close is not None and loop.is_running():
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(close(), loop))


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
