"""WebSocket APIs: ``@api(websocket=True)`` served at ``GET <route>``, one socket one call.

The API is called once per socket with an async iterator of the decoded incoming
messages; each item it yields is encoded and sent (``_ws_messages.py`` says how).
Three tasks per socket: the API's (iterate, encode, send), a reader (moves incoming
messages to a small inbox, and notices the client leaving while the API is busy), and
the conversation itself, which waits for the first of "the API is done" and "the server's
graceful timeout is over".

How a socket ends:

- the API returns: close 1000;
- bad input (an undecodable message, or the API raises a 4xx ``RequestError`` such as
  ``InvalidInput``): close 1007 with the one-line reason;
- the API raises anything else: logged with the request id, close 1011;
- the client closes while the API waits for the next message: ``messages`` ends and the
  API finishes; while the API is at work (computing, or holding an item the client no longer
  reads): the API is cancelled at once (its ``finally`` runs) and counted in
  ``modelbundle_cancelled_requests_total``;
- the server stops: open sockets go on for ``--graceful-timeout``, then the API is
  cancelled and the socket closed with 1001. New handshakes meanwhile get a 503.

An open socket counts as one request in flight against ``--max-concurrency`` for as long
as it is open; a handshake past the limit gets a 503. ``--timeout`` does not apply: a
conversation may last as long as both sides keep it going (ping/pong finds dead peers).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..errors import ModelError, Overloaded, RequestError
from ..service_base import APIMethod
from ._codec import OFFLOAD_BYTES, error_body
from ._config import ServeConfig
from ._metrics import APIMetrics
from ._state import ServerState
from ._types import Message, Receive, Scope, Send
from ._ws_messages import MessageEncoder, close_reason, decode_message, message_size

logger = logging.getLogger("modelbundle.server")

#: incoming messages held for an API that has not read them yet; past this the socket is not
#: read, so a client that sends faster than the API reads is slowed by TCP, not buffered here
INBOX_LIMIT = 16

NORMAL, GOING_AWAY, INVALID_DATA, SERVER_ERROR = 1000, 1001, 1007, 1011


class OpenSockets:
    """What the sockets of one worker share: the moment a stopping server closes them."""

    def __init__(self) -> None:
        #: set once the graceful timeout after a stop signal is over
        self.closing = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None

    def drain(self, graceful_timeout: float) -> None:
        """The server is stopping: let open sockets go on for ``graceful_timeout`` seconds, then close them."""
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(graceful_timeout, self.closing.set)


class WebSocketEndpoint:
    """Serves the WebSocket of one API."""

    def __init__(
        self,
        api: APIMethod,
        method: Callable[..., Any],
        metrics: APIMetrics,
        config: ServeConfig,
        state: ServerState,
        sockets: OpenSockets,
    ) -> None:
        self.api = api
        self.method = method
        self.metrics = metrics
        self.sockets = sockets
        self._state = state
        self._max_concurrency = config.max_concurrency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = self._state.request_id(_header(scope, b"x-request-id"))
        await receive()  # websocket.connect
        refusal = self._refusal()
        if refusal is not None:
            await refuse_handshake(scope, send, refusal, request_id)
            self.metrics.observe_request(refusal.status_code, time.perf_counter() - started)
            return
        encoder = MessageEncoder(self.api.output, (_header(scope, b"accept") or b"").decode("latin-1"))
        self._state.in_flight += 1
        self.metrics.in_flight.inc()
        try:
            await send({"type": "websocket.accept", "headers": [(b"x-request-id", request_id)]})
            self.metrics.observe_request(101, time.perf_counter() - started)
            await _Conversation(self, receive, send, request_id.decode(), encoder).run()
        finally:
            self._state.in_flight -= 1
            self.metrics.in_flight.dec()

    def _refusal(self) -> RequestError | None:
        if self._state.draining:
            return Overloaded("the server is shutting down", headers={"Retry-After": "1"})
        if self._state.in_flight >= self._max_concurrency:
            return Overloaded(f"more than {self._max_concurrency} requests in flight", headers={"Retry-After": "1"})
        return None


async def refuse_handshake(scope: Scope, send: Send, error: RequestError, request_id: bytes) -> None:
    """Answer a WebSocket handshake with an HTTP error (JSON body), where the server can send one
    (ASGI's websocket.http.response extension, which uvicorn has); else a close before accepting,
    which the server turns into a 403."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1013 if error.status_code == 503 else 1008})
        return
    body = error_body(error.error_type, error.message, request_id.decode())
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()),
    ]
    await send({"type": "websocket.http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


class _ClientGone(Exception):
    """An item could not be sent: the client has closed the socket."""


class _Inbox:
    """Incoming messages the API has not read yet; ``None`` marks the end (the client closed)."""

    def __init__(self, limit: int) -> None:
        self._messages: deque[Message | None] = deque()
        self._limit = limit
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        #: the API is waiting for its next message (so a client that closes now interrupts nothing)
        self.waiting = False

    def put(self, message: Message | None) -> None:
        self._messages.append(message)
        self._arrived.set()
        if len(self._messages) >= self._limit:
            self._room.clear()

    async def room(self) -> None:
        await self._room.wait()

    async def get(self) -> Message | None:
        self.waiting = True
        try:
            while not self._messages:
                self._arrived.clear()
                await self._arrived.wait()
        finally:
            self.waiting = False
        message = self._messages[0]
        if message is not None:  # the end stays, for every later read
            self._messages.popleft()
        if len(self._messages) < self._limit:
            self._room.set()
        return message


class _Messages:
    """The API's ``messages`` argument: each incoming message decoded by the parameter's adapter."""

    def __init__(self, api: APIMethod, inbox: _Inbox) -> None:
        self._param = api.params[0]
        self._inbox = inbox

    def __aiter__(self) -> _Messages:
        return self

    async def __anext__(self) -> Any:
        message = await self._inbox.get()
        if message is None:
            raise StopAsyncIteration
        param = self._param
        if message_size(message) > OFFLOAD_BYTES:
            return await asyncio.to_thread(decode_message, param.adapter, param.name, message)
        return decode_message(param.adapter, param.name, message)


class _Conversation:
    """One accepted socket, from the first message to the close."""

    def __init__(self, endpoint: WebSocketEndpoint, receive: Receive, send: Send, request_id: str, encoder: MessageEncoder) -> None:
        self._endpoint = endpoint
        self._api = endpoint.api
        self._receive = receive
        self._send = send
        self._request_id = request_id
        self._encoder = encoder
        self._inbox = _Inbox(INBOX_LIMIT)
        self._client_gone = False
        #: the reader cancelled the API because the client left while it was at work
        self._abandoned = False

    async def run(self) -> None:
        answering = asyncio.create_task(self._answer())
        reading = asyncio.create_task(self._read(answering))
        closing = asyncio.create_task(self._endpoint.sockets.closing.wait())
        try:
            await asyncio.wait({answering, closing}, return_when=asyncio.FIRST_COMPLETED)
            if not answering.done():  # the server is stopping and the graceful timeout is over
                answering.cancel()
                await asyncio.gather(answering, return_exceptions=True)
                reading.cancel()
                await self._close(GOING_AWAY, "the server is shutting down")
                return
            reading.cancel()
            await self._finish(answering)
        finally:
            for task in (answering, reading, closing):
                task.cancel()
            await asyncio.gather(answering, reading, closing, return_exceptions=True)

    async def _answer(self) -> None:
        """Call the API and send what it yields, until it ends."""
        stream: Any = self._endpoint.method(_Messages(self._api, self._inbox))
        if inspect.isawaitable(stream):  # an ``async def`` that returns an async iterator
            stream = await stream
        iterator: AsyncIterator[Any] = aiter(stream)
        try:
            async for item in iterator:
                if self._client_gone:
                    raise _ClientGone
                message = self._encode(item)
                try:
                    await self._send(message)
                except OSError:  # the server's way of saying the socket is gone
                    raise _ClientGone from None
        finally:
            # an item was pending when the client left or the API was cancelled: the generator
            # is still suspended at its yield; closing it runs its ``finally`` now
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _read(self, answering: asyncio.Task[None]) -> None:
        while True:
            await self._inbox.room()
            message = await self._receive()
            if message["type"] == "websocket.receive":
                self._inbox.put(message)
                continue
            if message["type"] == "websocket.disconnect":
                self._client_gone = True
                self._inbox.put(None)
                if not self._inbox.waiting and not answering.done():
                    self._abandoned = True
                    answering.cancel()
                return

    async def _finish(self, answering: asyncio.Task[None]) -> None:
        if answering.cancelled() or self._abandoned:
            self._endpoint.metrics.cancelled.inc()
            return
        error = answering.exception()
        if error is None:
            await self._close(NORMAL, "")
        elif isinstance(error, _ClientGone):
            self._endpoint.metrics.cancelled.inc()
        elif isinstance(error, RequestError) and error.status_code < 500:
            await self._close(INVALID_DATA, close_reason(error.message))
        else:
            if isinstance(error, ModelError):
                message = error.message
            else:
                message = f"{self._api.name} raised {type(error).__name__}: {error}"
                logger.error("request %s: %s raised", self._request_id, self._api.name, exc_info=error)
            await self._close(SERVER_ERROR, close_reason(message))

    def _encode(self, item: Any) -> Message:
        try:
            return self._encoder.encode(item)
        except Exception as exc:
            logger.exception("request %s: an item yielded by %s could not be encoded", self._request_id, self._api.name)
            raise ModelError(
                f"{self._api.name} yielded {type(item).__name__}, which cannot be sent as "
                f"{self._api.output.describe()}: {exc}"
            ) from exc

    async def _close(self, code: int, reason: str) -> None:
        if self._client_gone:
            return
        with contextlib.suppress(OSError):  # the client left meanwhile: nothing to close
            await self._send({"type": "websocket.close", "code": code, "reason": reason})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None
