"""Read a request body within limits of size, time and rate, so a slow client cannot hold a worker.

A body that stops arriving for ``--body-timeout`` seconds, or that after those first
seconds arrives slower on average than ``--body-min-rate`` bytes a second, is answered
408 and its connection closed (to within a quarter of ``--body-timeout``, at most 1 s).
"""

from __future__ import annotations

import asyncio

from ..errors import ClientDisconnected, PayloadTooLarge, RequestTooSlow
from ._types import Message, Receive


class BodyLimits:
    """``--max-body-size``, ``--body-timeout`` and ``--body-min-rate``, and the bodies being read under them."""

    def __init__(self, max_size: int, timeout: float, min_rate: int) -> None:
        self.max_size = max_size
        self.timeout = timeout
        self.min_rate = min_rate
        # one sweep over every body being read, a few times per --body-timeout, rather than a
        # timer per request: registering a read then costs a set insertion (see bench/limits_bench.py)
        self._reading: set[_Reading] = set()
        self._sweep: asyncio.TimerHandle | None = None
        self._interval = min(timeout / 4, 1.0)

    def start(self) -> _Reading:
        reading = _Reading(self)
        self._reading.add(reading)
        if self._sweep is None:
            self._sweep = reading.loop.call_later(self._interval, self._check_all)
        return reading

    def finish(self, reading: _Reading) -> None:
        self._reading.discard(reading)

    def _check_all(self) -> None:
        self._sweep = None
        for reading in list(self._reading):
            reason = reading.too_slow()
            if reason is not None:
                self._reading.discard(reading)
                reading.fire(reason)
        if self._reading:
            self._sweep = next(iter(self._reading)).loop.call_later(self._interval, self._check_all)


async def read_body(receive: Receive, content_length: bytes | None, limits: BodyLimits) -> bytes:
    """The whole body; PayloadTooLarge (413), RequestTooSlow (408) or ClientDisconnected instead."""
    limit = limits.max_size
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise PayloadTooLarge(f"body of {int(content_length)} bytes is above the limit of {limit} bytes (--max-body-size)")
    reading = limits.start()
    try:
        message = await reading.receive(receive)
        body: bytes = message.get("body", b"")
        if len(body) > limit:
            raise PayloadTooLarge(f"body is above the limit of {limit} bytes (--max-body-size)")
        if not message.get("more_body", False):
            return body
        chunks = [body]
        size = len(body)
        while message.get("more_body", False):
            message = await reading.receive(receive)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"body is above the limit of {limit} bytes (--max-body-size)")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        limits.finish(reading)


class _Reading:
    """One body being read: when it started, when bytes last came, how many; cancelled when too slow."""

    __slots__ = ("_fired", "_last", "_limits", "_received", "_started", "_task", "loop")

    def __init__(self, limits: BodyLimits) -> None:
        self._limits = limits
        self.loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._started = self._last = self.loop.time()
        self._received = 0
        self._fired: str | None = None

    async def receive(self, receive: Receive) -> Message:
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
        self._last = self.loop.time()
        return message

    def too_slow(self) -> str | None:
        """Why this body is given up on, or None while it arrives fast enough."""
        limits, now = self._limits, self.loop.time()
        if now - self._last >= limits.timeout:
            return f"the request body stalled for {limits.timeout:g} s (--body-timeout)"
        elapsed = now - self._started
        if limits.min_rate and elapsed >= limits.timeout and self._received < limits.min_rate * elapsed:
            return f"the request body arrived slower than {limits.min_rate} bytes/s (--body-min-rate)"
        return None

    def fire(self, reason: str) -> None:
        self._fired = reason
        if self._task is not None:
            self._task.cancel()
