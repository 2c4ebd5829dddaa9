"""A streaming API's answer as one kind of object: an async iterator with ``aclose()``.

An async generator is used as it is (it runs on the event loop). A sync one
(or any sync iterable) is stepped on the API thread pool, one ``next()`` at a
time, so a model that blocks between items never blocks the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

_DONE = object()


def as_async_items(result: Any, pool: ThreadPoolExecutor) -> AsyncIterator[Any]:
    """The items of what a streaming API returned; TypeError when it is not iterable."""
    if hasattr(result, "__aiter__"):
        return result.__aiter__()  # type: ignore[no-any-return]
    if isinstance(result, (str, bytes, dict)) or not hasattr(result, "__iter__"):
        # a str is iterable, but one character per item is never what a stream meant
        raise TypeError(f"a streaming API must return an iterator or yield its items, not {type(result).__name__}")
    return ThreadedItems(iter(result), pool)


def _step(iterator: Iterator[Any]) -> Any:
    try:
        return next(iterator)
    except StopIteration:
        return _DONE


class ThreadedItems:
    """An async iterator over a sync iterator whose ``next()`` calls run on ``pool``.

    ``aclose()`` closes a generator so its ``finally`` runs. A generator blocked
    inside ``next()`` (a long model call between two yields) cannot be interrupted:
    Python only closes it once that ``next()`` returns, and ``aclose()`` waits for it.
    """

    def __init__(self, iterator: Iterator[Any], pool: ThreadPoolExecutor) -> None:
        self._iterator = iterator
        self._pool = pool
        self._pending: Future[Any] | None = None

    def __aiter__(self) -> ThreadedItems:
        return self

    async def __anext__(self) -> Any:
        self._pending = self._pool.submit(_step, self._iterator)
        item = await asyncio.wrap_future(self._pending)
        if item is _DONE:
            raise StopAsyncIteration
        return item

    async def aclose(self) -> None:
        pending = self._pending
        # cancelled if still queued; if running, it is waited for (see the class docstring)
        if pending is not None and not pending.done() and not pending.cancel():
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(pending)
        close = getattr(self._iterator, "close", None)
        if close is not None:
            # the generator's finally may block (release a GPU, close a file): off the loop too
            await asyncio.get_running_loop().run_in_executor(self._pool, close)
