"""The dependency calls' own HTTP/1.1 client (``_composition/_http1.py``, ``_http1_pool.py``).

Against a real uvicorn on loopback, each answer naming the client port it came in on (one
port, one connection); and against a loopback server of the test's own for what uvicorn
will not do on purpose: close a kept-alive connection as a request arrives, reset one mid-answer.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import uvicorn

from fixtures.servers import START_TIMEOUT, STOP_TIMEOUT
from modelbundle.runtime._composition._http1_pool import (
    AnswerTimeout,
    ConnectFailed,
    ConnectionBroken,
    ConnectionPool,
)

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """/echo answers the body (/echo-and-close, then closes the connection); /chunks answers it in pieces with no length (chunked);
    /stall answers after the client is gone (never); /stall-stream sends one piece, then stalls."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    port = str(scope["client"][1]).encode()
    path = scope["path"]
    if path in ("/echo", "/echo-and-close"):
        headers = [(b"content-type", b"application/octet-stream"), (b"content-length", str(len(body)).encode()), (b"x-port", port)]
        if path == "/echo-and-close":
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif path == "/chunks":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-port", port)]})
        for piece in body.split(b","):
            await send({"type": "http.response.body", "body": piece + b"\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path in ("/stall", "/stall-stream"):
        if path == "/stall-stream":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
        await receive()  # returns once the client has disconnected


@pytest.fixture(scope="module")
def uvicorn_url() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", log_config=None, lifespan="off", http="httptools"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(STOP_TIMEOUT)
    sock.close()


def run(work: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(work())  # type: ignore[arg-type]


def post(pool: ConnectionPool, path: str, body: bytes) -> bytes:
    head = pool.request_head("POST", path, {"Content-Type": "application/octet-stream"})
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def test_connections_are_kept_alive_reused_and_bounded(uvicorn_url: str) -> None:
    async def work() -> tuple[set[str], set[str], set[str]]:
        pool = ConnectionPool(uvicorn_url, max_connections=4)
        try:
            one_by_one = set()
            for i in range(20):
                answer = await pool.request(post(pool, "/echo", b"n%d" % i), 10.0)
                assert answer.status == 200 and answer.body() == b"n%d" % i
                one_by_one.add(answer.headers["x-port"])
            answers = await asyncio.gather(*(pool.request(post(pool, "/echo", b"c%d" % i), 10.0) for i in range(40)))
            assert [a.body() for a in answers] == [b"c%d" % i for i in range(40)]
            first_round = {a.headers["x-port"] for a in answers}
            again = await asyncio.gather(*(pool.request(post(pool, "/echo", b"x"), 10.0) for _ in range(40)))
            return one_by_one, first_round, {a.headers["x-port"] for a in again}
        finally:
            await pool.aclose()

    sequential, concurrent, second = run(work)
    assert len(sequential) == 1  # one caller at a time: one connection, kept alive
    assert sequential <= concurrent and len(concurrent) <= 4  # 40 callers share at most max_connections
    assert second <= concurrent  # the pool's connections, not new ones


def test_a_connection_the_server_closes_after_its_answer_is_not_used_again(uvicorn_url: str) -> None:
    async def work() -> list[str]:
        pool = ConnectionPool(uvicorn_url)
        try:
            ports = []
            for path in ("/echo", "/echo-and-close", "/echo", "/echo"):
                answer = await pool.request(post(pool, path, b"x"), 10.0)
                assert answer.body() == b"x"
                ports.append(answer.headers["x-port"])
            return ports
        finally:
            await pool.aclose()

    before, closing, after, again = run(work)
    assert before == closing != after == again  # a new connection once the old one was closed, then kept


def test_a_chunked_answer_is_read_whole_or_piece_by_piece(uvicorn_url: str) -> None:
    items = [b"item-%d" % i * 50 for i in range(30)]

    async def work() -> tuple[bytes, list[bytes], str, str]:
        pool = ConnectionPool(uvicorn_url)
        try:
            whole = await pool.request(post(pool, "/chunks", b",".join(items)), 10.0)
            assert whole.headers.get("transfer-encoding") == "chunked"
            streamed = await pool.stream(post(pool, "/chunks", b",".join(items)), 10.0)
            pieces = [chunk async for chunk in streamed.chunks()]
            await streamed.aclose()
            after = await pool.request(post(pool, "/echo", b"after"), 10.0)
            return whole.body(), pieces, whole.headers["x-port"], after.headers["x-port"]
        finally:
            await pool.aclose()

    body, pieces, first_port, last_port = run(work)
    assert body == b"".join(item + b"\n" for item in items)
    assert b"".join(pieces) == body and len(pieces) > 1
    assert first_port == last_port  # a chunked answer read to its end leaves the connection reusable


def test_a_large_body_goes_and_comes_back_intact(uvicorn_url: str) -> None:
    payload = bytes(range(256)) * (12 * 4096)  # 12 MiB

    async def work() -> bytes:
        pool = ConnectionPool(uvicorn_url)
        try:
            return (await pool.request(post(pool, "/echo", payload), 60.0)).body()
        finally:
            await pool.aclose()

    assert run(work) == payload


def test_a_slow_answer_times_out_and_the_pool_goes_on(uvicorn_url: str) -> None:
    async def work() -> tuple[str, str, bytes]:
        pool = ConnectionPool(uvicorn_url, max_connections=1)
        try:
            with pytest.raises(AnswerTimeout) as whole:
                await pool.request(post(pool, "/stall", b""), 0.3)
            streamed = await pool.stream(post(pool, "/stall-stream", b""), 0.3)
            chunks = streamed.chunks()
            assert await chunks.__anext__() == b"first\n"
            with pytest.raises(AnswerTimeout) as chunk:
                await chunks.__anext__()
            await streamed.aclose()
            # the one connection slot was given back each time: the next call is served
            return whole.value.reason, chunk.value.reason, (await pool.request(post(pool, "/echo", b"ok"), 10.0)).body()
        finally:
            await pool.aclose()

    whole, chunk, after = run(work)
    assert whole == chunk == "no answer within the timeout"
    assert after == b"ok"


def test_a_refused_connection_fails_at_once_naming_the_reason() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, not listening: refused

        async def work() -> None:
            pool = ConnectionPool(url)
            await pool.request(pool.request_head("GET", "/", {}) + b"\r\n", 10.0)

        with pytest.raises(ConnectFailed, match=r"^connection refused$"):
            run(work)


# -- a server of our own, for misbehaviour ----------------------------------------------------
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Misbehaving:
    """Answers each request by the next step of ``script``: "ok", "close" (without answering),
    or "reset" (half an answer, then a TCP reset). Counts connections and requests."""

    def __init__(self, script: list[str]) -> None:
        self.script = list(script)
        self.connections = 0
        self.requests = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while await _read_request(reader):
                self.requests += 1
                step = self.script.pop(0)
                if step == "ok":
                    writer.write(OK)
                    await writer.drain()
                    continue
                if step == "reset":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
                    await writer.drain()
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                break
        finally:
            writer.close()


async def _read_request(reader: asyncio.StreamReader) -> bool:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return False
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
    await reader.readexactly(length)
    return True


def with_server(script: list[str], work: Callable[[ConnectionPool], Awaitable[Any]]) -> tuple[Misbehaving, Any]:
    peer = Misbehaving(script)

    async def main() -> Any:
        server = await asyncio.start_server(peer.handle, "127.0.0.1", 0)
        pool = ConnectionPool(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        try:
            return await work(pool)
        finally:
            await pool.aclose()
            server.close()

    return peer, asyncio.run(main())


def call(pool: ConnectionPool) -> Awaitable[Any]:
    return pool.request(post(pool, "/x", b"{}"), 10.0)


def test_a_kept_alive_connection_closed_as_a_request_arrives_is_retried_once_on_a_new_one() -> None:
    async def work(pool: ConnectionPool) -> list[bytes]:
        return [(await call(pool)).body(), (await call(pool)).body()]

    peer, bodies = with_server(["ok", "close", "ok"], work)
    assert bodies == [b"ok", b"ok"]
    assert (peer.connections, peer.requests) == (2, 3)  # the second call went out twice, the retry on a new connection


def test_a_new_connection_closed_unanswered_is_not_retried() -> None:
    async def work(pool: ConnectionPool) -> None:
        await call(pool)

    with pytest.raises(ConnectionBroken, match="the server closed the connection") as caught:
        with_server(["close", "ok"], work)
    assert not caught.value.started


def test_a_reset_in_the_middle_of_an_answer_is_not_retried() -> None:
    async def work(pool: ConnectionPool) -> Any:
        assert (await call(pool)).body() == b"ok"
        try:
            await call(pool)
        except ConnectionBroken as exc:
            return exc
        raise AssertionError("no error")

    peer, error = with_server(["ok", "reset", "ok"], work)
    assert error.started and "reset" in error.reason and "in the middle of the answer" in error.reason
    assert (peer.connections, peer.requests) == (1, 2)  # sent once: part of an answer came, so no retry
