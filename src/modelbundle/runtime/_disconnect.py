"""Noticing that a client went away while its request is computed, so the work stops.

Once the body is read, the only message ASGI can still deliver for a request is
``http.disconnect``; one ``receive()`` kept pending while the API runs hears it.
On it, the request's task is cancelled: an ``async`` API gets ``CancelledError``, a
batched request leaves the queue, and a call already on a thread has its answer dropped.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ._types import Receive


class Abandoned(Exception):
    """The client disconnected while its request was computed: nothing is sent, nothing logged."""


class DisconnectWatch:
    """Cancels the current task when its client disconnects, until ``stop()``."""

    __slots__ = ("_stopped", "_task", "_watcher", "disconnected")

    def __init__(self, receive: Receive) -> None:
        self.disconnected = False
        self._stopped = False
        self._task = asyncio.current_task()
        self._watcher: asyncio.Future[Any] = asyncio.ensure_future(receive())
        self._watcher.add_done_callback(self._on_message)

    def _on_message(self, watcher: asyncio.Future[Any]) -> None:
        # a callback already scheduled still runs after stop(): the flag keeps it from cancelling later work
        if self._stopped or watcher.cancelled() or watcher.exception() is not None:
            return
        if watcher.result().get("type") == "http.disconnect" and self._task is not None:
            self.disconnected = True
            self._task.cancel()

    def stop(self) -> None:
        self._stopped = True
        watcher = self._watcher
        if watcher.done():
            if not watcher.cancelled():
                watcher.exception()  # retrieved, so asyncio does not log it as never retrieved
        else:
            watcher.cancel()

    def forget_cancel(self) -> None:
        """Undo the cancel this watch requested, so the task (and its timeouts) carry on normally."""
        if self._task is not None and hasattr(self._task, "uncancel"):  # Python 3.11+
            self._task.uncancel()
