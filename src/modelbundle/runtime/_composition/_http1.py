"""One HTTP/1.1 keep-alive connection to a dependency, as an asyncio protocol; answers parsed by httptools.

Why not httpx: a dependency call is on the hot path of every request of a ``--split``
entry, and httpx spends 1-2 ms of CPU on each. This does only what a call needs: one
``transport.write`` of head and body, the answer parsed by httptools (the C parser uvicorn
uses for requests), Content-Length and chunked bodies, and a streaming mode whose body
chunks are read as they arrive. The pool (``_http1_pool.py``) owns the connections.

The errors here are the client's own; ``_remote.py`` turns them into the
``DependencyError`` family at one boundary.
"""

from __future__ import annotations

import asyncio
from collections import deque

import httptools

#: a stream's unread body held before the connection stops reading (the socket's buffers then push back)
STREAM_BUFFER_BYTES = 1 << 20


class HTTPClientError(Exception):
    """A call that got no usable answer; ``reason`` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConnectFailed(HTTPClientError):
    """No connection could be had (refused, unreachable, no free slot in time): nothing was sent."""


class ConnectionBroken(HTTPClientError):
    """The connection closed or failed before the whole answer arrived (``started``: after part of it)."""

    def __init__(self, reason: str, *, started: bool) -> None:
        super().__init__(reason)
        self.started = started


class AnswerTimeout(HTTPClientError):
    """The answer (or a stream's next chunk) did not come within the timeout."""


class Answer:
    """One request's answer as it arrives: status and headers, then the body in chunks."""

    __slots__ = ("_buffered", "_chunks", "_connection", "_error", "_streaming", "_waiter", "complete", "head_done", "keep_alive", "raw_headers", "started", "status")

    def __init__(self, connection: Connection, streaming: bool) -> None:
        self.status = 0
        #: as they came; ``headers`` decodes them when asked (most answers need one header, or none)
        self.raw_headers: list[tuple[bytes, bytes]] = []
        #: a byte of the answer arrived: a failure from now on cannot be retried
        self.started = False
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._error: HTTPClientError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._streaming = streaming
        self._connection = connection

    # -- the reader's side ------------------------------------------------------------------
    @property
    def headers(self) -> dict[str, str]:
        """Lower-cased name -> value (a repeated header keeps its last value: the few read here are single)."""
        return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in self.raw_headers}

    async def head(self, timeout: float) -> None:
        """Wait for the status line and headers (the whole answer, when not streaming)."""
        while not (self.head_done if self._streaming else self.complete):
            await self._wait(timeout)

    def body(self) -> bytes:
        """The whole body of a complete answer."""
        return b"".join(self._chunks)

    async def next_chunk(self, timeout: float) -> bytes | None:
        """The next piece of a streamed body; None at its end."""
        while not self._chunks:
            if self.complete:
                return None
            await self._wait(timeout)
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._buffered < STREAM_BUFFER_BYTES:
            self._connection.resume()
        return chunk

    async def _wait(self, timeout: float) -> None:
        if self._error is not None:
            raise self._error
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        # a timer rather than asyncio.wait_for, which costs a task per call before Python 3.12
        timer = loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    # -- the connection's side --------------------------------------------------------------
    def feed_head(self, status: int) -> None:
        self.status = status
        self.head_done = True
        if self._streaming:
            self._wake()

    def feed_body(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        if self._streaming:
            self._buffered += len(chunk)
            if self._buffered >= STREAM_BUFFER_BYTES:
                self._connection.pause()
            self._wake()

    def feed_end(self, keep_alive: bool) -> None:
        self.complete = True
        self.keep_alive = keep_alive
        self._wake()

    def fail(self, error: HTTPClientError) -> None:
        if self.complete:
            return
        self._error = error
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(AnswerTimeout("no answer within the timeout"))


class Connection(asyncio.Protocol):
    """A keep-alive connection: one request at a time, its answer fed to an ``Answer``."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._answer: Answer | None = None
        self._paused = False

    def send(self, data: bytes, *, streaming: bool = False) -> Answer:
        """Write a whole request (head and body in one write); its answer, to wait on."""
        assert self.transport is not None and self._answer is None, "one request at a time"
        answer = self._answer = Answer(self, streaming)
        self.transport.write(data)
        return answer

    def reusable(self) -> bool:
        """True once the last answer was read whole and the server keeps the connection open."""
        answer = self._answer
        return not self.closed and answer is not None and answer.complete and answer.keep_alive

    def recycle(self) -> None:
        """Ready for the next request (the pool calls this on a ``reusable`` connection)."""
        self._answer = None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()

    def pause(self) -> None:
        if not self._paused and self.transport is not None and not self.closed:
            self._paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self._paused and self.transport is not None and not self.closed:
            self._paused = False
            self.transport.resume_reading()

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        answer = self._answer
        if answer is None or answer.complete:  # bytes nobody asked for: the connection cannot be trusted
            self.close()
            return
        answer.started = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._broken(answer, "the server switched protocols")
        except httptools.HttpParserError as exc:
            self._broken(answer, f"a malformed answer ({exc})")

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        answer = self._answer
        if answer is None or answer.complete:
            return
        if answer.head_done and _reads_until_close(answer):
            answer.feed_end(keep_alive=False)  # a body without a length ends with the connection
            return
        reason = f"the connection was reset ({exc})" if exc is not None else "the server closed the connection"
        if answer.started:
            reason += " in the middle of the answer"
        answer.fail(ConnectionBroken(reason, started=answer.started))

    # -- httptools callbacks ------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        if self._answer is not None:
            self._answer.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self._answer is not None:
            self._answer.feed_head(self._parser.get_status_code())

    def on_body(self, body: bytes) -> None:
        if self._answer is not None:
            self._answer.feed_body(body)

    def on_message_complete(self) -> None:
        if self._answer is not None:
            self._answer.feed_end(self._parser.should_keep_alive())

    def _broken(self, answer: Answer, reason: str) -> None:
        answer.fail(ConnectionBroken(reason, started=True))
        self.close()


def _reads_until_close(answer: Answer) -> bool:
    headers = answer.headers
    return "content-length" not in headers and "chunked" not in headers.get("transfer-encoding", "").lower()
