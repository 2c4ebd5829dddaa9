"""CPU the body-read limits and the head limits add per request, measured in-process.

The req/s of ``limits_bench.py`` on a shared 2-core machine swings by more than the limits
could cost; this times the two pieces they touch, with and without them, in microseconds:
reading a 300-byte body already buffered (the ASGI receive of a normal request), and a new
connection parsing a typical head (uvicorn's httptools protocol against ours).

    .venv/bin/python bench/limits_micro.py
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import uvloop
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from modelbundle.runtime._body import BodyLimits, read_body
from modelbundle.runtime._protocol import protocol_class

BODY_READS = 100_000
HEADS = 20_000
HEAD = (
    b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:3000\r\nUser-Agent: ApacheBench/2.3\r\nAccept: */*\r\n"
    b"Content-Type: application/json\r\nContent-Length: 300\r\n\r\n"
)


async def _plain_read(receive: Any) -> bytes:
    """The body read without limits: what the endpoint did before."""
    message = await receive()
    return message.get("body", b"")  # type: ignore[no-any-return]


async def _body_reads() -> dict[str, float]:
    message = {"type": "http.request", "body": b"x" * 300, "more_body": False}

    async def receive() -> dict[str, Any]:
        return message

    limits = BodyLimits(100 << 20, 10.0, 1024)
    readers = {"plain": lambda: _plain_read(receive), "limited": lambda: read_body(receive, b"300", limits)}
    best = {}
    for name, read in [*readers.items()] * 3:
        started = time.perf_counter()
        for _ in range(BODY_READS):
            await read()
        best[name] = min(best.get(name, 1e9), (time.perf_counter() - started) / BODY_READS * 1e6)
    return best


class _Transport:
    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, *args: Any) -> None:
        return None

    def write(self, data: bytes) -> None:
        pass


async def _heads() -> dict[str, float]:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        pass

    loop = asyncio.get_running_loop()
    config = Config(app, log_config=None)
    config.load()
    classes = {"uvicorn": HttpToolsProtocol, "limited": protocol_class(64 * 1024, 100)}
    best = {}
    for name, cls in [*classes.items()] * 3:
        started = time.perf_counter()
        for _ in range(HEADS):
            protocol = cls(config=config, server_state=ServerState(), app_state={}, _loop=loop)
            protocol.connection_made(_Transport())  # type: ignore[arg-type]
            protocol._start_asgi_task = lambda cycle, app: None  # type: ignore[method-assign]  # parse only
            protocol.data_received(HEAD)
        best[name] = min(best.get(name, 1e9), (time.perf_counter() - started) / HEADS * 1e6)
    return best


def main() -> None:
    body = uvloop.run(_body_reads())
    head = uvloop.run(_heads())
    print(f"body read: {body['plain']:.2f} us plain, {body['limited']:.2f} us with --body-timeout/--body-min-rate")
    print(f"connection + head: {head['uvicorn']:.2f} us uvicorn's protocol, {head['limited']:.2f} us with the head limits")
    print(f"added per request: {body['limited'] - body['plain'] + head['limited'] - head['uvicorn']:.1f} us (best of 3 each)")


if __name__ == "__main__":
    main()
