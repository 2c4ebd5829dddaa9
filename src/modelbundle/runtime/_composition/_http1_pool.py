"""Keep-alive HTTP/1.1 connections to one origin (a dependency's base URL), shared by concurrent calls.

At most ``max_connections`` are open; an idle one is reused last-in first-out (the warmest,
and the rest age out on the server's keep-alive timeout), and a caller finding none free
and the limit reached waits for one. A connection that closed or failed is dropped. A
request is retried once, on a new connection, only when it went out on a reused one that
failed before any byte of the answer came back: the server closed it while idle, which a
client cannot see coming. Anything else is not retried, since a POST need not be idempotent.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections import deque
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from ._http1 import Answer, AnswerTimeout, ConnectFailed, Connection, ConnectionBroken

#: the default bound of one origin's connections: well above the concurrency one entry process sees
MAX_CONNECTIONS = 256


class ConnectionPool:
    """The connections to ``base_url`` (``http://host:port[/prefix]`` or ``https://``)."""

    def __init__(self, base_url: str, *, max_connections: int = MAX_CONNECTIONS) -> None:
        parts = urlsplit(base_url)
        self.secure = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.secure else 80)
        self.path_prefix = parts.path.rstrip("/")
        default_port = (self.secure and self.port == 443) or (not self.secure and self.port == 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host if default_port else f"{host}:{self.port}"
        self.max_connections = max_connections
        self._idle: list[Connection] = []
        self._waiters: deque[asyncio.Future[Connection | None]] = deque()
        #: connections open or opening, idle ones included
        self._count = 0
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    def request_head(self, method: str, path: str, headers: dict[str, str]) -> bytes:
        """The fixed start of a request's head (request line, Host, ``headers``); the caller adds its own headers, Content-Length, the blank line and the body."""
        lines = [f"{method} {self.path_prefix}{path} HTTP/1.1", f"Host: {self.host_header}"]
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        return ("\r\n".join(lines) + "\r\n").encode("latin-1")

    async def request(self, data: bytes, timeout: float) -> Answer:
        """Send a whole request; its complete answer (within ``timeout`` of the call)."""
        connection, answer = await self._exchange(data, timeout, streaming=False)
        self._release(connection)
        return answer

    async def stream(self, data: bytes, timeout: float) -> Streamed:
        """Send a whole request; its answer once the head arrived, the body to read chunk by chunk."""
        connection, answer = await self._exchange(data, timeout, streaming=True)
        return Streamed(self, connection, answer, timeout)

    async def aclose(self) -> None:
        self._closed = True
        for connection in self._idle:
            connection.close()
        self._idle.clear()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(ConnectFailed("the client was closed"))

    # -- internals ------------------------------------------------------------------------
    async def _exchange(self, data: bytes, timeout: float, *, streaming: bool) -> tuple[Connection, Answer]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for attempt in (1, 2):
            # the common case, without a coroutine of its own; a retry takes a new connection when it may
            connection = self._idle_connection() if attempt == 1 else None
            reused = connection is not None
            if connection is None:
                connection, reused = await self._acquire(deadline)
            try:
                answer = connection.send(data, streaming=streaming)
                await answer.head(max(deadline - loop.time(), 0.0))
            except ConnectionBroken as exc:
                self._drop(connection)
                if reused and not exc.started and attempt == 1:
                    continue  # closed by the server while idle: nothing of ours was read, send it again
                raise
            except BaseException:  # a timeout, or the caller cancelled: the answer may still come, on this connection
                self._drop(connection)
                raise
            return connection, answer
        raise AssertionError("unreachable")

    def _idle_connection(self) -> Connection | None:
        """The idle connection used last, if any is still open."""
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                connection.recycle()
                return connection
            self._count -= 1  # closed by the server while idle
        return None

    async def _acquire(self, deadline: float) -> tuple[Connection, bool]:
        """A connection for one request when none is idle (a new one, or one a caller gives back), and whether it served one before."""
        if self._closed:
            raise ConnectFailed("the client was closed")
        if self._count >= self.max_connections:
            handed = await self._wait_for_slot(deadline)
            if handed is not None:
                return handed, True
        else:
            self._count += 1
        return await self._connect(deadline), False

    async def _wait_for_slot(self, deadline: float) -> Connection | None:
        """Wait for a released connection (returned) or a freed slot (None: counted for us, to open)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Connection | None] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(max(deadline - loop.time(), 0.0), _no_slot, waiter, self.max_connections)
        try:
            return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                handed = waiter.result()  # handed over just as we gave up: pass it on
                if handed is None:
                    self._count -= 1
                    self._wake_one()
                else:
                    self._release(handed)
            raise
        finally:
            timer.cancel()
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    async def _connect(self, deadline: float) -> Connection:
        """A new connection; its slot is already counted (given back when this fails)."""
        loop = asyncio.get_running_loop()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(Connection, self.host, self.port, ssl=self._ssl_context()),
                max(deadline - loop.time(), 0.0),
            )
        except BaseException as exc:
            self._count -= 1
            self._wake_one()
            if isinstance(exc, asyncio.TimeoutError):
                raise ConnectFailed("no connection within the timeout") from exc
            if isinstance(exc, OSError):
                # asyncio words a refusal "Connect call failed (address)": the errno says why
                reason = os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__
                raise ConnectFailed(reason.lower()) from exc
            raise
        return connection

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.secure and self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    def _release(self, connection: Connection) -> None:
        """A connection done with its request: to a waiter, or the idle stack; dropped when it cannot serve another."""
        if not connection.reusable() or self._closed:
            self._drop(connection)
            return
        connection.recycle()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append(connection)

    def _drop(self, connection: Connection) -> None:
        connection.close()
        self._count -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        """A slot freed: the first waiter opens a connection in it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._count += 1
                waiter.set_result(None)
                return


def _no_slot(waiter: asyncio.Future[Connection | None], limit: int) -> None:
    if not waiter.done():
        waiter.set_exception(ConnectFailed(f"all {limit} connections stayed busy for the whole timeout"))


class Streamed:
    """A streamed answer: ``status`` and ``headers`` now, the body from ``chunks()``; ``aclose()`` when done."""

    def __init__(self, pool: ConnectionPool, connection: Connection, answer: Answer, timeout: float) -> None:
        self._pool = pool
        self._connection: Connection | None = connection
        self._answer = answer
        self._timeout = timeout
        self.status = answer.status
        self.headers = answer.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; each piece within the timeout of the one before."""
        while True:
            chunk = await self._answer.next_chunk(self._timeout)
            if chunk is None:
                return
            yield chunk

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    async def aclose(self) -> None:
        """Give the connection back (reused when the body was read to its end, else closed)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            self._pool._release(connection)


__all__ = ["AnswerTimeout", "ConnectFailed", "ConnectionBroken", "ConnectionPool", "Streamed"]
