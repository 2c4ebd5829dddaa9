"""Read a request body within limits of size, time and rate, so a slow client cannot hold a worker.

A body that stops arriving for ``--body-timeout`` seconds, or that after those first
seconds arrives slower on average than ``--body-min-rate`` bytes a second, is answered
408 and its connection closed. One timer per body, moved only when it fires: the
common body, already buffered when the app first asks for it, costs one timer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import ClientDisconnected, PayloadTooLarge, RequestTooSlow
from ._types import Receive


class BodyLimits:
    """``--max-body-size``, ``--body-timeout`` and ``--body-min-rate`` of one worker."""

    def __init__(self, max_size: int, timeout: float, min_rate: int) -> None:
        self.max_size = max_size
        self.timeout = timeout
        self.min_rate = min_rate


async def read_body(receive: Receive, content_length: bytes | None, limits: BodyLimits) -> bytes:
    """The whole body; PayloadTooLarge (413), RequestTooSlow (408) or ClientDisconnected instead."""
    limit = limits.max_size
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise PayloadTooLarge(f"body of {int(content_length)} bytes is above the limit of {limit} bytes (--max-body-size)")
    watchdog = _Watchdog(limits)
    try:
        message = await watchdog.receive(receive)
        body: bytes = message.get("body", b"")
        if len(body) > limit:
            raise PayloadTooLarge(f"body is above the limit of {limit} bytes (--max-body-size)")
        if not message.get("more_body", False):
            return body
        chunks = [body]
        size = len(body)
        while message.get("more_body", False):
            message = await watchdog.receive(receive)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"body is above the limit of {limit} bytes (--max-body-size)")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        watchdog.stop()


class _Watchdog:
    """Cancels the reading task when the body stalls or trickles; see the module docstring."""

    def __init__(self, limits: BodyLimits) -> None:
        self._limits = limits
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._started = self._last = self._loop.time()
        self._received = 0
        self._fired: str | None = None
        self._handle: asyncio.TimerHandle | None = self._loop.call_at(self._started + limits.timeout, self._check)

    async def receive(self, receive: Receive) -> dict[str, Any]:
        try:
            message = await receive()
        except asyncio.CancelledError:
            if self._fired is None:
                raise  # not ours: the server is cancelling the request
            if self._task is not None and hasattr(self._task, "uncancel"):
                self._task.uncancel()
            raise RequestTooSlow(self._fired, headers={"Connection": "close"}) from None
        if message["type"] == "http.disconnect":
            raise ClientDisconnected("the client closed the connection before sending the whole body")
        self._received += len(message.get("body", b""))
        self._last = self._loop.time()
        return message  # type: ignore[no-any-return]

    def _check(self) -> None:
        """Fire if the body stalled or trickles; else look again when it next could."""
        limits, now = self._limits, self._loop.time()
        if now - self._last >= limits.timeout:
            self._fire(f"the request body stalled for {limits.timeout:g} s (--body-timeout)")
            return
        expected = limits.min_rate * (now - self._started)
        if limits.min_rate and now - self._started >= limits.timeout and self._received < expected:
            self._fire(f"the request body arrived slower than {limits.min_rate} bytes/s (--body-min-rate)")
            return
        next_check = self._last + limits.timeout
        if limits.min_rate:  # when the average would drop below the rate if nothing more came
            next_check = min(next_check, max(self._started + limits.timeout, self._started + self._received / limits.min_rate))
        self._handle = self._loop.call_at(max(next_check, now + 0.01), self._check)

    def _fire(self, reason: str) -> None:
        self._handle = None
        self._fired = reason
        if self._task is not None:
            self._task.cancel()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
