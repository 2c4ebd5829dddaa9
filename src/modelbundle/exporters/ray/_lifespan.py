"""``AppLifespan``: run an ASGI app's lifespan startup when the replica is made, so a failed ``setup()`` is its own error.

Ray's ingress would run the lifespan itself, and report any failure as "ASGI
lifespan startup failed. Check replica logs". Started here instead, inside
``__serve_build_asgi_app__``, the replica fails with the app's own reason (a
missing artifact, a ``setup()`` that raised), which ``bundle deploy ray`` then
prints in one line. Ray's later lifespan messages are answered from this
object: startup is already done, shutdown runs the app's (drain, ``teardown()``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ...errors import ModelbundleError, ServeError
from ._types import ASGIApp, Message, Receive, Send

logger = logging.getLogger("modelbundle.ray")
#: seconds the app's shutdown (draining its batcher, teardown()) may take
SHUTDOWN_TIMEOUT_S = 60.0


class AppLifespan:
    """The lifespan of one ASGI app, driven from outside the server (see the module docstring)."""

    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app = app
        self.name = name
        self._events: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Future[None] | None = None
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        """Run the startup; raise the app's reason if it fails."""
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def send(message: Message) -> None:
            kind = message["type"]
            if kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                self._stopped.set()
            elif started.done():
                return
            elif kind == "lifespan.startup.complete":
                started.set_result(None)
            elif kind == "lifespan.startup.failed":
                text = str(message.get("message") or "startup failed")
                logger.error("%s could not start:\n%s", self.name, text)  # the whole traceback, in the replica's log
                reason = [line.strip() for line in text.splitlines() if line.strip()][-1]
                started.set_exception(ServeError(f"{self.name} could not start: {reason}"))

        self._events.put_nowait({"type": "lifespan.startup"})
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        self._task = asyncio.ensure_future(self.app(scope, self._events.get, send))
        await asyncio.wait([started, self._task], return_when=asyncio.FIRST_COMPLETED)
        if started.done() and started.exception() is None:
            return
        # the app's lifespan raises after reporting the failure: that exception is the one reported here
        self._task.add_done_callback(lambda task: task.cancelled() or task.exception())
        reason = getattr(self.app, "startup_error", None)
        if isinstance(reason, ModelbundleError):  # a user mistake, already one line
            raise reason
        failure = started.exception() if started.done() else None
        if failure is not None:
            raise failure
        error = self._task.exception() if not self._task.cancelled() else None
        raise ServeError(f"{self.name} could not start: {type(error).__name__}: {error}") from error

    async def stop(self) -> None:
        """Run the shutdown (a no-op if startup never finished)."""
        if self._task is None or self._task.done():
            return
        self._events.put_nowait({"type": "lifespan.shutdown"})
        await asyncio.wait([self._task], timeout=SHUTDOWN_TIMEOUT_S)

    async def answer(self, receive: Receive, send: Send) -> None:
        """Answer a server's lifespan (Ray's): startup is done already; shutdown stops the app."""
        while True:
            message: Any = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
