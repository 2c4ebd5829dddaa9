"""``--timeout`` as one awaitable's deadline: past it, a ``RequestTimeout`` (504) naming what was late."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

from ..errors import RequestTimeout

T = TypeVar("T")

if sys.version_info >= (3, 11):
    deadline = asyncio.timeout
else:  # pragma: no cover - Python 3.10 has no asyncio.timeout

    class deadline:
        """asyncio.timeout's part that we use: cancel the task at the deadline, then raise TimeoutError."""

        def __init__(self, seconds: float) -> None:
            self._seconds = seconds
            self._fired = False

        def expired(self) -> bool:
            return self._fired

        async def __aenter__(self) -> None:
            task = asyncio.current_task()
            self._handle = asyncio.get_running_loop().call_later(self._seconds, self._fire, task)

        def _fire(self, task: asyncio.Task[Any]) -> None:
            self._fired = True
            task.cancel()

        async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
            self._handle.cancel()
            if exc_type is asyncio.CancelledError and self._fired:
                raise TimeoutError


async def within(seconds: float, what: str, awaitable: Awaitable[T]) -> T:
    """``await awaitable``, or a RequestTimeout once ``seconds`` have passed.

    A TimeoutError the awaited code raises itself is its own failure and passes through.
    """
    limit = deadline(seconds)
    try:
        async with limit:
            return await awaitable
    except TimeoutError:
        if not limit.expired():
            raise
        raise RequestTimeout(f"{what} did not answer within {seconds:g} s") from None
